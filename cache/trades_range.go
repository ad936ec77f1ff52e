package cache

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/market"
)

// TradesBetween returns the trades of a market's stream whose exchange time is in
// [from, to) at millisecond precision, oldest first, at most limit of them (the oldest).
// Trades older than the stream's retention are gone: the result starts later then.
func (s *MarketStore) TradesBetween(ctx context.Context, ex market.Exchange, sym market.Symbol, from, to time.Time, limit int) ([]market.Trade, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("cache: trades between: limit must be positive, got %d", limit)
	}
	lo, hi := from.UnixMilli(), to.UnixMilli()
	if lo < 0 {
		lo = 0
	}
	if hi <= lo {
		return nil, nil
	}
	msgs, err := s.rdb.XRangeN(ctx, s.keys.Trades(ex, sym), strconv.FormatInt(lo, 10), "("+strconv.FormatInt(hi, 10), int64(limit)).Result()
	if err != nil {
		return nil, fmt.Errorf("cache: trades of %s:%s between %s and %s: %w", ex, sym, market.FormatTime(from), market.FormatTime(to), err)
	}
	out := make([]market.Trade, 0, len(msgs))
	for _, m := range msgs {
		t, err := decodeTrade(ex, sym, m)
		if err != nil {
			return nil, err
		}
		if !t.Time.Before(from) && t.Time.Before(to) {
			out = append(out, t)
		}
	}
	return out, nil
}

// decodeTrade reads a trade stream entry (the fields Write gives it).
func decodeTrade(ex market.Exchange, sym market.Symbol, m redis.XMessage) (market.Trade, error) {
	var p parser
	t := market.Trade{Exchange: ex, Symbol: sym}
	t.ID, _ = m.Values["id"].(string)
	t.Price = p.decimalAny(m.Values["p"])
	t.Qty = p.decimalAny(m.Values["q"])
	side, _ := m.Values["s"].(string)
	var err error
	if t.Side, err = market.ParseSide(side); err != nil {
		p.err = err
	}
	t.Time = p.unixNano(m.Values["t"])
	if r := p.unixNano(m.Values["r"]); r.UnixNano() != 0 {
		t.ReceivedAt = r
	}
	if p.err != nil {
		return market.Trade{}, fmt.Errorf("cache: trade %s of %s:%s is corrupt: %w", m.ID, ex, sym, p.err)
	}
	return t, nil
}
