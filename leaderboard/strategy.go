package leaderboard

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/market"
)

// StrategyConfig configures a StrategyTracker. Every zero value means the documented
// default.
type StrategyConfig struct {
	// TTL of a strategy's position and statistics keys, refreshed by each signal: a
	// strategy silent that long starts afresh. 0 means 90 days.
	TTL time.Duration
	// Places is the number of decimal places returns are rounded to. 0 means 10.
	Places int32
}

// StrategyTracker paper-trades every strategy's signals and ranks strategies by
// cumulative return (BoardStrategyReturn) and win rate (BoardStrategyWinRate).
//
// A buy signal on a flat market opens a long paper position at the signal's price, a
// sell a short; the opposite signal closes it (a trade, won when its return is positive)
// and opens nothing. A signal on the side already held is ignored, and so is a signal not
// later than the last one seen for that strategy and market, so replaying signals changes
// nothing. Returns compound: equity starts at 1 and is multiplied by 1 + r per trade.
type StrategyTracker struct {
	store *Store
	cfg   StrategyConfig
}

// NewStrategyTracker returns a tracker writing to store.
func NewStrategyTracker(store *Store, cfg StrategyConfig) *StrategyTracker {
	if cfg.TTL <= 0 {
		cfg.TTL = 90 * 24 * time.Hour
	}
	if cfg.Places <= 0 {
		cfg.Places = 10
	}
	return &StrategyTracker{store: store, cfg: cfg}
}

// StrategyStats is what a strategy's closed paper trades add up to.
type StrategyStats struct {
	Trades, Wins int64
	// Return is the cumulative compounded return in percent.
	Return decimal.Decimal
	// WinRate is Wins/Trades in percent, 0 without trades.
	WinRate decimal.Decimal
}

// ErrInvalidSignal is wrapped by RecordSignal when an argument does not validate.
var ErrInvalidSignal = errors.New("leaderboard: invalid signal")

// RecordSignal applies one signal of strategy on a market at price and time at, and
// returns whether it closed a trade. It returns an error wrapping ErrInvalidSignal (side
// neither buy nor sell, price not positive, bad names) before anything is written.
func (t *StrategyTracker) RecordSignal(ctx context.Context, strategy string, ex market.Exchange, sym market.Symbol, side market.Side, price decimal.Decimal, at time.Time) (closed bool, err error) {
	if err := ValidateMember(strategy); err != nil || strings.ContainsAny(strategy, "{}") {
		return false, fmt.Errorf("%w: strategy %q", ErrInvalidSignal, strategy)
	}
	if err := (market.Instrument{Exchange: ex, Symbol: sym}).Validate(); err != nil {
		return false, fmt.Errorf("%w: %v", ErrInvalidSignal, err)
	}
	if side != market.Buy && side != market.Sell {
		return false, fmt.Errorf("%w: side %s: want buy or sell", ErrInvalidSignal, side)
	}
	if !price.IsPositive() {
		return false, fmt.Errorf("%w: price %s: want positive", ErrInvalidSignal, price)
	}
	posKey, statsKey := t.store.keys.positions(strategy), t.store.keys.stats(strategy)
	field := string(ex) + ":" + string(sym)
	var stats StrategyStats
	txf := func(tx *redis.Tx) error {
		closed = false
		raw, err := tx.HGet(ctx, posKey, field).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		pos, err := parsePosition(raw)
		if err != nil {
			return err
		}
		if !pos.last.IsZero() && !at.After(pos.last) {
			return nil // a replay or an out-of-order signal
		}
		next := position{last: at}
		switch {
		case pos.side == side: // already holding this side
			next.side, next.price = pos.side, pos.price
		case pos.side == market.SideUnknown: // flat: open
			next.side, next.price = side, price
		default: // opposite: close
			closed = true
		}
		var st map[string]string
		if closed {
			if st, err = tx.HGetAll(ctx, statsKey).Result(); err != nil {
				return err
			}
			if stats, err = parseStats(st); err != nil {
				return err
			}
			r := price.Sub(pos.price).DivRound(pos.price, t.cfg.Places)
			if pos.side == market.Sell {
				r = r.Neg()
			}
			stats.Trades++
			if r.IsPositive() {
				stats.Wins++
			}
			equity := stats.Return.Shift(-2).Add(decimal.NewFromInt(1)).Mul(r.Add(decimal.NewFromInt(1))).Round(t.cfg.Places)
			stats.Return = equity.Sub(decimal.NewFromInt(1)).Shift(2)
			stats.WinRate = decimal.NewFromInt(stats.Wins*100).DivRound(decimal.NewFromInt(stats.Trades), 4)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, posKey, field, next.String())
			p.PExpire(ctx, posKey, t.cfg.TTL)
			if closed {
				p.HSet(ctx, statsKey, "trades", stats.Trades, "wins", stats.Wins, "return", stats.Return.String())
				p.PExpire(ctx, statsKey, t.cfg.TTL)
			}
			return nil
		})
		return err
	}
	for attempt := 0; ; attempt++ {
		err = t.store.rdb.Watch(ctx, txf, posKey, statsKey)
		if !errors.Is(err, redis.TxFailedErr) {
			break
		}
		if attempt == 32 {
			return false, fmt.Errorf("%w: strategy %s", ErrContended, strategy)
		}
	}
	if err != nil {
		return false, fmt.Errorf("leaderboard: strategy %s: %w", strategy, err)
	}
	if !closed {
		return false, nil
	}
	// The boards are Set from the stats just written, so a retry after a failure here
	// writes the same values.
	if err := t.store.Set(ctx, BoardStrategyReturn, strategy, stats.Return); err != nil {
		return true, err
	}
	return true, t.store.Set(ctx, BoardStrategyWinRate, strategy, stats.WinRate)
}

// Stats returns a strategy's statistics; zero values for a strategy without trades.
func (t *StrategyTracker) Stats(ctx context.Context, strategy string) (StrategyStats, error) {
	st, err := t.store.rdb.HGetAll(ctx, t.store.keys.stats(strategy)).Result()
	if err != nil {
		return StrategyStats{}, fmt.Errorf("leaderboard: strategy %s: %w", strategy, err)
	}
	return parseStats(st)
}

func parseStats(st map[string]string) (StrategyStats, error) {
	var s StrategyStats
	var err error
	s.Return = decimal.Zero
	s.WinRate = decimal.Zero
	if len(st) == 0 {
		return s, nil
	}
	if s.Trades, err = strconv.ParseInt(st["trades"], 10, 64); err != nil {
		return s, fmt.Errorf("leaderboard: corrupt strategy stats %v", st)
	}
	if s.Wins, err = strconv.ParseInt(st["wins"], 10, 64); err != nil {
		return s, fmt.Errorf("leaderboard: corrupt strategy stats %v", st)
	}
	if s.Return, err = decimal.NewFromString(st["return"]); err != nil {
		return s, fmt.Errorf("leaderboard: corrupt strategy stats %v", st)
	}
	if s.Trades > 0 {
		s.WinRate = decimal.NewFromInt(s.Wins*100).DivRound(decimal.NewFromInt(s.Trades), 4)
	}
	return s, nil
}

// position is a paper position: "<side> <price> <last signal unix ns>", side "flat"
// when none is open.
type position struct {
	side  market.Side
	price decimal.Decimal
	last  time.Time
}

func (p position) String() string {
	if p.side == market.SideUnknown {
		return "flat 0 " + strconv.FormatInt(p.last.UnixNano(), 10)
	}
	return p.side.String() + " " + p.price.String() + " " + strconv.FormatInt(p.last.UnixNano(), 10)
}

func parsePosition(raw string) (position, error) {
	if raw == "" {
		return position{}, nil
	}
	f := strings.Fields(raw)
	if len(f) != 3 {
		return position{}, fmt.Errorf("leaderboard: corrupt position %q", raw)
	}
	var p position
	if f[0] != "flat" {
		side, err := market.ParseSide(f[0])
		if err != nil {
			return position{}, fmt.Errorf("leaderboard: corrupt position %q", raw)
		}
		p.side = side
		if p.price, err = decimal.NewFromString(f[1]); err != nil {
			return position{}, fmt.Errorf("leaderboard: corrupt position %q", raw)
		}
	}
	ns, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		return position{}, fmt.Errorf("leaderboard: corrupt position %q", raw)
	}
	p.last = time.Unix(0, ns)
	return p, nil
}
