package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tickstash/tickstash/book"
	"github.com/tickstash/tickstash/book/bookstore"
	"github.com/tickstash/tickstash/gateway"
	"github.com/tickstash/tickstash/internal/testenv"
	"github.com/tickstash/tickstash/market"
)

func testBook(t *testing.T, sym market.Symbol, stale string) *book.Book {
	t.Helper()
	b := book.New(market.Binance, sym)
	for _, l := range []struct {
		s    book.Side
		p, q string
	}{{book.Bid, "100.5", "1.5"}, {book.Bid, "100.4", "2"}, {book.Bid, "100.3", "7"}, {book.Ask, "100.6", "0.25"}, {book.Ask, "100.7", "3"}} {
		if err := b.Set(l.s, []byte(l.p), []byte(l.q)); err != nil {
			t.Fatal(err)
		}
	}
	b.MarkLive(77, time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	if stale != "" {
		b.MarkStale(stale)
	}
	return b
}

func TestBookRoutes(t *testing.T) {
	e := start(t, func(d *gateway.Deps, c *gateway.Config) {
		d.Books = bookstore.NewReader(d.Redis, bookstore.ReaderConfig{Prefix: c.Prefix})
	})
	w := bookstore.New(e.rdb, bookstore.Config{Prefix: e.prefix}, nil, nil)
	w.Offer(testBook(t, "BTC-USDT", ""))
	w.Offer(testBook(t, "ETH-USDT", "gap: diff U=5 u=6 after u=3 (want U=4); fetch a new snapshot"))
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	reader, _, _ := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeMarketRead}})
	other, _, _ := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeJobsRead}})

	r := e.do("GET", "/v1/markets/binance/BTC-USDT/book?depth=2&k=1&bps=10", reader, nil)
	if r.status != 200 {
		t.Fatalf("book: %d %s", r.status, r.body)
	}
	var got struct {
		Sequence    int64       `json:"sequence"`
		StoredDepth int         `json:"stored_depth"`
		Bids        [][2]string `json:"bids"`
		Asks        [][2]string `json:"asks"`
		Spread      string      `json:"spread"`
		Mid         string      `json:"mid"`
		Microprice  string      `json:"microprice"`
		Imbalance   struct {
			Levels int    `json:"levels"`
			Value  string `json:"value"`
		} `json:"imbalance"`
		DepthWithin struct {
			Bps, BidQty, AskQty string
		} `json:"depth_within"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Sequence != 77 || len(got.Bids) != 2 || got.Bids[0] != [2]string{"100.5", "1.5"} || got.Asks[1] != [2]string{"100.7", "3"} {
		t.Errorf("book levels: %s", r.body)
	}
	if got.Spread != "0.1" || got.Mid != "100.55" || !strings.HasPrefix(got.Microprice, "100.585714285714") {
		t.Errorf("spread %s mid %s microprice %s, want 0.1, 100.55, 100.585714285714…", got.Spread, got.Mid, got.Microprice)
	}
	// (1.5 − 0.25) / 1.75 over the top level.
	if got.Imbalance.Levels != 1 || got.Imbalance.Value != "0.714285714286" {
		t.Errorf("imbalance %+v, want 0.714285714286 of 1 level", got.Imbalance)
	}
	var band map[string]any
	_ = json.Unmarshal(r.body, &struct {
		B *map[string]any `json:"depth_within"`
	}{&band})
	// ±10 bps of 100.55 is [100.44945, 100.65055]: the best level of each side.
	if band["bid_qty"] != "1.5" || band["ask_qty"] != "0.25" || band["bps"] != "10" {
		t.Errorf("depth within 10 bps: %v", band)
	}

	r = e.do("GET", "/v1/markets/binance/BTC-USDT/book/impact?side=buy&qty=2", reader, nil)
	im := r.json(t)
	// 0.25 at 100.6 and 1.75 at 100.7: 201.375 for 2, 100.6875 on average.
	if r.status != 200 || im["cost"] != "201.375" || im["avg_price"] != "100.6875" || im["slippage"] != "0.0875" ||
		im["complete"] != true || im["levels"] != float64(2) || im["slippage_bps"] != "8.697813121272" {
		t.Errorf("impact buy 2: %d %s", r.status, r.body)
	}
	r = e.do("GET", "/v1/markets/binance/BTC-USDT/book/impact?side=sell&qty=100", reader, nil)
	if im := r.json(t); r.status != 200 || im["complete"] != false || im["filled"] != "10.5" {
		t.Errorf("impact sell beyond the stored book: %d %s", r.status, r.body)
	}

	for _, c := range []struct {
		path, token string
		status      int
		detail      string
	}{
		{"/v1/markets/binance/ETH-USDT/book", reader, 503, "gap: diff U=5"},
		{"/v1/markets/binance/ETH-USDT/book/impact?side=buy&qty=1", reader, 503, "stale"},
		{"/v1/markets/binance/NOPE-USDT/book", reader, 404, "no order book"},
		{"/v1/markets/binance/BTC-USDT/book?depth=0", reader, 400, "depth"},
		{"/v1/markets/binance/BTC-USDT/book?bps=-1", reader, 400, "bps"},
		{"/v1/markets/binance/BTC-USDT/book/impact?side=up&qty=1", reader, 400, "side"},
		{"/v1/markets/binance/BTC-USDT/book/impact?side=buy&qty=0", reader, 400, "qty"},
		{"/v1/markets/binance/BTC-USDT/book/impact?side=buy&qty=x", reader, 400, "qty"},
		// Exponent forms would make the walk's decimal arithmetic build numbers of
		// a hundred million digits: refused before any arithmetic.
		{"/v1/markets/binance/BTC-USDT/book/impact?side=buy&qty=1e9999", reader, 400, "qty"},
		{"/v1/markets/binance/BTC-USDT/book/impact?side=sell&qty=1e-9999", reader, 400, "qty"},
		{"/v1/markets/binance/BTC-USDT/book?bps=1e9999", reader, 400, "bps"},
		{"/v1/markets/binance/BTC-USDT/book?bps=1E-9999", reader, 400, "bps"},
		{"/v1/markets/binance/BTC-USDT/book/impact?side=buy&qty=" + strings.Repeat("9", 41), reader, 400, "qty"},
		{"/v1/markets/binance/BTC-USDT/book", other, 403, ""},
		{"/v1/markets/binance/BTC-USDT/book", "", 401, ""},
	} {
		r := e.do("GET", c.path, c.token, nil)
		if r.status != c.status || !strings.Contains(string(r.body), c.detail) {
			t.Errorf("GET %s: %d %s, want %d with %q", c.path, r.status, r.body, c.status, c.detail)
		}
		if c.status == 503 && r.header.Get("Retry-After") == "" {
			t.Errorf("GET %s: 503 without Retry-After", c.path)
		}
	}

	r = e.do("GET", "/openapi.json", "", nil)
	for _, p := range []string{`"/v1/markets/{exchange}/{symbol}/book"`, `"/v1/markets/{exchange}/{symbol}/book/impact"`, `"/v1/markets/{exchange}/{symbol}/book/stream"`} {
		if !strings.Contains(string(r.body), p) {
			t.Errorf("the OpenAPI document lacks %s", p)
		}
	}
}

func TestBookStream(t *testing.T) {
	nc, err := nats.Connect(testenv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	e := start(t, func(d *gateway.Deps, c *gateway.Config) {
		d.Books = bookstore.NewReader(d.Redis, bookstore.ReaderConfig{Prefix: c.Prefix})
		d.NATS = nc
	})
	// A symbol of the test's own: the subject is shared by every test on this NATS.
	sym := market.Symbol("S" + strings.ToUpper(strings.TrimPrefix(e.prefix, "tt-")) + "-USDT")
	w := bookstore.New(e.rdb, bookstore.Config{Prefix: e.prefix, Publisher: nc}, nil, nil)
	w.Offer(testBook(t, sym, ""))
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	reader, _, _ := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeMarketRead}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/v1/markets/binance/"+string(sym)+"/book/stream", nil)
	req.Header.Set("Authorization", "Bearer "+reader)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	rd := bufio.NewReader(res.Body)
	next := func() string {
		t.Helper()
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("stream ended: %v", err)
			}
			if strings.HasPrefix(line, "data: ") {
				return line
			}
		}
	}
	if first := next(); !strings.Contains(first, `"sequence":77`) || !strings.Contains(first, `"state":"live"`) {
		t.Errorf("first event: %s, want the stored book", first)
	}
	// The stream subscribed before it sent the stored book, so the next publish reaches it.
	w.Offer(testBook(t, sym, "checksum mismatch: test"))
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ev := next(); !strings.Contains(ev, `"state":"stale"`) || !strings.Contains(ev, "checksum mismatch: test") {
		t.Errorf("second event: %s, want the stale book with its reason", ev)
	}
}
