package history_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/history"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/market"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// genTrades makes a seeded random market: minutes trades-per-minute 0..6 (quiet
// minutes included), prices with 2 decimals, quantities with 4, ids counting up.
func genTrades(ex market.Exchange, sym market.Symbol, minutes int, seed int64) []market.Trade {
	r := rand.New(rand.NewSource(seed))
	price := int64(9500000)
	var out []market.Trade
	id := int64(1000)
	for m := 0; m < minutes; m++ {
		n := r.Intn(7)
		if r.Intn(5) == 0 {
			n = 0
		}
		offs := make([]int, n)
		for i := range offs {
			offs[i] = r.Intn(60000)
		}
		sort.Ints(offs)
		for _, off := range offs {
			price += int64(r.Intn(2001) - 1000)
			side := market.Buy
			if r.Intn(2) == 0 {
				side = market.Sell
			}
			out = append(out, market.Trade{
				Exchange: ex, Symbol: sym, ID: strconv.FormatInt(id, 10),
				Price: decimal.New(price, -2), Qty: decimal.New(int64(1+r.Intn(50000)), -4), Side: side,
				Time: t0.Add(time.Duration(m)*time.Minute + time.Duration(off)*time.Millisecond),
			})
			id++
		}
	}
	return out
}

// naiveCandle is the expected candle, computed apart from the package's code.
type naiveCandle struct {
	open                   time.Time
	o, h, l, c, vol, quote decimal.Decimal
	n                      int64
}

// naive buckets trades by iv, with integer arithmetic on Unix milliseconds.
func naive(trades []market.Trade, iv time.Duration) []naiveCandle {
	step := iv.Milliseconds()
	var out []naiveCandle
	for _, t := range trades {
		b := t.Time.UnixMilli() - t.Time.UnixMilli()%step
		if len(out) == 0 || out[len(out)-1].open.UnixMilli() != b {
			out = append(out, naiveCandle{open: time.UnixMilli(b).UTC(), o: t.Price, h: t.Price, l: t.Price})
		}
		c := &out[len(out)-1]
		if t.Price.Cmp(c.h) > 0 {
			c.h = t.Price
		}
		if t.Price.Cmp(c.l) < 0 {
			c.l = t.Price
		}
		c.c = t.Price
		c.vol = c.vol.Add(t.Qty)
		c.quote = c.quote.Add(t.Price.Mul(t.Qty))
		c.n++
	}
	return out
}

// expected turns naive candles into the candles a backfill should store.
func expected(ex market.Exchange, sym market.Symbol, iv market.Interval, ns []naiveCandle, from, to time.Time, quote, trades bool) []market.Candle {
	var out []market.Candle
	for _, n := range ns {
		if n.open.Before(from) || !n.open.Before(to) {
			continue
		}
		c := market.Candle{Exchange: ex, Symbol: sym, Interval: iv, OpenTime: n.open,
			Open: n.o, High: n.h, Low: n.l, Close: n.c, Volume: n.vol, Closed: true, Source: history.SourceREST}
		if quote {
			c.QuoteVolume = n.quote
		}
		if trades {
			c.Trades = n.n
		}
		out = append(out, c)
	}
	return out
}

var decimalCmp = cmp.Comparer(func(a, b decimal.Decimal) bool { return a.Equal(b) })

// exchangeServer answers in each venue's documented response shapes from one market's
// trades. fail holds statuses to answer first, one per request ("429:3" = status 429
// with Retry-After: 3).
type exchangeServer struct {
	*httptest.Server
	trades []market.Trade
	// pageMax caps Coinbase Exchange trade pages below their limit; 0 means no cap.
	pageMax int64

	mu       sync.Mutex
	fail     []string
	requests []string
}

func newExchangeServer(t *testing.T, trades []market.Trade) *exchangeServer {
	s := &exchangeServer{trades: trades}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *exchangeServer) failNext(statuses ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = append(s.fail, statuses...)
}

func (s *exchangeServer) log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

func (s *exchangeServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.URL.RequestURI())
	var fail string
	if len(s.fail) > 0 {
		fail, s.fail = s.fail[0], s.fail[1:]
	}
	s.mu.Unlock()
	if fail == "kraken-rate-limit" {
		fmt.Fprint(w, `{"error":["EAPI:Rate limit exceeded"]}`)
		return
	}
	if fail != "" {
		code, after, _ := strings.Cut(fail, ":")
		if after != "" {
			w.Header().Set("Retry-After", after)
		}
		n, _ := strconv.Atoi(code)
		http.Error(w, `{"code":-1003,"msg":"Too much request weight used"}`, n)
		return
	}
	q := r.URL.Query()
	w.Header().Set("Content-Type", "application/json")
	p := r.URL.Path
	switch {
	case p == "/api/v3/klines":
		s.klines(w, q)
	case strings.HasPrefix(p, "/api/v3/brokerage/market/products/") && strings.HasSuffix(p, "/candles"):
		s.advanced(w, q)
	case strings.HasPrefix(p, "/products/") && strings.HasSuffix(p, "/candles"):
		s.exchangeCandles(w, q)
	case strings.HasPrefix(p, "/products/") && strings.HasSuffix(p, "/trades"):
		s.exchangeTrades(w, q)
	case p == "/0/public/OHLC":
		s.krakenOHLC(w, q)
	case p == "/0/public/Trades":
		s.krakenTrades(w, q)
	case p == "/api/v3/historicalTrades" || p == "/api/v3/aggTrades":
		s.binanceTrades(w, q, p == "/api/v3/aggTrades")
	default:
		http.Error(w, `{"message":"NotFound"}`, http.StatusNotFound)
	}
}

func atoi(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }

var binanceIv = map[string]time.Duration{"1m": time.Minute, "3m": 3 * time.Minute, "5m": 5 * time.Minute, "1h": time.Hour}

// klines: every bucket from startTime to endTime, quiet ones as zero-volume candles at
// the previous close (as Binance does), at most limit.
func (s *exchangeServer) klines(w http.ResponseWriter, q map[string][]string) {
	get := func(k string) string { return firstOf(q[k]) }
	if get("symbol") == "NOPE" {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"code":-1121,"msg":"Invalid symbol."}`)
		return
	}
	iv := binanceIv[get("interval")]
	start, end, limit := atoi(get("startTime")), atoi(get("endTime")), atoi(get("limit"))
	ns := naive(s.trades, iv)
	byOpen := map[int64]naiveCandle{}
	for _, n := range ns {
		byOpen[n.open.UnixMilli()] = n
	}
	step := iv.Milliseconds()
	first := start + (step-start%step)%step
	var rows []string
	prev := ""
	if len(ns) > 0 {
		prev = ns[0].o.String()
	}
	dataEnd := s.trades[len(s.trades)-1].Time.UnixMilli()
	for o := first; o <= end && o <= dataEnd && int64(len(rows)) < limit; o += step {
		n, ok := byOpen[o]
		if !ok {
			if o < s.trades[0].Time.UnixMilli()-step {
				continue
			}
			rows = append(rows, fmt.Sprintf(`[%d,"%s","%s","%s","%s","0.00000000",%d,"0.00000000",0,"0","0","0"]`, o, prev, prev, prev, prev, o+step-1))
			continue
		}
		rows = append(rows, fmt.Sprintf(`[%d,"%s","%s","%s","%s","%s",%d,"%s",%d,"0","0","0"]`,
			o, n.o.StringFixed(8), n.h.StringFixed(8), n.l.StringFixed(8), n.c.StringFixed(8), n.vol.StringFixed(8), o+step-1, n.quote.StringFixed(8), n.n))
		prev = n.c.StringFixed(8)
	}
	w.Header().Set("X-MBX-USED-WEIGHT-1M", "2")
	fmt.Fprint(w, "["+strings.Join(rows, ",")+"]")
}

func firstOf(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// exchangeCandles: Coinbase Exchange, [time, low, high, open, close, volume] as JSON
// numbers, newest first, quiet buckets omitted, start and end inclusive, at most 300.
func (s *exchangeServer) exchangeCandles(w http.ResponseWriter, q map[string][]string) {
	g := time.Duration(atoi(firstOf(q["granularity"]))) * time.Second
	start, _ := time.Parse(time.RFC3339, firstOf(q["start"]))
	end, _ := time.Parse(time.RFC3339, firstOf(q["end"]))
	if g <= 0 || end.Sub(start)/g+1 > 300 {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"message":"granularity too small for the requested time range. Count of aggregations requested exceeds 300"}`)
		return
	}
	var rows []string
	ns := naive(s.trades, g)
	for i := len(ns) - 1; i >= 0; i-- {
		n := ns[i]
		if n.open.Before(start) || n.open.After(end) {
			continue
		}
		rows = append(rows, fmt.Sprintf(`[%d,%s,%s,%s,%s,%s]`, n.open.Unix(), n.l, n.h, n.o, n.c, n.vol))
	}
	fmt.Fprint(w, "["+strings.Join(rows, ",")+"]")
}

var advancedG = map[string]time.Duration{"ONE_MINUTE": time.Minute, "FIVE_MINUTE": 5 * time.Minute, "THIRTY_MINUTE": 30 * time.Minute, "ONE_HOUR": time.Hour}

// advanced: Coinbase Advanced Trade public candles, strings, newest first, at most 350.
func (s *exchangeServer) advanced(w http.ResponseWriter, q map[string][]string) {
	g := advancedG[firstOf(q["granularity"])]
	start, end := atoi(firstOf(q["start"])), atoi(firstOf(q["end"]))
	if g <= 0 || (end-start)/int64(g/time.Second)+1 > 350 {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"INVALID_ARGUMENT","message":"number of candles requested should be less than 350"}`)
		return
	}
	var rows []string
	ns := naive(s.trades, g)
	for i := len(ns) - 1; i >= 0; i-- {
		n := ns[i]
		if n.open.Unix() < start || n.open.Unix() > end {
			continue
		}
		rows = append(rows, fmt.Sprintf(`{"start":"%d","low":"%s","high":"%s","open":"%s","close":"%s","volume":"%s"}`, n.open.Unix(), n.l, n.h, n.o, n.c, n.vol))
	}
	fmt.Fprint(w, `{"candles":[`+strings.Join(rows, ",")+`]}`)
}

// krakenVWAP is the vwap the fake Kraken reports: rounded to 5 places.
func krakenVWAP(n naiveCandle) decimal.Decimal { return n.quote.DivRound(n.vol, 5) }

// krakenOHLC: entries after since, only the 720 most recent, the last one forming.
func (s *exchangeServer) krakenOHLC(w http.ResponseWriter, q map[string][]string) {
	iv := time.Duration(atoi(firstOf(q["interval"]))) * time.Minute
	since := atoi(firstOf(q["since"]))
	ns := naive(s.trades, iv)
	if len(ns) > 720 {
		ns = ns[len(ns)-720:]
	}
	var rows []string
	last := int64(0)
	for _, n := range ns {
		if n.open.Unix() <= since {
			continue
		}
		rows = append(rows, fmt.Sprintf(`[%d,"%s","%s","%s","%s","%s","%s",%d]`, n.open.Unix(), n.o, n.h, n.l, n.c, krakenVWAP(n), n.vol, n.n))
		last = n.open.Unix()
	}
	fmt.Fprintf(w, `{"error":[],"result":{"XXBTZUSD":[%s],"last":%d}}`, strings.Join(rows, ","), last)
}

// exchangeTrades: Coinbase Exchange trades with id < after, newest first, with CB-AFTER.
func (s *exchangeServer) exchangeTrades(w http.ResponseWriter, q map[string][]string) {
	after, limit := atoi(firstOf(q["after"])), atoi(firstOf(q["limit"]))
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	if s.pageMax > 0 && limit > s.pageMax {
		limit = s.pageMax
	}
	var rows []string
	lowest := int64(0)
	for i := len(s.trades) - 1; i >= 0 && int64(len(rows)) < limit; i-- {
		t := s.trades[i]
		id := atoi(t.ID)
		if after > 0 && id >= after {
			continue
		}
		maker := "sell"
		if t.Side == market.Sell {
			maker = "buy"
		}
		rows = append(rows, fmt.Sprintf(`{"time":"%s","trade_id":%d,"price":"%s","size":"%s","side":"%s"}`, market.FormatTime(t.Time), id, t.Price.StringFixed(8), t.Qty.StringFixed(8), maker))
		lowest = id
	}
	if lowest > 0 {
		w.Header().Set("Cb-After", strconv.FormatInt(lowest, 10))
	}
	fmt.Fprint(w, "["+strings.Join(rows, ",")+"]")
}

// binanceTrades: historicalTrades or aggTrades from fromId, at most limit.
func (s *exchangeServer) binanceTrades(w http.ResponseWriter, q map[string][]string, agg bool) {
	from, limit := atoi(firstOf(q["fromId"])), atoi(firstOf(q["limit"]))
	start, end := atoi(firstOf(q["startTime"])), atoi(firstOf(q["endTime"]))
	if start > 0 && (!agg || end-start > time.Hour.Milliseconds()) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"code":-1127,"msg":"More than 1 hours between startTime and endTime."}`)
		return
	}
	var rows []string
	for _, t := range s.trades {
		id := atoi(t.ID)
		if id < from || int64(len(rows)) >= limit || (start > 0 && (t.Time.UnixMilli() < start || t.Time.UnixMilli() > end)) {
			continue
		}
		bm := t.Side == market.Sell
		if agg {
			rows = append(rows, fmt.Sprintf(`{"a":%d,"p":"%s","q":"%s","f":%d,"l":%d,"T":%d,"m":%t,"M":true}`, id, t.Price.StringFixed(8), t.Qty.StringFixed(8), id, id, t.Time.UnixMilli(), bm))
		} else {
			rows = append(rows, fmt.Sprintf(`{"id":%d,"price":"%s","qty":"%s","quoteQty":"0","time":%d,"isBuyerMaker":%t,"isBestMatch":true}`, id, t.Price.StringFixed(8), t.Qty.StringFixed(8), t.Time.UnixMilli(), bm))
		}
	}
	fmt.Fprint(w, "["+strings.Join(rows, ",")+"]")
}

// krakenTrades: trades at or after since (ns), at most count, last = newest's time.
func (s *exchangeServer) krakenTrades(w http.ResponseWriter, q map[string][]string) {
	since, count := atoi(firstOf(q["since"])), atoi(firstOf(q["count"]))
	var rows []string
	last := since
	for _, t := range s.trades {
		if t.Time.UnixNano() <= since || int64(len(rows)) >= count {
			continue
		}
		side := "b"
		if t.Side == market.Sell {
			side = "s"
		}
		secs := decimal.New(t.Time.UnixNano(), -9)
		rows = append(rows, fmt.Sprintf(`["%s","%s",%s,"%s","m","",%s]`, t.Price, t.Qty, secs, side, t.ID))
		last = t.Time.UnixNano()
	}
	fmt.Fprintf(w, `{"error":[],"result":{"XXBTZUSD":[%s],"last":"%d"}}`, strings.Join(rows, ","), last)
}

// waits records the client's sleeps instead of sleeping.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.d = append(w.d, d)
	w.mu.Unlock()
	return ctx.Err()
}

func (w *waits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

type env struct {
	rdb    redis.UniversalClient
	prefix string
	store  *cache.MarketStore
	bf     *history.Backfiller
	m      *history.Metrics
	reg    *prometheus.Registry
	waits  *waits
	now    time.Time
}

func newEnv(t *testing.T, now time.Time, cfg history.BackfillConfig) *env {
	t.Helper()
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	reg := prometheus.NewRegistry()
	e := &env{rdb: rdb, prefix: prefix, reg: reg, waits: &waits{}, now: now}
	e.store = cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: prefix, Now: func() time.Time { return now }}, reg)
	e.m = history.NewMetrics(reg)
	cfg.Now = func() time.Time { return now }
	e.bf = history.NewBackfiller(e.store, rdb, e.m, cfg)
	return e
}

func (e *env) venue(t *testing.T, name, base string) history.Venue {
	t.Helper()
	v, err := history.NewVenue(name, history.VenueConfig{BaseURL: base, RequestsPerSecond: -1, Sleep: e.waits.sleep,
		Now: func() time.Time { return e.now }}, e.m)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (e *env) stored(t *testing.T, ex market.Exchange, sym market.Symbol, iv market.Interval) []market.Candle {
	t.Helper()
	cs, err := e.store.CandlesBetween(context.Background(), ex, sym, iv, time.Unix(0, 0), t0.Add(365*24*time.Hour), 100000)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func (e *env) keys(t *testing.T, pattern string) []string {
	t.Helper()
	return redistest.Keys(t, e.rdb, e.prefix+":"+pattern)
}

func (e *env) ttl(t *testing.T, key string) time.Duration {
	t.Helper()
	d, err := e.rdb.PTTL(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func batchOf(cs ...market.Candle) *cache.Batch { return &cache.Batch{Candles: cs} }
