// Package backoff is tickstash's one retry-delay policy: exponential growth from a
// minimum to a cap, with a configurable share of random jitter. Every retry loop in the
// module (websocket reconnects, ingest batch writes, analysis queue retries and worker
// polling, signal publishes) draws its delays from here, so they all grow, cap and
// jitter the same way.
//
//	b := backoff.New(backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.5})
//	for {
//		if err := try(); err == nil {
//			b.Reset()
//			break
//		}
//		if err := b.Wait(ctx); err != nil {
//			return err // ctx ended
//		}
//	}
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy describes a backoff. The n-th delay (n from 0) is min(Max, Min·2^n), of which
// a random share of up to Jitter is taken off, drawn uniformly.
type Policy struct {
	// Min is the first delay, before jitter. Zero means 100ms.
	Min time.Duration
	// Max caps every delay, before jitter. Zero, or a value below Min, means Min (a
	// constant delay).
	Max time.Duration
	// Jitter is the share of each delay that is random, in [0, 1]: the delay is drawn
	// uniformly from [d·(1-Jitter), d]. 0 means no jitter (deterministic delays, for a
	// schedule a test or a caller must predict); 0.5 is "equal jitter"; 1 is "full
	// jitter" (anything from 0 to d), which spreads best a crowd of clients that failed
	// at the same moment. Values outside [0, 1] are clamped.
	Jitter float64
}

func (p Policy) norm() Policy {
	if p.Min <= 0 {
		p.Min = 100 * time.Millisecond
	}
	if p.Max < p.Min {
		p.Max = p.Min
	}
	p.Jitter = min(max(p.Jitter, 0), 1)
	return p
}

// Ceiling returns the n-th delay before jitter (n from 0): min(Max, Min·2^n). It never
// overflows, however large n is; a negative n counts as 0.
func (p Policy) Ceiling(n int) time.Duration {
	p = p.norm()
	d := p.Min
	for i := 0; i < n && d < p.Max; i++ {
		d *= 2
		if d <= 0 { // overflow: past any cap
			return p.Max
		}
	}
	return min(d, p.Max)
}

// Delay returns the n-th delay (n from 0) with its jitter drawn: a value in
// [Ceiling(n)·(1-Jitter), Ceiling(n)].
func (p Policy) Delay(n int) time.Duration {
	p = p.norm()
	d := p.Ceiling(n)
	span := time.Duration(float64(d) * p.Jitter)
	if span <= 0 {
		return d
	}
	return d - rand.N(span+1)
}

// Backoff counts the attempts of one retry loop. It is not safe for concurrent use;
// each loop has its own.
type Backoff struct {
	p Policy
	n int
}

// New returns a Backoff following p, before its first delay.
func New(p Policy) *Backoff { return &Backoff{p: p.norm()} }

// Next returns the delay before the next attempt and counts it.
func (b *Backoff) Next() time.Duration {
	d := b.p.Delay(b.n)
	if b.p.Ceiling(b.n) < b.p.Max {
		b.n++ // stop counting at the cap: the count only drives the exponent
	}
	return d
}

// Peek returns the ceiling of the delay Next would draw, without counting: what a log
// line can announce as "retry in".
func (b *Backoff) Peek() time.Duration { return b.p.Ceiling(b.n) }

// Reset starts over from Min, after a success.
func (b *Backoff) Reset() { b.n = 0 }

// Wait sleeps for Next's delay. It returns ctx's error, at once, if ctx ends first,
// and nil otherwise.
func (b *Backoff) Wait(ctx context.Context) error {
	return Sleep(ctx, b.Next())
}

// Sleep waits for d or until ctx ends, whichever comes first, and returns ctx's error
// in the second case. A d of zero or less returns at once (ctx's error, if any).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
