package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickstash/tickstash/gateway"
	"github.com/tickstash/tickstash/internal/metricstest"
	"github.com/tickstash/tickstash/signals"
)

// sseStream is an open signal stream of a test client.
type sseStream struct {
	res    *http.Response
	cancel context.CancelFunc
	lines  *bufio.Scanner
}

// openSSE opens /v1/signals/stream with token. For a 200 it waits up to 5s for the
// first signal event (so the stream's consumer exists) and returns the open stream;
// otherwise it returns the refusal, its body read, and a nil stream.
func (e *env) openSSE(token string) (*sseStream, resp) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/v1/signals/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		defer cancel()
		defer res.Body.Close()
		var b strings.Builder
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			b.WriteString(sc.Text())
		}
		return nil, resp{res.StatusCode, res.Header, []byte(b.String())}
	}
	s := &sseStream{res: res, cancel: cancel, lines: bufio.NewScanner(res.Body)}
	got := make(chan bool, 1)
	go func() {
		for s.lines.Scan() {
			if strings.HasPrefix(s.lines.Text(), "event: signal") {
				got <- true
				return
			}
		}
		got <- false
	}()
	select {
	case ok := <-got:
		if !ok {
			s.close()
			e.t.Fatal("signal stream ended before its first event")
		}
	case <-time.After(5 * time.Second):
		s.close()
		e.t.Fatal("no signal event within 5s")
	}
	return s, resp{status: res.StatusCode, header: res.Header}
}

// close disconnects the client.
func (s *sseStream) close() {
	s.cancel()
	s.res.Body.Close()
}

// streamConsumers returns how many consumers a JetStream stream has.
func streamConsumers(t *testing.T, js jetstream.JetStream, stream string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Consumers
}

// TestSSEFloodLeavesOthersAndNoConsumers: one token opening more streams than its cap,
// and churning through connections, neither starves another token's stream nor leaves
// JetStream consumers behind. The stream allows 6 consumers, as a stand-in for the
// server's consumer limit: consumers that outlived their clients would exhaust it
// within the churn, and the other token's stream would fail.
func TestSSEFloodLeavesOthersAndNoConsumers(t *testing.T) {
	nc := natsConn(t)
	sc := uniqueSignalStream(t, nc)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: sc.Stream, Subjects: []string{sc.SubjectPrefix + ".>"},
		Storage: jetstream.MemoryStorage, MaxConsumers: 6, MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	sig := testSignal("rsi", "BTC-USDT", 1)
	data, _ := json.Marshal(sig)
	if _, err := js.Publish(ctx, sc.Subject(sig.Strategy, sig.Exchange, sig.Symbol), data); err != nil {
		t.Fatal(err)
	}
	e := start(t, func(d *gateway.Deps, c *gateway.Config) {
		src, err := signals.NewStreamSource(nc, signals.StreamSourceConfig{StreamConfig: sc})
		if err != nil {
			t.Fatal(err)
		}
		d.Signals = src
		c.SSEMaxPerToken, c.SSEMaxStreams, c.SSERetryAfter = 3, 5, 2*time.Second
	})
	scopes := []gateway.Scope{gateway.ScopeSignalsRead}
	flood, _, floodTok := e.token(gateway.TokenSpec{Name: "flood", Scopes: scopes})
	other, _, _ := e.token(gateway.TokenSpec{Name: "other", Scopes: scopes})
	third, _, _ := e.token(gateway.TokenSpec{Name: "third", Scopes: scopes})

	var held []*sseStream
	defer func() {
		for _, s := range held {
			s.close()
		}
	}()
	for i := 0; i < 3; i++ {
		s, r := e.openSSE(flood)
		if s == nil {
			t.Fatalf("flood stream %d: %d %s", i, r.status, r.body)
		}
		held = append(held, s)
	}
	// A burst beyond the cap: every one refused, none holds a consumer.
	var wg sync.WaitGroup
	refusals := make(chan resp, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, r := e.openSSE(flood)
			if s != nil {
				s.close()
				t.Error("a stream beyond the token's cap was opened")
				return
			}
			refusals <- r
		}()
	}
	wg.Wait()
	close(refusals)
	for r := range refusals {
		wantProblem(t, "over the token cap", r, http.StatusTooManyRequests, "already holds 3 signal streams")
		if r.header.Get("Retry-After") != "2" {
			t.Fatalf("Retry-After %q, want 2", r.header.Get("Retry-After"))
		}
		if !strings.Contains(string(r.body), floodTok.ID) {
			t.Fatalf("refusal does not name the token: %s", r.body)
		}
	}
	// Churn: drop a stream and open another, 30 times. A place comes back once the
	// dropped stream's consumer is deleted, so a quick reconnect may see 429 first.
	for i := 0; i < 30; i++ {
		held[0].close()
		held = held[1:]
		deadline := time.Now().Add(5 * time.Second)
		for {
			s, r := e.openSSE(flood)
			if s != nil {
				held = append(held, s)
				break
			}
			if r.status != http.StatusTooManyRequests || time.Now().After(deadline) {
				t.Fatalf("churn %d: %d %s", i, r.status, r.body)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// The other token still gets its stream, and signals on it.
	s, r := e.openSSE(other)
	if s == nil {
		t.Fatalf("other token's stream during the flood: %d %s", r.status, r.body)
	}
	held = append(held, s)
	if s, r := e.openSSE(third); s == nil {
		t.Fatalf("third token's stream: %d %s", r.status, r.body)
	} else {
		held = append(held, s)
	}
	// Five streams are open: the server's cap refuses a sixth, of any token.
	_, r = e.openSSE(third)
	wantProblem(t, "over the server cap", r, http.StatusTooManyRequests, "already serves 5 signal streams")
	if n := streamConsumers(t, js, sc.Stream); n != 5 {
		t.Fatalf("%d consumers for 5 open streams", n)
	}
	if got := metricstest.Counter(t, e.reg, "tickstash_gateway_sse_refused_total", "cap", "token"); got < 20 {
		t.Fatalf("sse_refused_total{cap=token} = %v, want at least 20", got)
	}
	for _, s := range held {
		s.close()
	}
	held = nil
	deadline := time.Now().Add(10 * time.Second)
	for streamConsumers(t, js, sc.Stream) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d consumers left 10s after every client left", streamConsumers(t, js, sc.Stream))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
