package signals

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickstash/tickstash/internal/testenv"
	"github.com/tickstash/tickstash/market"
)

// readStream runs src.Stream in the background and returns the first n events, failing
// t if they do not come within 5s.
func readStream(t *testing.T, src *StreamSource, f StreamFilter, after uint64, n int) []StreamEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var got []StreamEvent
	errDone := errors.New("done")
	err := src.Stream(ctx, f, after, func(e StreamEvent) error {
		got = append(got, e)
		if len(got) == n {
			return errDone
		}
		return nil
	})
	if !errors.Is(err, errDone) {
		t.Fatalf("Stream: %v after %d of %d events", err, len(got), n)
	}
	return got
}

func ids(es []StreamEvent) string {
	var out []string
	for _, e := range es {
		out = append(out, fmt.Sprintf("%d:%s:%s", e.Seq, e.Strategy, e.Symbol))
	}
	return strings.Join(out, " ")
}

func TestStreamSourceResumeLastPerSubjectAndFilters(t *testing.T) {
	nc := connect(t, testenv.NATSURL())
	sc := uniqueStream(t, nc)
	ctx := context.Background()
	dist, err := NewDistributor(ctx, nc, DistributorConfig{StreamConfig: sc, Memory: true}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// seq 1..6: rsi BTC, rsi ETH, macd BTC, rsi BTC, macd ETH, rsi BTC
	sigs := []market.Signal{
		testSignal("rsi", "BTC-USDT", 1), testSignal("rsi", "ETH-USDT", 2), testSignal("macd", "BTC-USDT", 3),
		testSignal("rsi", "BTC-USDT", 4), testSignal("macd", "ETH-USDT", 5), testSignal("rsi", "BTC-USDT", 6),
	}
	for _, s := range sigs {
		if err := dist.Publish(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	src, err := NewStreamSource(nc, StreamSourceConfig{StreamConfig: sc})
	if err != nil {
		t.Fatal(err)
	}
	// No position: the last signal of every subject, in stream order.
	if got := ids(readStream(t, src, StreamFilter{}, 0, 4)); got != "2:rsi:ETH-USDT 3:macd:BTC-USDT 5:macd:ETH-USDT 6:rsi:BTC-USDT" {
		t.Fatalf("last per subject: %s", got)
	}
	// Resume after a sequence: everything later, in order.
	if got := ids(readStream(t, src, StreamFilter{}, 3, 3)); got != "4:rsi:BTC-USDT 5:macd:ETH-USDT 6:rsi:BTC-USDT" {
		t.Fatalf("after 3: %s", got)
	}
	// One strategy, one symbol: an exact filter subject.
	if got := ids(readStream(t, src, StreamFilter{Strategies: []string{"rsi"}, Symbols: []market.Symbol{"BTC-USDT"}}, 1, 2)); got != "4:rsi:BTC-USDT 6:rsi:BTC-USDT" {
		t.Fatalf("rsi BTC after 1: %s", got)
	}
	// Two strategies on one symbol: filtered here, still in order.
	if got := ids(readStream(t, src, StreamFilter{Strategies: []string{"rsi", "macd"}, Symbols: []market.Symbol{"ETH-USDT"}}, 0, 2)); got != "2:rsi:ETH-USDT 5:macd:ETH-USDT" {
		t.Fatalf("rsi+macd ETH: %s", got)
	}
	// New signals arrive on an open stream.
	got := make(chan StreamEvent, 1)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- src.Stream(sctx, StreamFilter{Strategies: []string{"macd"}}, 6, func(e StreamEvent) error { got <- e; return nil })
	}()
	if err := dist.Publish(ctx, testSignal("macd", "BTC-USDT", 7)); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.Seq != 7 || e.ID != testSignal("macd", "BTC-USDT", 7).ID || !strings.Contains(string(e.Data), `"side":"buy"`) {
			t.Fatalf("live event %+v %s", e, e.Data)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no live event")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Stream after cancel: %v", err)
	}
}

func TestStreamSourceWaitsForTheStream(t *testing.T) {
	nc := connect(t, testenv.NATSURL())
	sc := uniqueStream(t, nc)
	src, err := NewStreamSource(nc, StreamSourceConfig{StreamConfig: sc})
	if err != nil {
		t.Fatal(err)
	}
	src.retry = 20 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := make(chan StreamEvent, 1)
	go func() {
		_ = src.Stream(ctx, StreamFilter{}, 0, func(e StreamEvent) error { got <- e; return nil })
	}()
	time.Sleep(100 * time.Millisecond) // the stream does not exist yet
	dist, err := NewDistributor(ctx, nc, DistributorConfig{StreamConfig: sc, Memory: true}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := dist.Publish(ctx, testSignal("rsi", "BTC-USDT", 1)); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.Seq != 1 || e.Strategy != "rsi" {
			t.Fatalf("event %+v", e)
		}
	case <-ctx.Done():
		t.Fatal("no event after the stream appeared")
	}
}

// consumerCount returns how many consumers the stream has.
func consumerCount(t *testing.T, nc *nats.Conn, stream string) int {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	return info.State.Consumers
}

// waitConsumers waits up to limit for the stream to have want consumers.
func waitConsumers(t *testing.T, nc *nats.Conn, stream string, want int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		n := consumerCount(t, nc, stream)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s has %d consumers after %v, want %d", stream, n, limit, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A Stream call's consumer goes away with it: deleted when the call returns (the
// client left), and dropped by the server after InactiveThreshold when the reader's
// process vanished without deleting it.
func TestStreamSourceLeavesNoConsumers(t *testing.T) {
	nc := connect(t, testenv.NATSURL())
	sc := uniqueStream(t, nc)
	ctx := context.Background()
	dist, err := NewDistributor(ctx, nc, DistributorConfig{StreamConfig: sc, Memory: true}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := dist.Publish(ctx, testSignal("rsi", "BTC-USDT", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := NewStreamSource(nc, StreamSourceConfig{StreamConfig: sc, InactiveThreshold: time.Second}); err == nil {
		t.Fatal("an InactiveThreshold below a reader's pull interval was accepted")
	}
	src, err := NewStreamSource(nc, StreamSourceConfig{StreamConfig: sc})
	if err != nil {
		t.Fatal(err)
	}
	// Many readers that each leave after their first event.
	for i := 0; i < 20; i++ {
		readStream(t, src, StreamFilter{}, 0, 1)
	}
	waitConsumers(t, nc, sc.Stream, 0, 5*time.Second)

	// A reader whose connection dies cannot delete its consumer: Stream says so, and
	// the server drops it after the threshold.
	crashNC := connect(t, testenv.NATSURL(), nats.MaxReconnects(0))
	crashed, err := NewStreamSource(crashNC, StreamSourceConfig{StreamConfig: sc})
	if err != nil {
		t.Fatal(err)
	}
	crashed.cfg.InactiveThreshold = time.Second // below the minimum: this reader pulls no more
	got := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- crashed.Stream(ctx, StreamFilter{}, 0, func(StreamEvent) error {
			select {
			case got <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	if n := consumerCount(t, nc, sc.Stream); n != 1 {
		t.Fatalf("%d consumers while one reader reads", n)
	}
	crashNC.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrConsumerLeft) {
			t.Fatalf("Stream after its connection closed: %v, want ErrConsumerLeft", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stream did not return after its connection closed")
	}
	waitConsumers(t, nc, sc.Stream, 0, 15*time.Second)
}
