package gateway_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/cache/session"
	"github.com/tickstash/tickstash/cache/userstate"
	"github.com/tickstash/tickstash/featureflag"
	"github.com/tickstash/tickstash/gateway"
	"github.com/tickstash/tickstash/internal/testenv"
	"github.com/tickstash/tickstash/leaderboard"
	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/signals"
)

// The routes of the real backends: leaderboard.Store, session.SessionStore,
// userstate.UserStateStore, featureflag.Client and signals.StreamSource with the
// signals.EntitlementStore, against the real Redis and NATS.

func natsConn(t *testing.T) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(testenv.NATSURL())
	if err != nil {
		t.Fatalf("NATS at %s: %v", testenv.NATSURL(), err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// wantProblem fails t unless r is a problem document with status and a detail holding
// detail.
func wantProblem(t *testing.T, what string, r resp, status int, detail string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d: %s", what, r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%s: Content-Type %q: %s", what, ct, r.body)
	}
	if p := r.json(t); !strings.Contains(fmt.Sprint(p["detail"]), detail) {
		t.Fatalf("%s: detail %q, want it to hold %q", what, p["detail"], detail)
	}
}

func TestLeaderboardRoutes(t *testing.T) {
	var lb *leaderboard.Store
	e := start(t, func(d *gateway.Deps, c *gateway.Config) {
		var err error
		if lb, err = leaderboard.NewStore(d.Redis, leaderboard.Config{Prefix: c.Prefix}, nil); err != nil {
			t.Fatal(err)
		}
		d.Leaderboards = lb
	})
	reader, _, _ := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeLeaderboardRead}})
	writer, _, _ := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeLeaderboardWrite, gateway.ScopeLeaderboardRead}})
	const big = "123456789012345678901234567890.000000001"
	for _, b := range []string{
		`{"member":"alice","score":"10"}`,
		`{"member":"bob","score":25.5}`,
		`{"member":"alice","score":"2.25"}`, // increment: 12.25
		`{"member":"carol","score":"` + big + `","op":"set"}`,
	} {
		if r := e.do("POST", "/v1/leaderboards/traders.pnl/scores", writer, []byte(b)); r.status != 200 {
			t.Fatalf("score %s: %d %s", b, r.status, r.body)
		}
	}
	r := e.do("GET", "/v1/leaderboards/traders.pnl/top?window=day&limit=3", reader, nil)
	var top struct {
		Window  string               `json:"window"`
		Entries []gateway.BoardEntry `json:"entries"`
	}
	if err := json.Unmarshal(r.body, &top); err != nil || r.status != 200 {
		t.Fatalf("top: %d %s", r.status, r.body)
	}
	want := []gateway.BoardEntry{{"carol", 1, big}, {"bob", 2, "25.5"}, {"alice", 3, "12.25"}}
	if fmt.Sprint(top.Entries) != fmt.Sprint(want) || top.Window != "day" {
		t.Fatalf("top %+v, want %+v", top, want)
	}
	if r := e.do("GET", "/v1/leaderboards/traders.pnl/members/bob?window=week", reader, nil); r.status != 200 || r.json(t)["rank"] != float64(2) {
		t.Fatalf("rank: %d %s", r.status, r.body)
	}
	r = e.do("GET", "/v1/leaderboards/traders.pnl/members/bob/around?limit=1", reader, nil)
	var around struct {
		Count   int64                `json:"count"`
		Index   int                  `json:"index"`
		Entries []gateway.BoardEntry `json:"entries"`
	}
	if err := json.Unmarshal(r.body, &around); err != nil || around.Count != 3 || around.Index != 1 || len(around.Entries) != 3 {
		t.Fatalf("around: %d %s", r.status, r.body)
	}

	// Mercury Bot's PnL reports count once per report id.
	report := []byte(`{"user":"dave","report_id":"r-1","pnl":"-3.5"}`)
	for i, applied := range []bool{true, false} {
		r := e.do("POST", "/v1/leaderboards/traders.pnl/reports", writer, report)
		if r.status != 200 || r.json(t)["applied"] != applied {
			t.Fatalf("report %d: %d %s", i, r.status, r.body)
		}
	}
	if r := e.do("GET", "/v1/leaderboards/traders.pnl/members/dave", reader, nil); r.status != 200 || r.json(t)["score"] != "-3.5" {
		t.Fatalf("dave after a retried report: %d %s", r.status, r.body)
	}

	for _, c := range []struct {
		name, method, path, token, body string
		status                          int
		detail                          string
	}{
		{"unknown board", "GET", "/v1/leaderboards/nope/top", reader, "", 404, "unknown board"},
		{"bad window", "GET", "/v1/leaderboards/traders.pnl/top?window=year", reader, "", 400, "window"},
		{"bad limit", "GET", "/v1/leaderboards/traders.pnl/top?limit=0", reader, "", 400, "limit"},
		{"window the board lacks", "GET", "/v1/leaderboards/movers.gainers/top?window=week", reader, "", 400, "keeps no week"},
		{"not ranked", "GET", "/v1/leaderboards/traders.pnl/members/zed", reader, "", 404, "not on the board"},
		{"around not ranked", "GET", "/v1/leaderboards/traders.pnl/members/zed/around", reader, "", 404, "not on the board"},
		{"read-only token writes", "POST", "/v1/leaderboards/traders.pnl/scores", reader, `{"member":"x","score":"1"}`, 403, "leaderboard:write"},
		{"invalid decimal", "POST", "/v1/leaderboards/traders.pnl/scores", writer, `{"member":"x","score":"1.2.3"}`, 400, "decimal"},
		{"missing score", "POST", "/v1/leaderboards/traders.pnl/scores", writer, `{"member":"x"}`, 400, "score is required"},
		{"empty member", "POST", "/v1/leaderboards/traders.pnl/scores", writer, `{"member":"","score":"1"}`, 400, "member"},
		{"long member", "POST", "/v1/leaderboards/traders.pnl/scores", writer, `{"member":"` + strings.Repeat("m", 201) + `","score":"1"}`, 400, "member"},
		{"bad op", "POST", "/v1/leaderboards/traders.pnl/scores", writer, `{"member":"x","score":"1","op":"max"}`, 400, "op"},
		{"value too large", "POST", "/v1/leaderboards/traders.pnl/scores", writer, `{"member":"x","score":"1e2000"}`, 400, "invalid value"},
		{"write unknown board", "POST", "/v1/leaderboards/nope/scores", writer, `{"member":"x","score":"1"}`, 404, "unknown board"},
		{"report without id", "POST", "/v1/leaderboards/traders.pnl/reports", writer, `{"user":"x","pnl":"1"}`, 400, "report_id"},
		{"report without pnl", "POST", "/v1/leaderboards/traders.pnl/reports", writer, `{"user":"x","report_id":"r"}`, 400, "pnl"},
		{"report wrong type", "POST", "/v1/leaderboards/traders.pnl/reports", writer, `{"user":5,"report_id":"r","pnl":"1"}`, 400, "user"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var body []byte
			if c.body != "" {
				body = []byte(c.body)
			}
			wantProblem(t, c.name, e.do(c.method, c.path, c.token, body), c.status, c.detail)
		})
	}
	if n, err := lb.Count(context.Background(), leaderboard.BoardTraderPnL, leaderboard.AllTime); err != nil || n != 4 {
		t.Fatalf("refused writes reached the board: %d members, %v", n, err)
	}
}

func TestSessionRoutes(t *testing.T) {
	e := start(t, func(d *gateway.Deps, c *gateway.Config) {
		d.Sessions = session.NewSessionStore(d.Redis, session.SessionConfig{Prefix: c.Prefix, MaxPerUser: 2, MaxDataBytes: 64, TTL: time.Hour}, nil)
	})
	scopes := []gateway.Scope{gateway.ScopeSessionsRead, gateway.ScopeSessionsWrite}
	alice, _, _ := e.token(gateway.TokenSpec{Subject: "alice", Scopes: scopes})
	bob, _, _ := e.token(gateway.TokenSpec{Subject: "bob", Scopes: scopes})
	dotted, _, _ := e.token(gateway.TokenSpec{Subject: "bot.one", Scopes: scopes})
	create := func(tok, body string) (string, resp) {
		t.Helper()
		r := e.do("POST", "/v1/sessions", tok, []byte(body))
		if r.status != 201 {
			return "", r
		}
		id, _ := r.json(t)["id"].(string)
		if r.header.Get("Location") != "/v1/sessions/"+url.PathEscape(id) {
			t.Fatalf("Location %q for %q", r.header.Get("Location"), id)
		}
		return id, r
	}
	id1, r := create(alice, `{"data":{"chat":42}}`)
	if id1 == "" {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	path := "/v1/sessions/" + url.PathEscape(id1)
	r = e.do("GET", path, alice, nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"data":{"chat":42}`) || r.json(t)["user"] != "alice" {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	if r := e.do("POST", path+"/touch", alice, nil); r.status != 204 {
		t.Fatalf("touch: %d %s", r.status, r.body)
	}
	// Another user can neither read, touch nor end it, and learns nothing of it.
	wantProblem(t, "bob reads alice's session", e.do("GET", path, bob, nil), 404, "not found")
	wantProblem(t, "bob touches alice's session", e.do("POST", path+"/touch", bob, nil), 404, "not found")
	wantProblem(t, "bob ends alice's session", e.do("DELETE", path, bob, nil), 404, "not found")
	if r := e.do("GET", path, alice, nil); r.status != 200 {
		t.Fatalf("alice's session after bob's attempts: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/sessions", bob, nil); r.status != 200 || !strings.Contains(string(r.body), `"sessions":[]`) {
		t.Fatalf("bob's list: %d %s", r.status, r.body)
	}
	// The cap: a third session evicts the oldest.
	id2, _ := create(alice, `{"data":"two"}`)
	id3, _ := create(alice, `{}`)
	var list struct {
		Sessions []struct {
			ID   string          `json:"id"`
			Data json.RawMessage `json:"data"`
		} `json:"sessions"`
	}
	r = e.do("GET", "/v1/sessions", alice, nil)
	if err := json.Unmarshal(r.body, &list); err != nil || len(list.Sessions) != 2 || list.Sessions[0].ID != id2 || list.Sessions[1].ID != id3 ||
		string(list.Sessions[1].Data) != "null" {
		t.Fatalf("list after the cap: %d %s", r.status, r.body)
	}
	wantProblem(t, "evicted session", e.do("GET", path, alice, nil), 404, "not found")
	p2 := "/v1/sessions/" + url.PathEscape(id2)
	if r := e.do("DELETE", p2, alice, nil); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	wantProblem(t, "deleted session", e.do("GET", p2, alice, nil), 404, "not found")
	wantProblem(t, "touch deleted", e.do("POST", p2+"/touch", alice, nil), 404, "not found")

	wantProblem(t, "not JSON", e.do("POST", "/v1/sessions", alice, []byte(`{"data":nope}`)), 400, "malformed JSON")
	wantProblem(t, "unknown field", e.do("POST", "/v1/sessions", alice, []byte(`{"ttl":5}`)), 400, "ttl")
	wantProblem(t, "too large", e.do("POST", "/v1/sessions", alice, []byte(`{"data":"`+strings.Repeat("x", 100)+`"}`)), 413, "too large")
	wantProblem(t, "unknown id", e.do("GET", "/v1/sessions/alice.nope", alice, nil), 404, "not found")
	wantProblem(t, "subject unfit for sessions", e.do("POST", "/v1/sessions", dotted, []byte(`{}`)), 400, "user")
	if r := e.do("GET", "/v1/sessions", alice, nil); !strings.Contains(string(r.body), id3) || strings.Count(string(r.body), `"id"`) != 1 {
		t.Fatalf("refused creates wrote sessions: %s", r.body)
	}
}

func TestStateRoutes(t *testing.T) {
	e := start(t, func(d *gateway.Deps, c *gateway.Config) {
		d.UserState = userstate.NewUserStateStore(d.Redis, userstate.UserStateConfig{Prefix: c.Prefix, MaxBytes: 100}, nil)
	})
	scopes := []gateway.Scope{gateway.ScopeStateRead, gateway.ScopeStateWrite}
	alice, _, _ := e.token(gateway.TokenSpec{Subject: "alice", Scopes: scopes})
	bob, _, _ := e.token(gateway.TokenSpec{Subject: "bob", Scopes: scopes})
	r := e.do("GET", "/v1/state", alice, nil)
	if r.status != 200 || r.header.Get("ETag") != `"0"` || !strings.Contains(string(r.body), `"state":null`) || r.json(t)["version"] != float64(0) {
		t.Fatalf("empty state: %d %v %s", r.status, r.header, r.body)
	}
	r = e.do("PUT", "/v1/state", alice, []byte(`{"version":0,"state":{"watch":["BTC-USDT"]}}`))
	if r.status != 200 || r.json(t)["version"] != float64(1) || r.header.Get("ETag") != `"1"` {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	// A writer that read version 0 is stale now.
	r = e.do("PUT", "/v1/state", alice, []byte(`{"state":{"watch":[]}}`), "If-Match", `"0"`)
	wantProblem(t, "stale If-Match", r, 409, "version 1, not 0")
	if r.header.Get("ETag") != `"1"` {
		t.Fatalf("conflict ETag %q, want the current version", r.header.Get("ETag"))
	}
	wantProblem(t, "stale body version", e.do("PUT", "/v1/state", alice, []byte(`{"version":0,"state":1}`)), 409, "conflict")
	if r := e.do("PUT", "/v1/state", alice, []byte(`{"state":{"watch":["ETH-USDT"]}}`), "If-Match", `"1"`); r.status != 200 || r.json(t)["version"] != float64(2) {
		t.Fatalf("update: %d %s", r.status, r.body)
	}
	r = e.do("GET", "/v1/state", alice, nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"state":{"watch":["ETH-USDT"]}`) || r.header.Get("ETag") != `"2"` {
		t.Fatalf("read back: %d %s", r.status, r.body)
	}
	// Concurrent writers of one version: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for i := range 8 {
		wg.Go(func() {
			r := e.do("PUT", "/v1/state", alice, []byte(fmt.Sprintf(`{"version":2,"state":%d}`, i)))
			mu.Lock()
			statuses[r.status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if statuses[200] != 1 || statuses[409] != 7 {
		t.Fatalf("concurrent writers: %v, want one 200 and seven 409", statuses)
	}
	for _, c := range []struct {
		name, body, ifMatch string
		status              int
		detail              string
	}{
		{"no version", `{"state":{}}`, "", 428, "If-Match"},
		{"too large", `{"version":3,"state":"` + strings.Repeat("x", 200) + `"}`, "", 413, "too large"},
		{"no state", `{"version":3}`, "", 400, "state is required"},
		{"bad If-Match", `{"state":{}}`, "W/abc", 400, "If-Match"},
		{"If-Match and body disagree", `{"version":2,"state":{}}`, `"3"`, 400, "If-Match says version 3"},
		{"negative", `{"version":-1,"state":{}}`, "", 400, "version -1"},
		{"malformed", `{"version":3,"state":}`, "", 400, "malformed JSON"},
		{"wrong type", `{"version":"3","state":{}}`, "", 400, "version"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var hdr []string
			if c.ifMatch != "" {
				hdr = []string{"If-Match", c.ifMatch}
			}
			wantProblem(t, c.name, e.do("PUT", "/v1/state", alice, []byte(c.body), hdr...), c.status, c.detail)
		})
	}
	if r := e.do("GET", "/v1/state", alice, nil); r.header.Get("ETag") != `"3"` {
		t.Fatalf("refused updates changed the version: %s %s", r.header.Get("ETag"), r.body)
	}
	if r := e.do("GET", "/v1/state", bob, nil); r.header.Get("ETag") != `"0"` {
		t.Fatalf("bob sees a state: %s", r.body)
	}
}

func TestFlagRoutes(t *testing.T) {
	nc := natsConn(t)
	var fl *featureflag.Client
	e := start(t, func(d *gateway.Deps, c *gateway.Config) {
		fl = featureflag.New(d.Redis, nc, featureflag.Config{Prefix: c.Prefix, Subject: "ts.flags.changed." + c.Prefix}, nil, nil)
		d.Flags = fl
	})
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- fl.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-runDone })
	// Another process writes the definitions; the gateway's copy hears of it over NATS.
	admin := featureflag.New(e.rdb, nc, featureflag.Config{Prefix: e.prefix, Subject: "ts.flags.changed." + e.prefix}, nil, nil)
	scopes := []gateway.Scope{gateway.ScopeFlagsRead}
	alice, _, _ := e.token(gateway.TokenSpec{Subject: "alice", Scopes: scopes})
	bob, _, _ := e.token(gateway.TokenSpec{Subject: "bob", Scopes: scopes})
	eval := func(tok, q string) map[string]any {
		t.Helper()
		r := e.do("GET", "/v1/flags/new-ui"+q, tok, nil)
		if r.status != 200 {
			t.Fatalf("eval %s: %d %s", q, r.status, r.body)
		}
		return r.json(t)
	}
	testenv.WaitFor(t, "first load", func() bool { return e.do("GET", "/v1/flags/new-ui?default=off", alice, nil).status == 200 })
	wantProblem(t, "unknown flag", e.do("GET", "/v1/flags/new-ui", alice, nil), 404, "not defined")
	if got := eval(alice, "?default=blue"); got["known"] != false || got["variant"] != "blue" || got["enabled"] != false {
		t.Fatalf("unknown flag with default: %v", got)
	}
	err := admin.Set(context.Background(), featureflag.Flag{Key: "new-ui", Enabled: true, Targets: map[string][]string{"on": {"alice"}},
		Rules: []featureflag.Rule{{Attribute: "country", Op: "eq", Values: []string{"DE"}, Variant: "on"}}, Fallthrough: "off"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "change over NATS", func() bool { return e.do("GET", "/v1/flags/new-ui", alice, nil).status == 200 })
	if got := eval(alice, ""); got["variant"] != "on" || got["enabled"] != true || got["subject"] != "alice" {
		t.Fatalf("alice (targeted): %v", got)
	}
	if got := eval(bob, ""); got["variant"] != "off" || got["enabled"] != false {
		t.Fatalf("bob: %v", got)
	}
	if got := eval(bob, "?attr=country=DE&attr=tier=pro"); got["variant"] != "on" {
		t.Fatalf("bob in DE (rule): %v", got)
	}
	wantProblem(t, "bad key", e.do("GET", "/v1/flags/New_UI!", alice, nil), 400, "flag")
	wantProblem(t, "bad attr", e.do("GET", "/v1/flags/new-ui?attr=country", alice, nil), 400, "key=value")
	wantProblem(t, "too many attrs", e.do("GET", "/v1/flags/new-ui?"+strings.Repeat("attr=a=b&", 33), alice, nil), 400, "at most 32")
	wantProblem(t, "wrong scope", e.do("GET", "/v1/flags/new-ui", e.mustToken(gateway.ScopeStateRead), nil), 403, "flags:read")
}

func (e *env) mustToken(scopes ...gateway.Scope) string {
	raw, _, _ := e.token(gateway.TokenSpec{Scopes: scopes})
	return raw
}

// uniqueSignalStream returns a JetStream stream of its own for t, deleted at the end.
func uniqueSignalStream(t *testing.T, nc *nats.Conn) signals.StreamConfig {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	sc := signals.StreamConfig{Stream: "TT_GW_" + id, SubjectPrefix: "tt" + id + ".signals"}
	testenv.DeleteStreams(t, sc.Stream)
	return sc
}

func testSignal(strategy string, sym market.Symbol, i int) market.Signal {
	ct := time.Date(2026, 1, 1, 0, i, 0, 0, time.UTC)
	return market.Signal{
		ID: market.SignalID(strategy, market.Binance, sym, market.Interval1m, ct), Schema: market.SignalSchema,
		Strategy: strategy, Exchange: market.Binance, Symbol: sym, Interval: market.Interval1m,
		CandleTime: ct, Side: market.Buy, Price: decimal.RequireFromString("95000.5"), Strength: 1,
		Time: ct.Add(time.Minute), Indicators: map[string]float64{"rsi_14": 31},
	}
}

// TestSSEOverJetStream streams real signals from JetStream, filtered by the real
// entitlement store, and resumes with Last-Event-ID.
func TestSSEOverJetStream(t *testing.T) {
	nc := natsConn(t)
	sc := uniqueSignalStream(t, nc)
	ctx := context.Background()
	dist, err := signals.NewDistributor(ctx, nc, signals.DistributorConfig{StreamConfig: sc, Memory: true}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// seq 1..5: rsi BTC, premium BTC, rsi ETH, rsi BTC, premium ETH
	for i, s := range []market.Signal{testSignal("rsi", "BTC-USDT", 1), testSignal("premium", "BTC-USDT", 2),
		testSignal("rsi", "ETH-USDT", 3), testSignal("rsi", "BTC-USDT", 4), testSignal("premium", "ETH-USDT", 5)} {
		if err := dist.Publish(ctx, s); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	e := start(t, func(d *gateway.Deps, c *gateway.Config) {
		src, err := signals.NewStreamSource(nc, signals.StreamSourceConfig{StreamConfig: sc})
		if err != nil {
			t.Fatal(err)
		}
		ents := signals.NewEntitlementStore(d.Redis, signals.EntitlementConfig{Prefix: c.Prefix})
		if err := ents.Put(ctx, signals.Entitlement{User: "alice", Strategies: []string{"rsi"}, Symbols: []string{signals.Any}}); err != nil {
			t.Fatal(err)
		}
		d.Signals, d.Entitlements = src, ents
	})
	alice, _, _ := e.token(gateway.TokenSpec{Subject: "alice", Scopes: []gateway.Scope{gateway.ScopeSignalsRead}})
	nobody, _, _ := e.token(gateway.TokenSpec{Subject: "nobody", Scopes: []gateway.Scope{gateway.ScopeSignalsRead}})
	read := func(tok, query, lastID string, n int, wait time.Duration) []string {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		req, _ := http.NewRequestWithContext(rctx, "GET", e.url+"/v1/signals/stream"+query, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("stream: %d", res.StatusCode)
		}
		var got []string
		sc := bufio.NewScanner(res.Body)
		id := ""
		for len(got) < n && sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "id: "); ok {
				id = v
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok && id != "" {
				var ev gateway.SignalEvent
				if err := json.Unmarshal([]byte(v), &ev); err != nil {
					t.Fatalf("event %s: %v", v, err)
				}
				if fmt.Sprint(ev.Seq) != id || !strings.Contains(string(ev.Data), `"price":"95000.5"`) {
					t.Fatalf("event id %s data %s", id, v)
				}
				got = append(got, fmt.Sprintf("%d:%s:%s", ev.Seq, ev.Strategy, ev.Symbol))
				id = ""
			}
		}
		return got
	}
	// A late joiner gets the last signal per subject it is entitled to.
	if got := strings.Join(read(alice, "", "", 2, 5*time.Second), " "); got != "3:rsi:ETH-USDT 4:rsi:BTC-USDT" {
		t.Fatalf("first read: %s", got)
	}
	// Resume after 1: the later entitled ones, in order.
	if got := strings.Join(read(alice, "", "1", 2, 5*time.Second), " "); got != "3:rsi:ETH-USDT 4:rsi:BTC-USDT" {
		t.Fatalf("resume after 1: %s", got)
	}
	if got := strings.Join(read(alice, "?symbol=BTC-USDT", "0", 1, 5*time.Second), " "); got != "4:rsi:BTC-USDT" {
		t.Fatalf("BTC only: %s", got)
	}
	// Live: a signal published while the stream is open.
	liveDone := make(chan []string, 1)
	go func() { liveDone <- read(alice, "?strategy=rsi", "4", 1, 5*time.Second) }()
	time.Sleep(200 * time.Millisecond)
	if err := dist.Publish(ctx, testSignal("rsi", "SOL-USDT", 6)); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(<-liveDone, " "); got != "6:rsi:SOL-USDT" {
		t.Fatalf("live: %s", got)
	}
	// Without an entitlement nothing comes through.
	if got := read(nobody, "", "", 1, 700*time.Millisecond); len(got) != 0 {
		t.Fatalf("unentitled user got %v", got)
	}
}
