package history

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/market"
)

// Rollup builds candles of iv from candles of a smaller interval that divides it, the
// same market's, oldest first: open of the first, close of the last, the highest high,
// the lowest low, summed volume, quote volume and trades. Parts without volume (a
// venue's placeholder for a quiet interval) are left out, as a trade aggregation would
// leave them. The quote volume is kept only when every part reports one (it is zero,
// "unknown", otherwise). Every bucket of iv that the parts touch gets a candle, complete
// or not: callers pass whole buckets. The results are Closed when all their parts are.
func Rollup(parts []market.Candle, iv market.Interval) ([]market.Candle, error) {
	var out []market.Candle
	var quoteKnown, closed bool
	finish := func() {
		if len(out) == 0 {
			return
		}
		c := &out[len(out)-1]
		if !quoteKnown {
			c.QuoteVolume = decimal.Decimal{}
		}
		c.Closed = closed
	}
	for i := range parts {
		p := &parts[i]
		if p.Interval >= iv || iv.Duration()%p.Interval.Duration() != 0 {
			return nil, fmt.Errorf("history: rollup to %s: part interval %s does not divide it", iv, p.Interval)
		}
		if i > 0 && !p.OpenTime.After(parts[i-1].OpenTime) {
			return nil, fmt.Errorf("history: rollup to %s: parts out of order at %s", iv, market.FormatTime(p.OpenTime))
		}
		if p.Volume.Sign() == 0 {
			continue
		}
		open := iv.Align(p.OpenTime)
		if len(out) == 0 || !out[len(out)-1].OpenTime.Equal(open) {
			finish()
			out = append(out, market.Candle{
				Exchange: p.Exchange, Symbol: p.Symbol, Interval: iv, OpenTime: open,
				Open: p.Open, High: p.High, Low: p.Low, Close: p.Close,
				Volume: p.Volume, QuoteVolume: p.QuoteVolume, Trades: p.Trades, Source: p.Source,
			})
			quoteKnown, closed = p.QuoteVolume.Sign() > 0, p.Closed
			continue
		}
		c := &out[len(out)-1]
		if p.High.GreaterThan(c.High) {
			c.High = p.High
		}
		if p.Low.LessThan(c.Low) {
			c.Low = p.Low
		}
		c.Close = p.Close
		c.Volume = c.Volume.Add(p.Volume)
		c.QuoteVolume = c.QuoteVolume.Add(p.QuoteVolume)
		c.Trades += p.Trades
		quoteKnown = quoteKnown && p.QuoteVolume.Sign() > 0
		closed = closed && p.Closed
	}
	finish()
	return out, nil
}

// CandlesFromTrades builds the candles of iv over the buckets that open in
// [iv.Align(from), to) from trades of one market, as live aggregation does: bucketed by
// exchange time, volume Σq, quote volume Σp·q, the trade count; quiet buckets get no
// candle. Trades outside the range are ignored. Trades are taken in the order given
// (open is the first, close the last of a bucket): pass them in exchange order, e.g.
// through SortTrades. The candles are marked Closed and carry source src.
func CandlesFromTrades(trades []market.Trade, iv market.Interval, from, to time.Time, src string) []market.Candle {
	from = iv.Align(from)
	var out []market.Candle
	idx := make(map[int64]int)
	for i := range trades {
		t := &trades[i]
		if t.Time.Before(from) || !t.Time.Before(to) {
			continue
		}
		open := iv.Align(t.Time).UnixNano()
		if j, ok := idx[open]; ok {
			out[j].Add(t)
			continue
		}
		c := market.NewCandle(t, iv)
		c.Closed, c.Source = true, src
		idx[open] = len(out)
		out = append(out, c)
	}
	sortCandles(out)
	return out
}

// SortTrades puts trades in exchange order: by time, then by id when both are decimal
// integers (several trades can share a millisecond), keeping the given order otherwise.
func SortTrades(ts []market.Trade) {
	sort.SliceStable(ts, func(i, j int) bool {
		if !ts[i].Time.Equal(ts[j].Time) {
			return ts[i].Time.Before(ts[j].Time)
		}
		a, errA := strconv.ParseUint(ts[i].ID, 10, 64)
		b, errB := strconv.ParseUint(ts[j].ID, 10, 64)
		return errA == nil && errB == nil && a < b
	})
}

// MergeTrades returns the trades of a and b, each trade once (by id; trades without an
// id are all kept), in exchange order.
func MergeTrades(a, b []market.Trade) []market.Trade {
	out := make([]market.Trade, 0, len(a)+len(b))
	seen := make(map[string]bool, len(a)+len(b))
	for _, src := range [][]market.Trade{a, b} {
		for _, t := range src {
			if t.ID != "" {
				if seen[t.ID] {
					continue
				}
				seen[t.ID] = true
			}
			out = append(out, t)
		}
	}
	SortTrades(out)
	return out
}
