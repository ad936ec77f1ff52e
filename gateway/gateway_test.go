package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/analysis"
	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/gateway"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/market"
)

// fakeJobs records what reaches the queue, so tests can see that bad input wrote nothing.
type fakeJobs struct {
	mu    sync.Mutex
	specs []analysis.JobSpec
}

func (f *fakeJobs) Enqueue(_ context.Context, s analysis.JobSpec) (string, error) {
	if err := s.Validate(); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.specs = append(f.specs, s)
	return fmt.Sprintf("job%d", len(f.specs)), nil
}
func (f *fakeJobs) Status(_ context.Context, id string) (analysis.JobStatus, error) {
	return analysis.JobStatus{}, fmt.Errorf("%w: %s", analysis.ErrJobNotFound, id)
}
func (f *fakeJobs) LatestResult(context.Context, market.Exchange, market.Symbol, market.Interval) (analysis.Result, error) {
	return analysis.Result{}, analysis.ErrNoResult
}
func (f *fakeJobs) LatestResultOf(context.Context, market.Exchange, market.Symbol, market.Interval, string) (analysis.Result, error) {
	return analysis.Result{}, analysis.ErrNoResult
}
func (f *fakeJobs) n() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.specs) }

func withMarket(e **cache.MarketStore) func(*gateway.Deps, *gateway.Config) {
	return func(d *gateway.Deps, c *gateway.Config) {
		*e = cache.NewMarketStore(d.Redis, cache.MarketConfig{Prefix: c.Prefix}, nil)
		d.Market = *e
	}
}

func TestMarketRoutesAndStatuses(t *testing.T) {
	var store *cache.MarketStore
	jobs := &fakeJobs{}
	e := start(t, func(d *gateway.Deps, c *gateway.Config) {
		withMarket(&store)(d, c)
		d.Jobs = jobs
		c.MaxBodyBytes = 1024
	})
	now := time.Now().UTC().Truncate(time.Millisecond)
	tr := market.Trade{Exchange: "binance", Symbol: "BTC-USDT", ID: "1", Price: decimal.RequireFromString("65000.5"),
		Qty: decimal.RequireFromString("0.25"), Side: market.Buy, Time: now}
	if _, err := store.Write(context.Background(), &cache.Batch{Trades: []market.Trade{tr}}); err != nil {
		t.Fatal(err)
	}
	reader, _, _ := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeMarketRead}})
	writer, _, _ := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeJobsWrite}})

	r := e.do("GET", "/v1/markets/binance/BTC-USDT/ticker", reader, nil)
	if r.status != 200 || r.json(t)["last"] != "65000.5" || r.header.Get("X-Request-Id") == "" {
		t.Fatalf("ticker: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/markets/binance/BTC-USDT/trades?limit=5", reader, nil); r.status != 200 || !strings.Contains(string(r.body), `"65000.5"`) {
		t.Fatalf("trades: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/markets", reader, nil); r.status != 200 || !strings.Contains(string(r.body), "BTC-USDT") {
		t.Fatalf("markets: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/markets/binance/BTC-USDT/candles?interval=1m", reader, nil); r.status != 200 {
		t.Fatalf("candles: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/markets/binance/BTC-USDT/ticker", reader, nil, "X-Request-Id", "abc-123"); r.header.Get("X-Request-Id") != "abc-123" {
		t.Fatalf("request id not echoed: %q", r.header.Get("X-Request-Id"))
	}

	big := `{"exchange":"binance","symbol":"BTC-USDT","interval":"1m","analyzer":"` + strings.Repeat("a", 2000) + `"}`
	cases := []struct {
		name, method, path, token, body string
		want                            int
		detail                          string
	}{
		{"no token", "GET", "/v1/markets/binance/BTC-USDT/ticker", "", "", 401, "no token"},
		{"malformed token", "GET", "/v1/markets", "nope", "", 401, "malformed"},
		{"unknown token", "GET", "/v1/markets", "tsk_" + strings.Repeat("A", 43), "", 401, "unknown token"},
		{"wrong scope", "GET", "/v1/markets", writer, "", 403, "lacks the scope market:read"},
		{"wrong scope for write", "POST", "/v1/jobs", reader, `{}`, 403, "jobs:write"},
		{"unknown route", "GET", "/v1/nothing", reader, "", 404, "no route"},
		{"wrong method", "DELETE", "/v1/markets", reader, "", 405, "not allowed"},
		{"unknown market", "GET", "/v1/markets/binance/NOPE-USDT/ticker", reader, "", 404, "not found"},
		{"bad interval", "GET", "/v1/markets/binance/BTC-USDT/candles?interval=7m", reader, "", 400, "interval"},
		{"bad limit", "GET", "/v1/markets/binance/BTC-USDT/trades?limit=-1", reader, "", 400, "limit"},
		{"malformed JSON", "POST", "/v1/jobs", writer, `{"exchange":`, 400, "malformed JSON"},
		{"wrong type", "POST", "/v1/jobs", writer, `{"exchange":"binance","symbol":5}`, 400, "symbol"},
		{"unknown field", "POST", "/v1/jobs", writer, `{"exchange":"binance","bogus":1}`, 400, "bogus"},
		{"invalid job", "POST", "/v1/jobs", writer, `{"exchange":"binance","symbol":"BTC-USDT","interval":"1m","analyzer":"BAD NAME"}`, 400, "analyzer"},
		{"oversized body", "POST", "/v1/jobs", writer, big, 413, "exceeds"},
		{"two values", "POST", "/v1/jobs", writer, `{} {}`, 400, "more than one"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body []byte
			if c.body != "" {
				body = []byte(c.body)
			}
			r := e.do(c.method, c.path, c.token, body)
			if r.status != c.want {
				t.Fatalf("status %d, want %d: %s", r.status, c.want, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type %q", ct)
			}
			if p := r.json(t); !strings.Contains(fmt.Sprint(p["detail"]), c.detail) || p["status"] != float64(c.want) {
				t.Fatalf("problem %v, want detail with %q", p, c.detail)
			}
		})
	}
	if jobs.n() != 0 {
		t.Fatalf("bad requests reached the queue: %d jobs", jobs.n())
	}
	r = e.do("POST", "/v1/jobs", writer, []byte(`{"exchange":"binance","symbol":"BTC-USDT","interval":"1m","analyzer":"default"}`))
	if r.status != 202 || jobs.n() != 1 || r.header.Get("Location") != "/v1/jobs/job1" {
		t.Fatalf("submit: %d %s (jobs %d)", r.status, r.body, jobs.n())
	}
	if r := e.do("GET", "/metrics-not-here", "", nil); r.status != 404 {
		t.Fatalf("unknown path: %d", r.status)
	}
}

func TestTokenExpiryRevocationAndCache(t *testing.T) {
	var store *cache.MarketStore
	e := start(t, withMarket(&store))
	raw, _, tok := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeMarketRead}, TTL: time.Minute})
	if r := e.do("GET", "/v1/markets", raw, nil); r.status != 200 {
		t.Fatalf("fresh token: %d %s", r.status, r.body)
	}
	e.clock.Add(time.Minute)
	if r := e.do("GET", "/v1/markets", raw, nil); r.status != 401 || !strings.Contains(string(r.body), "expired") {
		t.Fatalf("expired token: %d %s", r.status, r.body)
	}
	raw2, _, tok2 := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeMarketRead}})
	if err := e.srv.Tokens().Revoke(context.Background(), tok2.ID); err != nil {
		t.Fatal(err)
	}
	if r := e.do("GET", "/v1/markets", raw2, nil); r.status != 401 || !strings.Contains(string(r.body), "revoked") {
		t.Fatalf("revoked token: %d %s", r.status, r.body)
	}
	list, err := e.srv.Tokens().List(context.Background())
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %v %v", list, err)
	}
	if err := e.srv.Tokens().Revoke(context.Background(), "tok_nope"); err == nil {
		t.Fatal("revoking an unknown id succeeded")
	}
	// Only the hash is stored.
	keys := redistest.Keys(t, e.rdb, e.prefix+":gw:tok:*")
	for _, k := range keys {
		h, _ := e.rdb.HGetAll(context.Background(), k).Result()
		for _, v := range h {
			if strings.Contains(v, raw) || strings.Contains(v, raw2) {
				t.Fatalf("token stored in clear in %s", k)
			}
		}
		if ttl := e.rdb.TTL(context.Background(), k).Val(); ttl <= 0 {
			t.Fatalf("%s has no TTL", k)
		}
	}
	_ = tok
}

func sign(t *testing.T, e *env, secret, method, path string, at time.Time, body []byte) []string {
	t.Helper()
	return []string{gateway.HeaderTimestamp, strconv.FormatInt(at.Unix(), 10), gateway.HeaderSignature, gateway.Sign(secret, method, path, at, body)}
}

func TestSignatures(t *testing.T) {
	jobs := &fakeJobs{}
	e := start(t, func(d *gateway.Deps, c *gateway.Config) { d.Jobs = jobs; c.SignatureSkew = time.Minute })
	raw, secret, tok := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeJobsWrite}, Signing: true})
	body := []byte(`{"exchange":"binance","symbol":"BTC-USDT","interval":"1m","analyzer":"default"}`)
	now := e.clock.Now()
	h := sign(t, e, secret, "POST", "/v1/jobs?x=1", now, body)
	if r := e.do("POST", "/v1/jobs?x=1", raw, body, h...); r.status != 202 {
		t.Fatalf("signed: %d %s", r.status, r.body)
	}
	for _, c := range []struct {
		name   string
		hdr    []string
		body   []byte
		detail string
	}{
		{"replay", h, body, "already used"},
		{"unsigned", nil, body, "requires signed requests"},
		{"stale", sign(t, e, secret, "POST", "/v1/jobs?x=1", now.Add(-2*time.Minute), body), body, "away from the server's clock"},
		{"future", sign(t, e, secret, "POST", "/v1/jobs?x=1", now.Add(2*time.Minute), body), body, "away from the server's clock"},
		{"other body", sign(t, e, secret, "POST", "/v1/jobs?x=1", now.Add(time.Second), body), []byte(`{"exchange":"kraken","symbol":"BTC-USDT","interval":"1m"}`), "does not match"},
		{"other path", sign(t, e, secret, "POST", "/v1/jobs?x=2", now.Add(time.Second), body), body, "does not match"},
		{"garbage", []string{gateway.HeaderTimestamp, "x", gateway.HeaderSignature, "v1=zz"}, body, "Unix seconds"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("POST", "/v1/jobs?x=1", raw, c.body, c.hdr...)
			if r.status != 401 || !strings.Contains(string(r.body), c.detail) {
				t.Fatalf("%d %s, want 401 with %q", r.status, r.body, c.detail)
			}
		})
	}
	if jobs.n() != 1 {
		t.Fatalf("refused signed requests reached the queue: %d", jobs.n())
	}
	// Rotation: the new and the previous secret both work; the one before is gone.
	newSecret, err := e.srv.Tokens().RotateSecret(context.Background(), tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range []string{newSecret, secret} {
		at := now.Add(time.Duration(i+2) * time.Second)
		if r := e.do("POST", "/v1/jobs", raw, body, sign(t, e, s, "POST", "/v1/jobs", at, body)...); r.status != 202 {
			t.Fatalf("secret %d after rotation: %d %s", i, r.status, r.body)
		}
	}
	if _, err := e.srv.Tokens().RotateSecret(context.Background(), tok.ID); err != nil {
		t.Fatal(err)
	}
	if r := e.do("POST", "/v1/jobs", raw, body, sign(t, e, secret, "POST", "/v1/jobs", now.Add(9*time.Second), body)...); r.status != 401 {
		t.Fatalf("secret two rotations old still works: %d", r.status)
	}
	// Nonces expire.
	keys := redistest.Keys(t, e.rdb, e.prefix+":gw:sig:*")
	if len(keys) == 0 {
		t.Fatal("no nonce keys")
	}
	for _, k := range keys {
		if ttl := e.rdb.PTTL(context.Background(), k).Val(); ttl <= 0 || ttl > 2*time.Minute+time.Second {
			t.Fatalf("%s TTL %v", k, ttl)
		}
	}
}

func TestAuditUsageAndRateLimit(t *testing.T) {
	jobs := &fakeJobs{}
	var store *cache.MarketStore
	e := start(t, func(d *gateway.Deps, c *gateway.Config) { withMarket(&store)(d, c); d.Jobs = jobs })
	raw, _, tok := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeJobsWrite, gateway.ScopeUsageRead, gateway.ScopeMarketRead}, Rate: "fixed:3/m"})
	body := []byte(`{"exchange":"binance","symbol":"BTC-USDT","interval":"1m","analyzer":"default"}`)
	if r := e.do("POST", "/v1/jobs", raw, body); r.status != 202 || r.header.Get("RateLimit-Policy") == "" || r.header.Get("RateLimit") == "" {
		t.Fatalf("submit: %d %v", r.status, r.header)
	}
	e.do("GET", "/v1/markets/binance/BTC-USDT/ticker", raw, nil) // 404: not audited
	e.do("GET", "/v1/usage", raw, nil)
	r := e.do("GET", "/v1/usage", raw, nil)
	if r.status != 429 || r.header.Get("Retry-After") == "" || r.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("4th request: %d %v %s", r.status, r.header, r.body)
	}
	e.do("GET", "/v1/markets", "", nil) // denied: no token
	entries, err := gateway.NewAuditLog(e.rdb, e.prefix).Last(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, en := range entries {
		got = append(got, fmt.Sprintf("%s %s %d %s", en.Method, en.Route, en.Status, en.TokenID))
		if en.RequestID == "" || en.Client != "127.0.0.1" || en.Time.IsZero() {
			t.Fatalf("incomplete entry %+v", en)
		}
	}
	want := []string{ // the token-less request is only counted: see trust_test.go
		"POST POST /v1/jobs 202 " + tok.ID,
		"GET GET /v1/usage 429 " + tok.ID,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if entries[0].Target != "binance:BTC-USDT:1m:default" {
		t.Fatalf("target %q", entries[0].Target)
	}
	if ttl := e.rdb.TTL(context.Background(), e.prefix+":gw:{audit}").Val(); ttl <= 0 {
		t.Fatal("audit stream without TTL")
	}
	// Usage: a fresh token reads its own counters.
	raw2, _, _ := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeUsageRead, gateway.ScopeMarketRead}})
	e.do("GET", "/v1/markets", raw2, nil)
	e.do("GET", "/v1/markets", raw2, nil)
	r = e.do("GET", "/v1/usage?days=2", raw2, nil)
	var u struct {
		Days []gateway.Usage `json:"days"`
	}
	if err := json.Unmarshal(r.body, &u); err != nil || len(u.Days) != 2 {
		t.Fatalf("usage: %s %v", r.body, err)
	}
	if today := u.Days[1]; today.Requests != 2 || today.BytesOut == 0 {
		t.Fatalf("usage today %+v, want 2 requests before this one", today)
	}
}

// fakeSignals replays a fixed list of signals from after the given Seq, then waits.
type fakeSignals struct{ events []gateway.SignalEvent }

func (f *fakeSignals) Stream(ctx context.Context, flt gateway.SignalFilter, after uint64, fn func(gateway.SignalEvent) error) error {
	for _, e := range f.events {
		if e.Seq <= after {
			continue
		}
		if len(flt.Strategies) > 0 && flt.Strategies[0] != e.Strategy {
			continue
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return nil
}

type entitlements map[string]bool // strategy -> allowed

func (en entitlements) Allowed(_ context.Context, user, strategy string, _ market.Symbol) (bool, error) {
	return user == "alice" && en[strategy], nil
}

func TestSSEResumeAndEntitlements(t *testing.T) {
	src := &fakeSignals{}
	for i := 1; i <= 6; i++ {
		strat := "momentum"
		if i%2 == 0 {
			strat = "premium"
		}
		src.events = append(src.events, gateway.SignalEvent{Seq: uint64(i), ID: fmt.Sprint("sig", i), Strategy: strat,
			Exchange: "binance", Symbol: "BTC-USDT", Data: json.RawMessage(`{"side":"buy"}`)})
	}
	e := start(t, func(d *gateway.Deps, c *gateway.Config) {
		d.Signals = src
		d.Entitlements = entitlements{"momentum": true}
	})
	raw, _, _ := e.token(gateway.TokenSpec{Name: "alice-bot", Subject: "alice", Scopes: []gateway.Scope{gateway.ScopeSignalsRead}})
	read := func(lastID string, n int) []string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/v1/signals/stream", nil)
		req.Header.Set("Authorization", "Bearer "+raw)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("stream: %d %v", res.StatusCode, res.Header)
		}
		var ids []string
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() && len(ids) < n {
			if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
				ids = append(ids, id)
			}
		}
		return ids
	}
	if got := read("", 2); strings.Join(got, ",") != "1,3" {
		t.Fatalf("first read %v, want 1,3 (premium filtered out)", got)
	}
	if got := read("3", 1); strings.Join(got, ",") != "5" {
		t.Fatalf("resume after 3: %v, want 5", got)
	}
	if r := e.do("GET", "/v1/signals/stream", raw, nil, "Last-Event-ID", "x"); r.status != 400 {
		t.Fatalf("bad Last-Event-ID: %d", r.status)
	}
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := start(t, nil)
	r := e.do("GET", "/openapi.json", "", nil)
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi: %v %s", err, r.body[:min(200, len(r.body))])
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
			// Every documented operation is served: a request to it is not a 404/405
			// from the router (no token: 401, or 200 for the public document).
			concrete := strings.NewReplacer("{exchange}", "binance", "{symbol}", "BTC-USDT", "{id}", "x", "{board}", "b",
				"{member}", "m", "{flag}", "f", "{command}", "get/k").Replace(path)
			res := e.do(strings.ToUpper(method), concrete, "", nil)
			if res.status == 404 || res.status == 405 {
				t.Errorf("documented %s %s is not routed: %d %s", method, path, res.status, res.body)
			}
			if op["summary"] == "" || op["responses"] == nil {
				t.Errorf("%s %s: no summary or responses", method, path)
			}
		}
	}
	for _, rt := range e.srv.Routes() {
		p := strings.ReplaceAll(rt, "...}", "}")
		if !documented[p] {
			t.Errorf("route %s is not in /openapi.json", rt)
		}
	}
	if len(documented) != len(e.srv.Routes()) {
		t.Errorf("%d documented operations, %d routes", len(documented), len(e.srv.Routes()))
	}
}
