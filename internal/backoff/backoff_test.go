package backoff

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"
)

func TestCeilingDoublesUpToTheCap(t *testing.T) {
	p := Policy{Min: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	want := []time.Duration{10, 20, 40, 80, 80, 80}
	for n, w := range want {
		if got := p.Ceiling(n); got != w*time.Millisecond {
			t.Errorf("Ceiling(%d) = %v, want %v", n, got, w*time.Millisecond)
		}
	}
	for _, n := range []int{-1, 62, 63, 64, 1000, math.MaxInt} {
		got := p.Ceiling(n)
		if n < 0 && got != p.Min || n >= 0 && got != p.Max {
			t.Errorf("Ceiling(%d) = %v: want Min for negative n, the cap beyond", n, got)
		}
	}
}

func TestCeilingDoesNotOverflowWithAHugeCap(t *testing.T) {
	p := Policy{Min: time.Second, Max: time.Duration(math.MaxInt64)}
	prev := time.Duration(0)
	for n := range 100 {
		d := p.Ceiling(n)
		if d <= 0 || d < prev {
			t.Fatalf("Ceiling(%d) = %v after %v: overflowed", n, d, prev)
		}
		prev = d
	}
}

func TestDefaultsAndClamps(t *testing.T) {
	tests := []struct {
		name     string
		p        Policy
		min, max time.Duration
		jitter   float64
	}{
		{"zero", Policy{}, 100 * time.Millisecond, 100 * time.Millisecond, 0},
		{"max below min is a constant delay", Policy{Min: time.Second, Max: time.Millisecond}, time.Second, time.Second, 0},
		{"negative jitter is none", Policy{Min: time.Second, Max: 2 * time.Second, Jitter: -3}, time.Second, 2 * time.Second, 0},
		{"jitter above 1 is full", Policy{Min: time.Second, Max: 2 * time.Second, Jitter: 7}, time.Second, 2 * time.Second, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.p.norm()
			if n.Min != tt.min || n.Max != tt.max || n.Jitter != tt.jitter {
				t.Errorf("norm() = %+v, want Min %v Max %v Jitter %v", n, tt.min, tt.max, tt.jitter)
			}
		})
	}
}

// TestDelayStaysInItsJitterRange draws many delays per attempt and checks each lies in
// [ceiling·(1-jitter), ceiling] and that the draws actually vary (or, without jitter, do
// not).
func TestDelayStaysInItsJitterRange(t *testing.T) {
	for _, jitter := range []float64{0, 0.25, 0.5, 1} {
		p := Policy{Min: 10 * time.Millisecond, Max: 80 * time.Millisecond, Jitter: jitter}
		for n := range 6 {
			ceil := p.Ceiling(n)
			floor := time.Duration(float64(ceil) * (1 - jitter))
			seen := map[time.Duration]bool{}
			lo, hi := ceil, time.Duration(0)
			for range 2000 {
				d := p.Delay(n)
				if d < floor || d > ceil {
					t.Fatalf("jitter %v: Delay(%d) = %v, want within [%v, %v]", jitter, n, d, floor, ceil)
				}
				seen[d] = true
				lo, hi = min(lo, d), max(hi, d)
			}
			switch {
			case jitter == 0 && len(seen) != 1:
				t.Errorf("jitter 0: Delay(%d) took %d values, want a fixed one", n, len(seen))
			case jitter > 0 && len(seen) < 100:
				t.Errorf("jitter %v: Delay(%d) took only %d values", jitter, n, len(seen))
			case jitter > 0 && (lo > floor+(ceil-floor)/10 || hi < ceil-(ceil-floor)/10):
				t.Errorf("jitter %v: Delay(%d) spanned [%v, %v] of [%v, %v]: not spread over the range", jitter, n, lo, hi, floor, ceil)
			}
		}
	}
}

func TestBackoffGrowsCapsAndResets(t *testing.T) {
	b := New(Policy{Min: time.Millisecond, Max: 8 * time.Millisecond})
	var got []time.Duration
	for range 6 {
		if peek := b.Peek(); peek != b.p.Ceiling(b.n) {
			t.Fatalf("Peek() = %v, want the next ceiling %v", peek, b.p.Ceiling(b.n))
		}
		got = append(got, b.Next())
	}
	want := []time.Duration{1, 2, 4, 8, 8, 8}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("delays %v, want %v ms", got, want)
		}
	}
	// The count stops at the cap, so a very long outage never overflows it.
	for range 10_000 {
		b.Next()
	}
	if b.n > 3 {
		t.Errorf("attempt count %d after the cap, want it to stop at 3", b.n)
	}
	b.Reset()
	if d := b.Next(); d != time.Millisecond {
		t.Errorf("after Reset, Next() = %v, want Min", d)
	}
}

func TestWaitReturnsWhenTheContextEnds(t *testing.T) {
	b := New(Policy{Min: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Wait(ctx) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait still sleeping an hour after its context ended")
	}
}

func TestSleep(t *testing.T) {
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("Sleep = %v, want nil", err)
	}
	if err := Sleep(context.Background(), 0); err != nil {
		t.Fatalf("Sleep(0) = %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep(0) on an ended context = %v, want context.Canceled", err)
	}
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep(1h) on an ended context = %v, want context.Canceled", err)
	}
}
