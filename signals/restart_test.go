package signals

import (
	"context"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/internal/embedded"
	"github.com/tickstash/tickstash/internal/testenv"
	"github.com/tickstash/tickstash/market"
)

// TestBrokerRestartExactlyOnce restarts an embedded nats-server (same port, same store
// directory) while signals are being published and checks that a durable subscriber
// receives every one exactly once.
func TestBrokerRestartExactlyOnce(t *testing.T) {
	dir := t.TempDir()
	srv, err := embedded.StartNATS(embedded.NATSConfig{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(srv.URL())
	port, _ := strconv.Atoi(u.Port())
	var mu sync.Mutex
	defer func() { mu.Lock(); srv.Close(); mu.Unlock() }()

	pubConn := connect(t, srv.URL())
	subConn := connect(t, srv.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	reg := prometheus.NewRegistry()
	sc := StreamConfig{Stream: "RESTART", SubjectPrefix: "rs.signals"}
	d, err := NewDistributor(ctx, pubConn, DistributorConfig{StreamConfig: sc, MaxBytes: testenv.StreamMaxBytes, MaxAge: time.Hour, AckTimeout: time.Second, RetryWait: 20 * time.Millisecond}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(subConn, ClientConfig{StreamConfig: sc, Log: slog.New(slog.NewTextHandler(tlog{t}, nil))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := collect(t, ctx, c, SubscribeOptions{Durable: "bot", From: FromAll, AckWait: 2 * time.Second})

	const n, batch = 400, 10
	syms := []market.Symbol{"BTC-USDT", "ETH-USDT"}
	pubDone := make(chan error, 1)
	go func() {
		for i := 0; i < n; i += batch {
			var sigs []market.Signal
			for j := i; j < i+batch; j++ {
				sigs = append(sigs, testSignal("rsi", syms[j%2], j/2))
			}
			if err := d.Publish(ctx, sigs...); err != nil {
				pubDone <- err
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		pubDone <- nil
	}()

	seen := map[string]int{}
	got := receive(t, ch, n/4, 20*time.Second)
	for _, s := range got {
		seen[s.ID]++
	}
	mu.Lock()
	srv.Close()
	time.Sleep(200 * time.Millisecond)
	srv, err = embedded.StartNATS(embedded.NATSConfig{Port: port, StoreDir: dir})
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	t.Log("broker restarted")
	deadline := time.After(30 * time.Second)
	for len(seen) < n {
		select {
		case s := <-ch:
			seen[s.ID]++
		case <-deadline:
			js, _ := jetstream.New(pubConn)
			st, err := js.Stream(ctx, sc.Stream)
			if err == nil {
				info, _ := st.Info(ctx)
				ci, _ := st.Consumer(ctx, "bot")
				var cinfo *jetstream.ConsumerInfo
				if ci != nil {
					cinfo, _ = ci.Info(ctx)
				}
				t.Logf("stream msgs %d consumer delivered %+v ackfloor %+v waiting %d pending %d ackpending %d", info.State.Msgs, cinfo.Delivered, cinfo.AckFloor, cinfo.NumWaiting, cinfo.NumPending, cinfo.NumAckPending)
			}
			t.Fatalf("received %d of %d; retries %v", len(seen), n, counter(t, reg, "tickstash_signals_publish_retries_total"))
		}
	}
	if err := <-pubDone; err != nil {
		t.Fatal(err)
	}
	quiet(t, ch, 500*time.Millisecond)
	for id, k := range seen {
		if k != 1 {
			t.Errorf("%s arrived %d times", id, k)
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct signals, want %d", len(seen), n)
	}
	t.Logf("retries %v, duplicates suppressed %v", counter(t, reg, "tickstash_signals_publish_retries_total"),
		counter(t, reg, "tickstash_signals_duplicates_suppressed_total"))
}

type tlog struct{ t *testing.T }

func (l tlog) Write(p []byte) (int, error) { l.t.Log(string(p)); return len(p), nil }
