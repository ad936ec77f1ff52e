package history

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tickstash/tickstash/market"
)

// Where a stored candle came from (market.Candle.Source).
const (
	SourceREST   = "rest"   // an exchange's REST history, or rolled up from it
	SourceRepair = "repair" // recomputed from trades after a gap was filled
)

// ErrUnsupported is wrapped when a venue cannot serve what was asked: an interval it
// neither offers nor can build, a gap kind its API cannot page through.
var ErrUnsupported = errors.New("history: not supported by this venue")

// Venue is one exchange's REST history API.
type Venue interface {
	// Name is the venue's name as NewVenue knows it ("binance", "coinbase-exchange"…).
	Name() string
	// Exchange is the exchange its data belongs to (both Coinbase APIs are "coinbase").
	Exchange() market.Exchange
	// Native reports whether the venue serves candles of iv itself.
	Native(iv market.Interval) bool
	// PageSize is the most candles one request returns.
	PageSize() int
	// Candles makes one request for the candles of a native iv opening in [from, to)
	// and returns them oldest first, with where the next request starts (to or later
	// when the range is done). Forming candles may be among them.
	Candles(ctx context.Context, sym market.Symbol, iv market.Interval, from, to time.Time) ([]market.Candle, time.Time, error)
	// Trades fetches every trade of a gap, paging as needed, in the venue's order.
	// Errors wrap ErrUnsupported when the venue cannot look the gap up.
	Trades(ctx context.Context, sym market.Symbol, gap Gap) ([]market.Trade, error)
}

// Gap names trades missing from a feed: by id (FromID..ToID inclusive, decimal
// integers) or by time ([From, To)), or both (a venue uses what its API pages by).
type Gap struct {
	Exchange market.Exchange
	Symbol   market.Symbol
	FromID   string
	ToID     string
	From, To time.Time
	// Detected is when the gap was noticed; the repair lag is measured from it. Zero
	// means not measured.
	Detected time.Time
}

// Venues lists the names NewVenue accepts, with their default base URLs.
var Venues = map[string]string{
	"binance":           "https://api.binance.com",
	"binanceus":         "https://api.binance.us",
	"coinbase":          "https://api.coinbase.com",
	"coinbase-exchange": "https://api.exchange.coinbase.com",
	"kraken":            "https://api.kraken.com",
}

// NewVenue returns the venue called name (a key of Venues). m must not be nil.
func NewVenue(name string, cfg VenueConfig, m *Metrics) (Venue, error) {
	base, ok := Venues[name]
	if !ok {
		names := make([]string, 0, len(Venues))
		for n := range Venues {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("history: unknown venue %q: want one of %s", name, strings.Join(names, ", "))
	}
	switch name {
	case "binance", "binanceus":
		c := newClient(name, base, 10, cfg, m)
		c.weight = true
		ex := market.Binance
		if name == "binanceus" {
			ex = market.BinanceUS
		}
		return &binance{c: c, ex: ex, aggIDs: cfg.BinanceAggTradeIDs}, nil
	case "coinbase":
		return &coinbaseAdvanced{c: newClient(name, base, 8, cfg, m)}, nil
	case "coinbase-exchange":
		return &coinbaseExchange{c: newClient(name, base, 8, cfg, m)}, nil
	default:
		return &kraken{c: newClient(name, base, 1, cfg, m)}, nil
	}
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// within keeps the candles opening in [from, to).
func within(cs []market.Candle, from, to time.Time) []market.Candle {
	out := cs[:0]
	for _, c := range cs {
		if !c.OpenTime.Before(from) && c.OpenTime.Before(to) {
			out = append(out, c)
		}
	}
	return out
}

// nextAfter is where paging continues after cs: past the newest candle, at least past
// floor (so a venue that ignores the range cannot loop).
func nextAfter(cs []market.Candle, iv market.Interval, floor, to time.Time) time.Time {
	if len(cs) == 0 {
		return to
	}
	n := cs[len(cs)-1].OpenTime.Add(iv.Duration())
	if !n.After(floor) {
		return to
	}
	return n
}

// ---- Binance and Binance.US ----

type binance struct {
	c      *client
	ex     market.Exchange
	aggIDs bool
}

func (b *binance) Name() string              { return b.c.name }
func (b *binance) Exchange() market.Exchange { return b.ex }
func (b *binance) PageSize() int             { return 1000 }
func (b *binance) Native(iv market.Interval) bool {
	return iv.Validate() == nil && (iv != market.Interval1s || b.ex == market.Binance)
}

func binanceSymbol(sym market.Symbol) string { return sym.Base() + sym.Quote() }

func (b *binance) Candles(ctx context.Context, sym market.Symbol, iv market.Interval, from, to time.Time) ([]market.Candle, time.Time, error) {
	q := url.Values{"symbol": {binanceSymbol(sym)}, "interval": {iv.String()},
		"startTime": {ms(from)}, "endTime": {ms(to.Add(-time.Millisecond))}, "limit": {"1000"}}
	a, err := b.c.get(ctx, "/api/v3/klines?"+q.Encode(), nil)
	if err != nil {
		return nil, time.Time{}, err
	}
	cs, err := DecodeBinanceKlines(a.body, b.ex, sym, iv)
	if err != nil {
		return nil, time.Time{}, err
	}
	cs = within(cs, from, to)
	return cs, nextAfter(cs, iv, from, to), nil
}

// Trades pages /api/v3/historicalTrades (or /api/v3/aggTrades when the feed numbers
// aggregate trades) by fromId for an id gap, and /api/v3/aggTrades by startTime/endTime
// (at most an hour a window) for a time gap.
func (b *binance) Trades(ctx context.Context, sym market.Symbol, gap Gap) ([]market.Trade, error) {
	if gap.FromID != "" && gap.ToID != "" {
		from, err1 := strconv.ParseInt(gap.FromID, 10, 64)
		to, err2 := strconv.ParseInt(gap.ToID, 10, 64)
		if err1 != nil || err2 != nil || to < from {
			return nil, fmt.Errorf("history: binance gap ids %q..%q: want integers, from ≤ to", gap.FromID, gap.ToID)
		}
		path, decode := "/api/v3/historicalTrades", DecodeBinanceTrades
		if b.aggIDs {
			path, decode = "/api/v3/aggTrades", DecodeBinanceAggTrades
		}
		var out []market.Trade
		for cur := from; cur <= to; {
			q := url.Values{"symbol": {binanceSymbol(sym)}, "fromId": {strconv.FormatInt(cur, 10)}, "limit": {"1000"}}
			a, err := b.c.get(ctx, path+"?"+q.Encode(), nil)
			if err != nil {
				return out, err
			}
			ts, err := decode(a.body, b.ex, sym)
			if err != nil || len(ts) == 0 {
				return out, err
			}
			next := cur
			for _, t := range ts {
				id, _ := strconv.ParseInt(t.ID, 10, 64)
				if id >= cur && id <= to {
					out = append(out, t)
				}
				next = max(next, id+1)
			}
			if next == cur {
				break
			}
			cur = next
		}
		return out, nil
	}
	if gap.From.IsZero() || !gap.To.After(gap.From) {
		return nil, fmt.Errorf("%w: binance gap needs ids or a time range", ErrUnsupported)
	}
	var out []market.Trade
	for start := gap.From; start.Before(gap.To); {
		end := start.Add(time.Hour)
		if end.After(gap.To) {
			end = gap.To
		}
		q := url.Values{"symbol": {binanceSymbol(sym)}, "startTime": {ms(start)}, "endTime": {ms(end.Add(-time.Millisecond))}, "limit": {"1000"}}
		for {
			a, err := b.c.get(ctx, "/api/v3/aggTrades?"+q.Encode(), nil)
			if err != nil {
				return out, err
			}
			ts, err := DecodeBinanceAggTrades(a.body, b.ex, sym)
			if err != nil {
				return out, err
			}
			for _, t := range ts {
				if !t.Time.Before(start) && t.Time.Before(end) {
					out = append(out, t)
				}
			}
			if len(ts) < 1000 {
				break
			}
			last, _ := strconv.ParseInt(ts[len(ts)-1].ID, 10, 64)
			if !ts[len(ts)-1].Time.Before(end) {
				break
			}
			q = url.Values{"symbol": {binanceSymbol(sym)}, "fromId": {strconv.FormatInt(last+1, 10)}, "limit": {"1000"}}
		}
		start = end
	}
	return out, nil
}

// ---- Coinbase Exchange ----

type coinbaseExchange struct{ c *client }

func (v *coinbaseExchange) Name() string              { return v.c.name }
func (v *coinbaseExchange) Exchange() market.Exchange { return market.Coinbase }
func (v *coinbaseExchange) PageSize() int             { return 300 }
func (v *coinbaseExchange) Native(iv market.Interval) bool {
	switch iv {
	case market.Interval1m, market.Interval5m, market.Interval15m, market.Interval1h, market.Interval1d:
		return true
	}
	return false
}

// pageWindow is the request window from from: at most n buckets, not past to; end is
// the open time of its last bucket (Coinbase's end is inclusive).
func pageWindow(from, to time.Time, iv market.Interval, n int) (end, last time.Time) {
	end = from.Add(time.Duration(n) * iv.Duration())
	if end.After(to) {
		end = to
	}
	last = end.Add(-iv.Duration())
	if last.Before(from) {
		last = from
	}
	return end, last
}

func (v *coinbaseExchange) Candles(ctx context.Context, sym market.Symbol, iv market.Interval, from, to time.Time) ([]market.Candle, time.Time, error) {
	if !v.Native(iv) {
		return nil, time.Time{}, fmt.Errorf("%w: coinbase exchange candles of %s", ErrUnsupported, iv)
	}
	end, last := pageWindow(from, to, iv, v.PageSize())
	q := url.Values{"granularity": {strconv.FormatInt(int64(iv.Duration()/time.Second), 10)},
		"start": {market.FormatTime(from)}, "end": {market.FormatTime(last)}}
	a, err := v.c.get(ctx, "/products/"+url.PathEscape(string(sym))+"/candles?"+q.Encode(), nil)
	if err != nil {
		return nil, time.Time{}, err
	}
	cs, err := DecodeCoinbaseExchangeCandles(a.body, sym, iv)
	if err != nil {
		return nil, time.Time{}, err
	}
	return within(cs, from, end), end, nil
}

// Trades pages /products/{id}/trades backwards from ToID with the after cursor
// (CB-AFTER) until FromID. Time gaps are unsupported: that API pages by id only.
func (v *coinbaseExchange) Trades(ctx context.Context, sym market.Symbol, gap Gap) ([]market.Trade, error) {
	from, err1 := strconv.ParseInt(gap.FromID, 10, 64)
	to, err2 := strconv.ParseInt(gap.ToID, 10, 64)
	if err1 != nil || err2 != nil || to < from {
		return nil, fmt.Errorf("%w: coinbase exchange pages trades by id only; gap ids %q..%q", ErrUnsupported, gap.FromID, gap.ToID)
	}
	var out []market.Trade
	after := strconv.FormatInt(to+1, 10)
	for {
		q := url.Values{"limit": {"1000"}, "after": {after}}
		a, err := v.c.get(ctx, "/products/"+url.PathEscape(string(sym))+"/trades?"+q.Encode(), nil)
		if err != nil {
			return out, err
		}
		ts, err := DecodeCoinbaseExchangeTrades(a.body, sym)
		if err != nil {
			return out, err
		}
		lowest := int64(-1)
		for _, t := range ts {
			id, _ := strconv.ParseInt(t.ID, 10, 64)
			if id >= from && id <= to {
				out = append(out, t)
			}
			if lowest < 0 || id < lowest {
				lowest = id
			}
		}
		next := a.header.Get("Cb-After")
		if len(ts) == 0 || lowest <= from || next == "" || next == after {
			return out, nil
		}
		after = next
	}
}

// ---- Coinbase Advanced Trade (public market endpoints) ----

type coinbaseAdvanced struct{ c *client }

func (v *coinbaseAdvanced) Name() string              { return v.c.name }
func (v *coinbaseAdvanced) Exchange() market.Exchange { return market.Coinbase }
func (v *coinbaseAdvanced) PageSize() int             { return 350 }

var advancedGranularity = map[market.Interval]string{
	market.Interval1m: "ONE_MINUTE", market.Interval5m: "FIVE_MINUTE", market.Interval15m: "FIFTEEN_MINUTE",
	market.Interval30m: "THIRTY_MINUTE", market.Interval1h: "ONE_HOUR", market.Interval1d: "ONE_DAY",
}

func (v *coinbaseAdvanced) Native(iv market.Interval) bool {
	_, ok := advancedGranularity[iv]
	return ok
}

func (v *coinbaseAdvanced) Candles(ctx context.Context, sym market.Symbol, iv market.Interval, from, to time.Time) ([]market.Candle, time.Time, error) {
	g, ok := advancedGranularity[iv]
	if !ok {
		return nil, time.Time{}, fmt.Errorf("%w: coinbase advanced candles of %s", ErrUnsupported, iv)
	}
	end, last := pageWindow(from, to, iv, v.PageSize())
	q := url.Values{"granularity": {g}, "start": {strconv.FormatInt(from.Unix(), 10)}, "end": {strconv.FormatInt(last.Unix(), 10)}}
	a, err := v.c.get(ctx, "/api/v3/brokerage/market/products/"+url.PathEscape(string(sym))+"/candles?"+q.Encode(), nil)
	if err != nil {
		return nil, time.Time{}, err
	}
	cs, err := DecodeCoinbaseAdvancedCandles(a.body, sym, iv)
	if err != nil {
		return nil, time.Time{}, err
	}
	return within(cs, from, end), end, nil
}

// Trades is unsupported: Advanced Trade's public trades cover only recent ones. Coinbase
// trade ids are the same on both APIs: repair gaps with the "coinbase-exchange" venue.
func (v *coinbaseAdvanced) Trades(context.Context, market.Symbol, Gap) ([]market.Trade, error) {
	return nil, fmt.Errorf("%w: coinbase advanced trade: use the coinbase-exchange venue for gaps", ErrUnsupported)
}

// ---- Kraken ----

type kraken struct{ c *client }

func (v *kraken) Name() string              { return v.c.name }
func (v *kraken) Exchange() market.Exchange { return market.Kraken }
func (v *kraken) PageSize() int             { return 720 }
func (v *kraken) Native(iv market.Interval) bool {
	switch iv {
	case market.Interval1m, market.Interval5m, market.Interval15m, market.Interval30m,
		market.Interval1h, market.Interval4h, market.Interval1d:
		return true
	}
	return false
}

// krakenPair is Kraken's REST name of a pair: BTC is XBT and DOGE is XDG there.
func krakenPair(sym market.Symbol) string {
	asset := func(a string) string {
		switch a {
		case "BTC":
			return "XBT"
		case "DOGE":
			return "XDG"
		}
		return a
	}
	return asset(sym.Base()) + asset(sym.Quote())
}

func (v *kraken) Candles(ctx context.Context, sym market.Symbol, iv market.Interval, from, to time.Time) ([]market.Candle, time.Time, error) {
	if !v.Native(iv) {
		return nil, time.Time{}, fmt.Errorf("%w: kraken candles of %s", ErrUnsupported, iv)
	}
	q := url.Values{"pair": {krakenPair(sym)}, "interval": {strconv.FormatInt(int64(iv.Duration()/time.Minute), 10)},
		"since": {strconv.FormatInt(from.Unix()-1, 10)}}
	a, err := v.c.get(ctx, "/0/public/OHLC?"+q.Encode(), checkKraken)
	if err != nil {
		return nil, time.Time{}, err
	}
	cs, err := DecodeKrakenOHLC(a.body, sym, iv)
	if err != nil {
		return nil, time.Time{}, err
	}
	cs = within(cs, from, to)
	return cs, nextAfter(cs, iv, from, to), nil
}

// Trades pages /0/public/Trades by since (nanoseconds) from gap.From until gap.To,
// keeping ids in FromID..ToID when they are given. Kraken pages by time only, so the gap
// needs From and To.
func (v *kraken) Trades(ctx context.Context, sym market.Symbol, gap Gap) ([]market.Trade, error) {
	if gap.From.IsZero() || !gap.To.After(gap.From) {
		return nil, fmt.Errorf("%w: kraken pages trades by time: the gap needs From and To", ErrUnsupported)
	}
	lo, hi := int64(-1), int64(-1)
	if gap.FromID != "" && gap.ToID != "" {
		lo, _ = strconv.ParseInt(gap.FromID, 10, 64)
		hi, _ = strconv.ParseInt(gap.ToID, 10, 64)
	}
	var out []market.Trade
	since := strconv.FormatInt(gap.From.UnixNano()-1, 10) // since is exclusive
	for {
		q := url.Values{"pair": {krakenPair(sym)}, "since": {since}, "count": {"1000"}}
		a, err := v.c.get(ctx, "/0/public/Trades?"+q.Encode(), checkKraken)
		if err != nil {
			return out, err
		}
		ts, last, err := DecodeKrakenTrades(a.body, sym)
		if err != nil {
			return out, err
		}
		done := len(ts) == 0
		for _, t := range ts {
			if !t.Time.Before(gap.To) {
				done = true
				continue
			}
			if t.Time.Before(gap.From) {
				continue
			}
			if lo >= 0 {
				id, err := strconv.ParseInt(t.ID, 10, 64)
				if err != nil || id < lo || id > hi {
					continue
				}
			}
			out = append(out, t)
		}
		if done || last == "" || last == since {
			return out, nil
		}
		since = last
	}
}
