package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tickstash/tickstash/analysis"
	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/internal/redisconn"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/internal/testenv"
	"github.com/tickstash/tickstash/market"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a running command.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// started runs Main in the background and returns its stderr and a func that stops it
// and returns the exit status.
func started(t *testing.T, args ...string) (*syncBuffer, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- Main(ctx, args, strings.NewReader(""), io.Discard, stderr) }()
	stopped := false
	stop := func() int {
		if stopped {
			return 0
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(30 * time.Second):
			t.Fatalf("tickstash %s did not stop within 30s; stderr:\n%s", args[0], stderr)
			return -1
		}
	}
	t.Cleanup(func() { stop() })
	return stderr, stop
}

// find waits until re matches stderr and returns its first group.
func find(t *testing.T, stderr *syncBuffer, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := rx.FindStringSubmatch(stderr.String()); m != nil {
			return m[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %q in stderr:\n%s", re, stderr)
	return ""
}

// regexpFind returns the first group of re's first match in s, or "".
func regexpFind(re, s string) string {
	if m := regexp.MustCompile(re).FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRunEmbedded starts `tickstash run` with no server URLs: it must start embedded
// Redis and NATS, say where they are, and turn synthetic trades into candles in Redis,
// announced on NATS, with metrics and health endpoints, then stop cleanly.
func TestRunEmbedded(t *testing.T) {
	t.Setenv("TICKSTASH_REDIS_URL", "")
	t.Setenv("TICKSTASH_NATS_URL", "")
	stderr, stop := started(t, "run", "--admin-addr", "127.0.0.1:0", "--intervals", "1s,1m",
		"--synthetic-rate", "400", "--grace", "200ms", "--flush-interval", "50ms", "--indicators", "sma:2 obv rsi:14")
	redisURL := find(t, stderr, `Redis  (redis://\S+)  \(embedded`)
	natsURL := find(t, stderr, `NATS   (nats://\S+)  \(embedded`)
	admin := find(t, stderr, `Admin  http://(\S+)/metrics`)

	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	announced, err := nc.SubscribeSync("ts.candles.synthetic.*.1s")
	if err != nil {
		t.Fatal(err)
	}
	analyzed, err := nc.SubscribeSync("ts.analysis.synthetic.BTC-USD.1s")
	if err != nil {
		t.Fatal(err)
	}

	rdb, err := redisconn.Connect(context.Background(), redisURL)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	store := cache.NewMarketStore(rdb, cache.MarketConfig{}, nil)
	testenv.WaitFor(t, "closed 1s candles of BTC-USD in the embedded Redis", func() bool {
		cs, err := store.LastCandles(context.Background(), market.Synthetic, "BTC-USD", market.Interval1s, 10)
		return err == nil && len(cs) >= 3 && cs[0].Closed
	})
	// The embedded Redis keeps what fits in memory, and the banner says so.
	if kept := find(t, stderr, `Kept   trades (\S+) \(at most 50000 per market\), 1440 candles per interval \(1m: 24h\)`); kept != "15m" {
		t.Errorf("banner: trades kept %q, want 15m", kept)
	}
	ctx := context.Background()
	if ttl := rdb.PTTL(ctx, store.Keys().Trades(market.Synthetic, "BTC-USD")).Val(); ttl <= 0 || ttl > 15*time.Minute {
		t.Errorf("trade stream TTL %v on the embedded Redis, want at most 15m", ttl)
	}
	if ttl := rdb.PTTL(ctx, store.Keys().Candles(market.Synthetic, "BTC-USD", market.Interval1m)).Val(); ttl <= 0 || ttl > 24*time.Hour {
		t.Errorf("1m candles TTL %v on the embedded Redis, want at most 24h", ttl)
	}
	msg, err := announced.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no candle announced on NATS: %v", err)
	}
	var c market.Candle
	if err := c.UnmarshalJSON(msg.Data); err != nil || !c.Closed || c.Interval != market.Interval1s {
		t.Errorf("announced candle %s: %v", msg.Data, err)
	}

	// Each closed candle became an analysis job; its result is published.
	msg, err = analyzed.NextMsg(15 * time.Second)
	if err != nil {
		t.Fatalf("no analysis result published: %v\nstderr:\n%s", err, stderr)
	}
	var res analysis.Result
	if err := json.Unmarshal(msg.Data, &res); err != nil || res.Symbol != "BTC-USD" {
		t.Fatalf("analysis update %s: %v", msg.Data, err)
	}
	if _, ok := res.Values["sma_2"]; !ok {
		t.Errorf("analysis update lacks sma_2: %s", msg.Data)
	}
	q := analysis.NewQueue(rdb, analysis.QueueConfig{}, nil)
	if latest, err := q.LatestResult(context.Background(), market.Synthetic, "BTC-USD", market.Interval1s); err != nil || len(latest.Values) == 0 {
		t.Errorf("latest result in Redis: %+v, %v", latest, err)
	}

	if code, body := httpGet(t, "http://"+admin+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d %s", code, body)
	}
	if code, body := httpGet(t, "http://"+admin+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d %s", code, body)
	}
	_, metrics := httpGet(t, "http://"+admin+"/metrics")
	for _, name := range []string{"tickstash_ingest_events_total", "tickstash_ingest_candles_closed_total",
		"tickstash_cache_batch_write_duration_seconds_bucket", "tickstash_cache_trades_written_total", "go_goroutines"} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr.String(), "writes flushed") {
		t.Errorf("no shutdown message in stderr:\n%s", stderr)
	}
}

// TestRunRealServers runs the pipeline against the real Redis and NATS of the machine.
func TestRunRealServers(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	nc, err := nats.Connect(testenv.NATSURL())
	if err != nil {
		t.Fatalf("NATS at %s: %v", testenv.NATSURL(), err)
	}
	defer nc.Close()
	announced, err := nc.SubscribeSync("ts.candles.synthetic.ETH-USD.1s")
	if err != nil {
		t.Fatal(err)
	}
	streamArgs, _, _ := testStreams(t, prefix[3:])
	stderr, stop := started(t, append([]string{"run", "--admin-addr", "127.0.0.1:0", "--intervals", "1s",
		// A NATS cluster URL: one seed is down, the client uses the other.
		"--redis-url", redistest.URL(), "--nats-url", "nats://127.0.0.1:1," + testenv.NATSURL(), "--key-prefix", prefix,
		"--synthetic-rate", "300", "--grace", "100ms", "--flush-interval", "50ms"}, streamArgs...)...)
	admin := find(t, stderr, `Admin  http://(\S+)/metrics`)
	if strings.Contains(stderr.String(), "embedded") {
		t.Errorf("started embedded servers although URLs were given:\n%s", stderr)
	}
	store := cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: prefix}, nil)
	testenv.WaitFor(t, "ETH-USD ticker and candles in Redis", func() bool {
		tk, err := store.Ticker(context.Background(), market.Synthetic, "ETH-USD")
		cs, _ := store.LastCandles(context.Background(), market.Synthetic, "ETH-USD", market.Interval1s, 2)
		return err == nil && tk.Last.IsPositive() && len(cs) == 2
	})
	if _, err := announced.NextMsg(10 * time.Second); err != nil {
		t.Errorf("no ETH-USD candle announced on the real NATS: %v", err)
	}
	if code, _ := httpGet(t, "http://"+admin+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d", code)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", code, stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"nope"}, 2, `unknown command "nope"`},
		{[]string{"run", "--intervals", "2m"}, 2, `unknown interval "2m"`},
		{[]string{"run", "--empty", "zero"}, 2, "want skip or flat"},
		{[]string{"run", "--source", "mars"}, 2, `--source "mars"`},
		{[]string{"run", "--watermark", "tide"}, 2, `want auto, wall or event`},
		{[]string{"run", "--candle-retention", "1m=forever"}, 2, "not a positive duration"},
		{[]string{"candles", "--interval", "7m"}, 2, `unknown interval "7m"`},
		{[]string{"run", "--help"}, 0, "TICKSTASH_REDIS_URL"},
		{[]string{"version"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Setenv("TICKSTASH_REDIS_URL", "")
			var out, errb bytes.Buffer
			code := Main(context.Background(), append(tt.args, "--admin-addr", "127.0.0.1:0")[:len(tt.args)], strings.NewReader(""), &out, &errb)
			if code != tt.code || !strings.Contains(errb.String()+out.String(), tt.want) {
				t.Errorf("exit %d, output:\n%s%s\nwant exit %d and %q", code, out.String(), errb.String(), tt.code, tt.want)
			}
		})
	}
}

func TestEnvironmentDefaults(t *testing.T) {
	t.Setenv("TICKSTASH_INTERVALS", "9m")
	var errb bytes.Buffer
	if code := Main(context.Background(), []string{"run"}, strings.NewReader(""), io.Discard, &errb); code != 2 ||
		!strings.Contains(errb.String(), `unknown interval "9m"`) {
		t.Errorf("TICKSTASH_INTERVALS=9m: exit %d, %s", code, errb.String())
	}
	t.Setenv("TICKSTASH_INTERVALS", "")
	t.Setenv("TICKSTASH_GRACE", "soon")
	errb.Reset()
	if code := Main(context.Background(), []string{"run"}, strings.NewReader(""), io.Discard, &errb); code != 2 ||
		!strings.Contains(errb.String(), "TICKSTASH_GRACE") {
		t.Errorf("TICKSTASH_GRACE=soon: exit %d, %s", code, errb.String())
	}
}
