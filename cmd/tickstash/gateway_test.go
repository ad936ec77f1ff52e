package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/internal/redisconn"
	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/signals"
)

// TestRunServesGateway runs the pipeline with its gateway on embedded servers, creates a
// token with `tickstash token create`, and reads live market data, candles and
// indicators over HTTP, as a bot would; without a token the gateway refuses. A second
// token then uses every other backend the process wires: a PnL report and a
// leaderboard read, a session round trip, a state update refused as stale (409), a
// flag set with `tickstash flags set` and evaluated, and a signal read as an SSE event.
func TestRunServesGateway(t *testing.T) {
	t.Setenv("TICKSTASH_REDIS_URL", "")
	t.Setenv("TICKSTASH_NATS_URL", "")
	stderr, stop := started(t, "run", "--http-addr", "127.0.0.1:0", "--intervals", "1s", "--synthetic-rate", "300",
		"--grace", "100ms", "--flush-interval", "50ms", "--indicators", "sma:2 obv rsi:14")
	redisURL := find(t, stderr, `Redis  (redis://\S+)  \(embedded`)
	base := "http://" + find(t, stderr, `HTTP   http://(\S+)/v1`)

	token := createToken(t, redisURL, "--name", "bot-1", "--scopes", "market:read,jobs:read")

	get := func(path, tok string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, body := get("/v1/markets/synthetic/BTC-USD/ticker", ""); code != http.StatusUnauthorized {
		t.Errorf("without a token: %d %s", code, body)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := get("/v1/markets/synthetic/BTC-USD/candles?interval=1s&limit=5", token)
		var page struct {
			Candles []map[string]any `json:"candles"`
		}
		if code == 200 && json.Unmarshal(body, &page) == nil && len(page.Candles) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no candles over HTTP within 20s: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, body := get("/v1/markets/synthetic/BTC-USD/ticker", token)
	if code != 200 || !strings.Contains(string(body), "BTC-USD") {
		t.Errorf("ticker: %d %s", code, body)
	}
	for {
		code, body = get("/v1/markets/synthetic/BTC-USD/indicators?interval=1s", token)
		if code == 200 && strings.Contains(string(body), "sma_2") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no indicators over HTTP: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, body := get("/openapi.json", ""); code != 200 || !strings.Contains(string(body), `"openapi"`) {
		t.Errorf("/openapi.json: %d %.200s", code, body)
	}
	natsURL := find(t, stderr, `NATS   (nats://\S+)  \(embedded`)
	testGatewayBackends(t, base, redisURL, natsURL)
	if code := stop(); code != 0 {
		t.Fatalf("run exited %d:\n%s", code, stderr)
	}
}

// createToken runs `tickstash token create` with args and returns the token it prints.
func createToken(t *testing.T, redisURL string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), append([]string{"token", "create", "--redis-url", redisURL}, args...), strings.NewReader(""), &out, &errb)
	if code != 0 {
		t.Fatalf("token create: exit %d: %s", code, errb.String())
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "token"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("token create printed no token:\n%s", out.String())
	return ""
}

// testGatewayBackends uses the leaderboard, session, state, flag and signal routes of
// the gateway at base, as Mercury Bot and Arcana Bot would.
func testGatewayBackends(t *testing.T, base, redisURL, natsURL string) {
	t.Helper()
	tok := createToken(t, redisURL, "--name", "arcana", "--subject", "carol", "--scopes",
		"leaderboard:read,leaderboard:write,sessions:read,sessions:write,state:read,state:write,flags:read,signals:read")
	do := func(method, path, body string, hdr ...string) (int, http.Header, []byte) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		req.Header.Set("Authorization", "Bearer "+tok)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}

	// Leaderboards: Mercury Bot reports a trader's PnL (twice: a retry), then reads the board.
	for range 2 {
		if code, _, body := do("POST", "/v1/leaderboards/traders.pnl/reports", `{"user":"carol","report_id":"r-1","pnl":"42.5"}`); code != 200 {
			t.Fatalf("PnL report: %d %s", code, body)
		}
	}
	if code, _, body := do("GET", "/v1/leaderboards/traders.pnl/top?window=day", ""); code != 200 ||
		!strings.Contains(string(body), `{"member":"carol","rank":1,"score":"42.5"}`) {
		t.Errorf("leaderboard top: %d %s", code, body)
	}

	// Sessions: create, read, touch, list, end.
	code, hdr, body := do("POST", "/v1/sessions", `{"data":{"chat":7}}`)
	if code != 201 || hdr.Get("Location") == "" {
		t.Fatalf("session create: %d %s", code, body)
	}
	loc := hdr.Get("Location")
	if code, _, body := do("GET", loc, ""); code != 200 || !strings.Contains(string(body), `"data":{"chat":7}`) {
		t.Errorf("session get: %d %s", code, body)
	}
	if code, _, body := do("POST", loc+"/touch", ""); code != 204 {
		t.Errorf("session touch: %d %s", code, body)
	}
	if code, _, body := do("GET", "/v1/sessions", ""); code != 200 || strings.Count(string(body), `"id"`) != 1 {
		t.Errorf("session list: %d %s", code, body)
	}
	if code, _, body := do("DELETE", loc, ""); code != 204 {
		t.Errorf("session delete: %d %s", code, body)
	}
	if code, _, _ := do("GET", loc, ""); code != 404 {
		t.Errorf("ended session: %d", code)
	}

	// State: a compare-and-set; the stale writer gets 409.
	if code, _, body := do("PUT", "/v1/state", `{"version":0,"state":{"mode":"a"}}`); code != 200 {
		t.Fatalf("state create: %d %s", code, body)
	}
	if code, hdr, body := do("PUT", "/v1/state", `{"state":{"mode":"b"}}`, "If-Match", `"0"`); code != 409 ||
		hdr.Get("Content-Type") != "application/problem+json" || hdr.Get("ETag") != `"1"` {
		t.Errorf("stale state update: %d %v %s", code, hdr, body)
	}
	if code, _, body := do("GET", "/v1/state", ""); code != 200 || !strings.Contains(string(body), `"state":{"mode":"a"}`) {
		t.Errorf("state after the refused update: %d %s", code, body)
	}

	// Flags: set with the CLI (announced on NATS), evaluated by the gateway's local copy.
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"flags", "set", "new-ui", "--redis-url", redisURL, "--nats-url", natsURL},
		strings.NewReader(`{"enabled":true,"targets":{"on":["carol"]},"fallthrough":"off"}`), &out, &errb); code != 0 {
		t.Fatalf("flags set: exit %d: %s", code, errb.String())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, body := do("GET", "/v1/flags/new-ui", "")
		if code == 200 && strings.Contains(string(body), `"variant":"on"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("flag evaluation: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Signals: carol is entitled to a strategy; a signal published on the stream the
	// signals role created arrives as an SSE event.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	rdb, err := redisconn.Connect(ctx, redisURL)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if err := signals.NewEntitlementStore(rdb, signals.EntitlementConfig{}).Put(ctx,
		signals.Entitlement{User: "carol", Strategies: []string{"e2e"}, Symbols: []string{signals.Any}}); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ct := time.Now().UTC().Truncate(time.Minute)
	sig := market.Signal{ID: market.SignalID("e2e", "synthetic", "BTC-USD", market.Interval1m, ct), Schema: market.SignalSchema,
		Strategy: "e2e", Exchange: "synthetic", Symbol: "BTC-USD", Interval: market.Interval1m, CandleTime: ct,
		Side: market.Buy, Price: decimal.RequireFromString("100.5"), Strength: 1, Time: ct}
	data, err := json.Marshal(sig)
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, err = js.Publish(ctx, signals.StreamConfig{}.Subject("e2e", "synthetic", "BTC-USD"), data, jetstream.WithMsgID(sig.ID))
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond) // the signals role may not have created the stream yet
	}
	if err != nil {
		t.Fatalf("publish a signal: %v", err)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/signals/stream?strategy=e2e", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("signal stream: %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			if !strings.Contains(v, `"id":"`+sig.ID+`"`) || !strings.Contains(v, `"strategy":"e2e"`) {
				t.Fatalf("signal event %s", v)
			}
			return
		}
	}
	t.Fatalf("no signal event: %v", sc.Err())
}
