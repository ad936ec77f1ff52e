package cache

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/market"
)

// ErrNotFound is returned by reads of a market that has no data in Redis (never written,
// or expired).
var ErrNotFound = errors.New("cache: not found")

// ErrInvalid is wrapped by the errors of stores given an argument they cannot take (a
// bad user id, a document that is not JSON, a bad cache name).
var ErrInvalid = errors.New("cache: invalid record")

//go:embed candle_upsert.lua
var candleUpsertLua string

var candleUpsert = redis.NewScript(candleUpsertLua)

// MarketConfig configures a MarketStore. Every zero value means the documented default.
type MarketConfig struct {
	// Prefix starts every key; "" means DefaultPrefix ("ts").
	Prefix string
	// TradeRetention is how far back, in exchange time, a trade stream reaches, and the
	// stream key's TTL. 0 means 24h.
	TradeRetention time.Duration
	// TradeMaxLen caps each trade stream at about this many entries (XTRIM MAXLEN ~),
	// on top of TradeRetention: a bound on memory whatever the trade rate, for a Redis
	// that keeps everything in a small heap (the embedded one). 0 means no cap by count.
	TradeMaxLen int64
	// TickerTTL is the TTL of a market's ticker hash. 0 means 24h.
	TickerTTL time.Duration
	// CandleRetention is how far back, in candle open time, each interval's candles are
	// kept, and that key's TTL. Intervals not in the map use DefaultCandleRetention.
	CandleRetention map[market.Interval]time.Duration
	// MarketsRetention is how long a market stays in the Markets index after its last
	// write. 0 means 7 days.
	MarketsRetention time.Duration
	// Now is the clock for TTL bookkeeping of the Markets index; nil means time.Now.
	Now func() time.Time
}

// DefaultCandleRetention returns the retention of an interval's candles when
// MarketConfig.CandleRetention does not name it: about 6 000 to 22 000 candles, e.g.
// 7 days of 1m candles.
func DefaultCandleRetention(iv market.Interval) time.Duration {
	const day = 24 * time.Hour
	switch iv {
	case market.Interval1s:
		return 6 * time.Hour
	case market.Interval1m:
		return 7 * day
	case market.Interval3m:
		return 21 * day
	case market.Interval5m:
		return 30 * day
	case market.Interval15m:
		return 90 * day
	case market.Interval30m:
		return 180 * day
	case market.Interval1h:
		return 365 * day
	case market.Interval4h:
		return 3 * 365 * day
	default:
		return 10 * 365 * day
	}
}

// MarketStore writes and reads a market's trades, ticker and candles in Redis.
// It is safe for concurrent use.
type MarketStore struct {
	rdb  redis.UniversalClient
	keys Keyspace
	cfg  MarketConfig

	writeSeconds   prometheus.Histogram
	writeErrors    prometheus.Counter
	tradesWritten  prometheus.Counter
	tradesRepeated prometheus.Counter
	candlesWritten prometheus.Counter
}

// NewMarketStore returns a store over rdb. Its metrics are registered with reg.
func NewMarketStore(rdb redis.UniversalClient, cfg MarketConfig, reg prometheus.Registerer) *MarketStore {
	if cfg.TradeRetention <= 0 {
		cfg.TradeRetention = 24 * time.Hour
	}
	if cfg.TickerTTL <= 0 {
		cfg.TickerTTL = 24 * time.Hour
	}
	if cfg.MarketsRetention <= 0 {
		cfg.MarketsRetention = 7 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	f := promauto.With(reg)
	return &MarketStore{
		rdb:  rdb,
		keys: NewKeyspace(cfg.Prefix),
		cfg:  cfg,
		writeSeconds: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "tickstash_cache_batch_write_duration_seconds",
			Help:    "Time to write one batch of market data to Redis (one pipeline round trip), successful or not.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16),
		}),
		writeErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_cache_write_errors_total",
			Help: "Batches of market data that failed to write to Redis.",
		}),
		tradesWritten: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_cache_trades_written_total",
			Help: "Trades appended to trade streams.",
		}),
		tradesRepeated: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_cache_trades_duplicate_total",
			Help: "Trades not appended because the stream already holds them or a later trade (replays, reconnect overlaps).",
		}),
		candlesWritten: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_cache_candles_written_total",
			Help: "Candle upserts written to Redis, forming and closed.",
		}),
	}
}

// Keys returns the store's keyspace.
func (s *MarketStore) Keys() Keyspace { return s.keys }

// CandleRetention returns how long candles of iv are kept.
func (s *MarketStore) CandleRetention(iv market.Interval) time.Duration {
	if d, ok := s.cfg.CandleRetention[iv]; ok && d > 0 {
		return d
	}
	return DefaultCandleRetention(iv)
}

// Batch is a set of market data written in one pipeline. The trades of one market must
// be in exchange order, and every record valid (see MarketStore.Write).
type Batch struct {
	Trades  []market.Trade
	Quotes  []market.Quote
	Candles []market.Candle
}

// Len returns how many records the batch holds.
func (b *Batch) Len() int { return len(b.Trades) + len(b.Quotes) + len(b.Candles) }

// Reset empties the batch, keeping its capacity.
func (b *Batch) Reset() {
	clear(b.Trades)
	clear(b.Quotes)
	clear(b.Candles)
	b.Trades, b.Quotes, b.Candles = b.Trades[:0], b.Quotes[:0], b.Candles[:0]
}

// WriteStats says what a Write did.
type WriteStats struct {
	// Trades appended, and trades skipped because the stream already had them.
	Trades, Duplicates int
	// Candles upserted.
	Candles int
}

type mkt struct {
	ex  market.Exchange
	sym market.Symbol
}

// Write stores the batch in one pipeline: each trade appended to its market's stream
// (trimmed to the retention window by the newest trade's time), the newest trade and quote
// of each market in its ticker, each candle upserted by open time, every touched key's
// TTL refreshed.
//
// Writing the same batch again leaves Redis as it was: a trade whose id is numeric gets
// the stream id <exchange ms>-<trade id>, which Redis refuses to repeat (counted in
// Duplicates); trades without a numeric id cannot be deduplicated. On error nothing is
// lost by retrying the whole batch. The error wraps the first failed command's.
//
// Write trusts its records to be valid (market's Validate passes) and does not check
// them again: tickstash validates a record once, where it enters (ingest.Event is only
// built valid). A caller that builds records by hand validates them first.
func (s *MarketStore) Write(ctx context.Context, b *Batch) (WriteStats, error) {
	start := time.Now()
	st, err := s.write(ctx, b)
	s.writeSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		s.writeErrors.Inc()
		return st, err
	}
	s.tradesWritten.Add(float64(st.Trades))
	s.tradesRepeated.Add(float64(st.Duplicates))
	s.candlesWritten.Add(float64(st.Candles))
	return st, nil
}

func (s *MarketStore) write(ctx context.Context, b *Batch) (WriteStats, error) {
	var st WriteStats
	if b.Len() == 0 {
		return st, nil
	}
	now := s.cfg.Now()
	pipe := s.rdb.Pipeline()

	// The newest trade per market sets the trim point and the ticker. A market's stream
	// key and trim point are built (and boxed as command arguments) once per batch, not
	// once per trade.
	type tradeDest struct {
		newest     int
		key, minID any
	}
	dests := make(map[mkt]*tradeDest, 4)
	for i := range b.Trades {
		m := mkt{b.Trades[i].Exchange, b.Trades[i].Symbol}
		if d := dests[m]; d != nil {
			d.newest = i
		} else {
			dests[m] = &tradeDest{newest: i}
		}
	}
	newest := make(map[mkt]int, len(dests))
	for m, d := range dests {
		newest[m] = d.newest
		minID := b.Trades[d.newest].Time.Add(-s.cfg.TradeRetention).UnixMilli()
		d.key, d.minID = s.keys.Trades(m.ex, m.sym), strconv.FormatInt(max(minID, 0), 10)
	}
	scratch := xaddScratchPool.Get().(*xaddScratch)
	defer scratch.release()
	xadds := scratch.appendXAdds(ctx, pipe, b.Trades, func(m mkt) (key, minID any) {
		d := dests[m]
		return d.key, d.minID
	})
	touched := make(map[mkt]struct{}, len(newest))
	for m, i := range newest {
		t := &b.Trades[i]
		pipe.PExpire(ctx, s.keys.Trades(m.ex, m.sym), s.cfg.TradeRetention)
		if s.cfg.TradeMaxLen > 0 {
			pipe.XTrimMaxLenApprox(ctx, s.keys.Trades(m.ex, m.sym), s.cfg.TradeMaxLen, 0)
		}
		pipe.HSet(ctx, s.keys.Ticker(m.ex, m.sym),
			"last", t.Price.String(), "last_qty", t.Qty.String(), "last_side", t.Side.String(),
			"last_id", t.ID, "last_time", market.FormatTime(t.Time), "updated", market.FormatTime(now))
		touched[m] = struct{}{}
	}
	newestQuote := make(map[mkt]int, 4)
	for i := range b.Quotes {
		newestQuote[mkt{b.Quotes[i].Exchange, b.Quotes[i].Symbol}] = i
	}
	for m, i := range newestQuote {
		q := &b.Quotes[i]
		pipe.HSet(ctx, s.keys.Ticker(m.ex, m.sym), TickerQuoteFields(q, now)...)
		touched[m] = struct{}{}
	}
	for m := range touched {
		pipe.PExpire(ctx, s.keys.Ticker(m.ex, m.sym), s.cfg.TickerTTL)
	}
	upserts := make([]*redis.Cmd, len(b.Candles))
	for i := range b.Candles {
		c := &b.Candles[i]
		upserts[i] = s.upsertCandle(ctx, pipe, c)
		touched[mkt{c.Exchange, c.Symbol}] = struct{}{}
	}
	if len(touched) > 0 {
		members := make([]redis.Z, 0, len(touched))
		for m := range touched {
			members = append(members, redis.Z{Score: float64(now.UnixMilli()), Member: string(m.ex) + ":" + string(m.sym)})
		}
		pipe.ZAdd(ctx, s.keys.Markets(), members...)
		pipe.ZRemRangeByScore(ctx, s.keys.Markets(), "-inf", "("+strconv.FormatInt(now.Add(-s.cfg.MarketsRetention).UnixMilli(), 10))
		pipe.PExpire(ctx, s.keys.Markets(), s.cfg.MarketsRetention)
	}

	cmds, err := pipe.Exec(ctx)
	if err != nil && !isOnlyExpected(cmds) {
		return st, fmt.Errorf("cache: write batch of %d records: %w", b.Len(), firstError(cmds, err))
	}
	if err := s.retryNoScript(ctx, b.Candles, upserts); err != nil {
		return st, err
	}
	for _, x := range xadds {
		if x.Err() != nil {
			st.Duplicates++
		} else {
			st.Trades++
		}
	}
	for _, u := range upserts {
		if n, _ := u.Int(); n == 1 {
			st.Candles++
		}
	}
	return st, nil
}

// tradeValues is how many values of a trade's XADD appendXAdds writes as text: the
// entry id, p, q, s, t and r.
const tradeValues = 6

// xaddScratch holds the buffers appendXAdds builds a batch's XADD arguments in, reused
// from batch to batch (xaddScratchPool) once the batch's pipeline has run.
type xaddScratch struct {
	arena []byte
	ends  []int
	vals  []string
	args  []any
}

var xaddScratchPool = sync.Pool{New: func() any { return new(xaddScratch) }}

// release drops the references into the batch and puts x back in the pool.
func (x *xaddScratch) release() {
	clear(x.vals)
	clear(x.args)
	xaddScratchPool.Put(x)
}

// appendXAdds queues on pipe one XADD per trade (MINID ~ trimming; the entry id from
// appendStreamID; fields id, p, q, s, t, r) and returns the commands, which hold x's
// buffers until the pipeline has run. dest gives the stream key and trim point of a
// market, already boxed.
//
// The trades' values are written into one text arena and sliced out of one string, and
// every argument is a constant, a value boxed once per market or a pointer (go-redis
// writes a *string as the string), so a trade costs two allocations (its command and
// its reply) where go-redis's XAddArgs costs about twenty: the ingest write path is
// bound by the Go process's CPU, much of it allocation.
func (x *xaddScratch) appendXAdds(ctx context.Context, pipe redis.Pipeliner, trades []market.Trade, dest func(mkt) (key, minID any)) []*redis.StringCmd {
	arena, ends := x.arena[:0], x.ends[:0]
	for i := range trades {
		t := &trades[i]
		arena = appendStreamID(arena, t)
		ends = append(ends, len(arena))
		arena = market.AppendDecimal(arena, t.Price)
		ends = append(ends, len(arena))
		arena = market.AppendDecimal(arena, t.Qty)
		ends = append(ends, len(arena))
		arena = append(arena, t.Side.String()...)
		ends = append(ends, len(arena))
		arena = strconv.AppendInt(arena, t.Time.UnixNano(), 10)
		ends = append(ends, len(arena))
		arena = strconv.AppendInt(arena, unixNanoOrZero(t.ReceivedAt), 10)
		ends = append(ends, len(arena))
	}
	x.arena, x.ends = arena, ends
	text := string(arena)
	vals := slices.Grow(x.vals[:0], len(ends))[:len(ends)]
	from := 0
	for k, end := range ends {
		vals[k], from = text[from:end], end
	}
	x.vals = vals
	const argsPerTrade = 18 // xadd key minid ~ <minid> <entry id> and six field pairs
	args := slices.Grow(x.args[:0], argsPerTrade*len(trades))
	xadds := make([]*redis.StringCmd, len(trades))
	var last mkt
	var key, minID any
	for i := range trades {
		t := &trades[i]
		if m := (mkt{t.Exchange, t.Symbol}); key == nil || m != last {
			last = m
			key, minID = dest(m)
		}
		v := vals[tradeValues*i : tradeValues*i+tradeValues]
		from := len(args)
		args = append(args, "xadd", key, "minid", "~", minID, &v[0],
			"id", &t.ID, "p", &v[1], "q", &v[2], "s", &v[3], "t", &v[4], "r", &v[5])
		xadds[i] = redis.NewStringCmd(ctx, args[from:len(args):len(args)]...)
		_ = pipe.Process(ctx, xadds[i])
	}
	x.args = args
	return xadds
}

// appendStreamID appends the stream entry id of a trade: <exchange ms>-<trade id> when
// the id is a decimal integer, so that Redis refuses the same trade twice;
// <exchange ms>-* otherwise.
func appendStreamID(dst []byte, t *market.Trade) []byte {
	dst = strconv.AppendInt(dst, max(t.Time.UnixMilli(), 0), 10)
	dst = append(dst, '-')
	if _, ok := market.NumericID(t.ID); ok {
		return append(dst, t.ID...)
	}
	return append(dst, '*')
}

func unixNanoOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// isStreamRefusal reports whether err is Redis refusing an XADD id that is not above the
// stream's top: the trade, or a later one, is already stored.
func isStreamRefusal(err error) bool {
	return err != nil && strings.Contains(err.Error(), "equal or smaller than the target stream top item")
}

// retryNoScript loads the candle script and runs again the upserts that a Redis without
// it (restarted, or SCRIPT FLUSH) refused, updating upserts in place.
func (s *MarketStore) retryNoScript(ctx context.Context, candles []market.Candle, upserts []*redis.Cmd) error {
	var redo []int
	for i, u := range upserts {
		if redis.HasErrorPrefix(u.Err(), "NOSCRIPT") {
			redo = append(redo, i)
		}
	}
	if len(redo) == 0 {
		return nil
	}
	if err := candleUpsert.Load(ctx, s.rdb).Err(); err != nil {
		return fmt.Errorf("cache: load candle script: %w", err)
	}
	pipe := s.rdb.Pipeline()
	for _, i := range redo {
		upserts[i] = s.upsertCandle(ctx, pipe, &candles[i])
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("cache: upsert %d candles: %w", len(redo), err)
	}
	return nil
}

// isOnlyExpected reports whether every failed command failed in a way write handles:
// a trade the stream already holds, or the candle script missing.
func isOnlyExpected(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		if err := c.Err(); err != nil && !isStreamRefusal(err) && !redis.HasErrorPrefix(err, "NOSCRIPT") {
			return false
		}
	}
	return true
}

func firstError(cmds []redis.Cmder, err error) error {
	for _, c := range cmds {
		if cerr := c.Err(); cerr != nil && !isStreamRefusal(cerr) && !redis.HasErrorPrefix(cerr, "NOSCRIPT") {
			return cerr
		}
	}
	return err
}

// LastCandles returns up to n of the newest candles of a market and interval, oldest
// first, in one round trip. The newest may still be forming (Closed false). It returns an
// empty slice, not an error, for a market with no candles.
func (s *MarketStore) LastCandles(ctx context.Context, ex market.Exchange, sym market.Symbol, iv market.Interval, n int) ([]market.Candle, error) {
	if n <= 0 {
		return nil, fmt.Errorf("cache: last candles: n must be positive, got %d", n)
	}
	members, err := s.rdb.ZRevRange(ctx, s.keys.Candles(ex, sym, iv), 0, int64(n-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("cache: last %d %s candles of %s:%s: %w", n, iv, ex, sym, err)
	}
	out := make([]market.Candle, len(members))
	for i, m := range members {
		if err := decodeCandle(m, &out[len(members)-1-i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// CandlesBetween returns the candles of a market and interval that open in [from, to),
// oldest first, at most limit of them (the oldest ones).
func (s *MarketStore) CandlesBetween(ctx context.Context, ex market.Exchange, sym market.Symbol, iv market.Interval, from, to time.Time, limit int) ([]market.Candle, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("cache: candles between: limit must be positive, got %d", limit)
	}
	members, err := s.rdb.ZRangeByScore(ctx, s.keys.Candles(ex, sym, iv), &redis.ZRangeBy{
		Min: strconv.FormatInt(from.UnixMilli(), 10), Max: "(" + strconv.FormatInt(to.UnixMilli(), 10),
		Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("cache: %s candles of %s:%s: %w", iv, ex, sym, err)
	}
	out := make([]market.Candle, len(members))
	for i, m := range members {
		if err := decodeCandle(m, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// upsertCandle queues the candle script for c on pipe. c must be valid.
func (s *MarketStore) upsertCandle(ctx context.Context, pipe redis.Pipeliner, c *market.Candle) *redis.Cmd {
	member, _ := c.MarshalJSON() // cannot fail for a valid candle
	ret := s.CandleRetention(c.Interval)
	closed := "0"
	if c.Closed {
		closed = "1"
	}
	return candleUpsert.EvalSha(ctx, pipe, []string{s.keys.Candles(c.Exchange, c.Symbol, c.Interval)},
		c.OpenTime.UnixMilli(), string(member), closed, c.OpenTime.Add(-ret).UnixMilli(), ret.Milliseconds())
}

func decodeCandle(member string, c *market.Candle) error {
	if err := c.UnmarshalJSON([]byte(member)); err != nil {
		return fmt.Errorf("cache: stored candle is corrupt (%w): %.120s", err, member)
	}
	return nil
}

// TickerQuoteFields returns the field-value pairs of the ticker hash that hold a best
// bid/ask (for HSET), written at now. The order-book writer uses them too, so the
// ticker's quote fields are spelled once.
func TickerQuoteFields(q *market.Quote, now time.Time) []any {
	return []any{"bid", q.Bid.String(), "bid_qty", q.BidQty.String(), "ask", q.Ask.String(), "ask_qty", q.AskQty.String(),
		"quote_time", market.FormatTime(q.Time), "updated", market.FormatTime(now)}
}

// Ticker is a market's latest state as the ticker hash holds it. Fields of a side that
// was never written (no trade yet, no quote yet) are zero.
type Ticker struct {
	Exchange    market.Exchange
	Symbol      market.Symbol
	Last        decimal.Decimal
	LastQty     decimal.Decimal
	LastSide    market.Side
	LastTradeID string
	LastTime    time.Time
	Bid, BidQty decimal.Decimal
	Ask, AskQty decimal.Decimal
	QuoteTime   time.Time
	// UpdatedAt is when tickstash last wrote the hash.
	UpdatedAt time.Time
}

// Ticker returns a market's ticker, or ErrNotFound.
func (s *MarketStore) Ticker(ctx context.Context, ex market.Exchange, sym market.Symbol) (Ticker, error) {
	h, err := s.rdb.HGetAll(ctx, s.keys.Ticker(ex, sym)).Result()
	if err != nil {
		return Ticker{}, fmt.Errorf("cache: ticker of %s:%s: %w", ex, sym, err)
	}
	if len(h) == 0 {
		return Ticker{}, fmt.Errorf("cache: ticker of %s:%s: %w", ex, sym, ErrNotFound)
	}
	t := Ticker{Exchange: ex, Symbol: sym, LastTradeID: h["last_id"]}
	var p parser
	t.Last = p.decimal(h, "last")
	t.LastQty = p.decimal(h, "last_qty")
	t.Bid = p.decimal(h, "bid")
	t.BidQty = p.decimal(h, "bid_qty")
	t.Ask = p.decimal(h, "ask")
	t.AskQty = p.decimal(h, "ask_qty")
	t.LastTime = p.time(h, "last_time")
	t.QuoteTime = p.time(h, "quote_time")
	t.UpdatedAt = p.time(h, "updated")
	if v, ok := h["last_side"]; ok {
		t.LastSide, p.err = market.ParseSide(v)
	}
	if p.err != nil {
		return Ticker{}, fmt.Errorf("cache: ticker of %s:%s is corrupt: %w", ex, sym, p.err)
	}
	return t, nil
}

// RecentTrades returns up to n of a market's newest trades, newest first.
func (s *MarketStore) RecentTrades(ctx context.Context, ex market.Exchange, sym market.Symbol, n int) ([]market.Trade, error) {
	if n <= 0 {
		return nil, fmt.Errorf("cache: recent trades: n must be positive, got %d", n)
	}
	msgs, err := s.rdb.XRevRangeN(ctx, s.keys.Trades(ex, sym), "+", "-", int64(n)).Result()
	if err != nil {
		return nil, fmt.Errorf("cache: recent trades of %s:%s: %w", ex, sym, err)
	}
	out := make([]market.Trade, 0, len(msgs))
	for _, m := range msgs {
		t, err := decodeTrade(ex, sym, m)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// Markets returns the markets written within the Markets retention, most recently
// updated first.
func (s *MarketStore) Markets(ctx context.Context) ([]market.Instrument, error) {
	members, err := s.rdb.ZRevRange(ctx, s.keys.Markets(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("cache: markets: %w", err)
	}
	out := make([]market.Instrument, 0, len(members))
	for _, m := range members {
		ex, sym, ok := strings.Cut(m, ":")
		if !ok {
			continue
		}
		out = append(out, market.Instrument{Exchange: market.Exchange(ex), Symbol: market.Symbol(sym)})
	}
	return out, nil
}

// parser decodes stored fields, keeping the first error.
type parser struct{ err error }

func (p *parser) decimal(h map[string]string, field string) decimal.Decimal {
	v, ok := h[field]
	if !ok || v == "" {
		return decimal.Decimal{}
	}
	return p.decimalAny(v)
}

func (p *parser) decimalAny(v any) decimal.Decimal {
	s, _ := v.(string)
	d, err := decimal.NewFromString(s)
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("decimal %q: %w", s, err)
	}
	return d
}

func (p *parser) time(h map[string]string, field string) time.Time {
	v, ok := h[field]
	if !ok || v == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("%s %q: %w", field, v, err)
	}
	return t
}

func (p *parser) unixNano(v any) time.Time {
	s, _ := v.(string)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("time %q: %w", s, err)
	}
	return time.Unix(0, n).UTC()
}
