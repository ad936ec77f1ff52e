package signals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/market"
)

// CandleReader loads the newest candles of a market, oldest first; *cache.MarketStore
// satisfies it. The Role reads a candle's close from it when an update lacks one.
type CandleReader interface {
	LastCandles(ctx context.Context, ex market.Exchange, sym market.Symbol, iv market.Interval, n int) ([]market.Candle, error)
}

// Publisher is what the Role publishes signals with; *Distributor satisfies it.
type Publisher interface {
	Publish(ctx context.Context, sigs ...market.Signal) error
}

// stateStore is what the Role needs from Redis.
type stateStore interface {
	MGet(ctx context.Context, keys ...string) *redis.SliceCmd
	Pipelined(ctx context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error)
}

var (
	_ stateStore = (redis.UniversalClient)(nil)
	_ Publisher  = (*Distributor)(nil)
)

// RoleConfig configures a Role.
type RoleConfig struct {
	// Strategies are evaluated on every analysis update they apply to; at least one
	// (LoadStrategies reads them from a file).
	Strategies []Strategy
	// Subject is the core NATS subject of analysis updates. The zero value means
	// "ts.analysis.>".
	Subject string
	// QueueGroup shares the updates between Role instances. The zero value means
	// "tickstash-signals"; "-" subscribes without a queue group.
	QueueGroup string
	// Prefix starts the Redis keys of the rule state. The zero value means "ts".
	Prefix string
	// StateTTL is how long a strategy remembers the previous update of a market and
	// interval, the base of the next crossing. The zero value means three intervals
	// plus one hour, so that a role restarted within that time neither misses nor
	// repeats a cross.
	StateTTL time.Duration
	// Buffer is how many updates may wait while one is handled; more are dropped by
	// NATS as a slow consumer. The zero value means 4096.
	Buffer int
	// Now is the clock of Signal.Time. The zero value means time.Now.
	Now func() time.Time
}

// Role turns analysis updates into signals: it subscribes to the updates on core NATS,
// evaluates the strategies against each strategy's previous point of the market and
// interval (kept in Redis with a TTL), publishes the signals they raise and then saves
// the new points. Updates are handled one at a time, in arrival order.
type Role struct {
	nc      *nats.Conn
	rdb     stateStore
	pub     Publisher
	closes  CandleReader
	cfg     RoleConfig
	keys    keyspace
	log     *slog.Logger
	metrics *roleMetrics
}

// NewRole returns a Role reading updates from nc, state from rdb, closes from closes (nil:
// updates without a close are skipped) and publishing with pub. It returns an error if
// cfg has no strategies or a strategy is invalid or repeated.
func NewRole(nc *nats.Conn, rdb stateStore, pub Publisher, closes CandleReader, cfg RoleConfig, log *slog.Logger, reg prometheus.Registerer) (*Role, error) {
	if len(cfg.Strategies) == 0 {
		return nil, errors.New("signals: role: no strategies")
	}
	seen := map[string]bool{}
	for _, s := range cfg.Strategies {
		if err := market.ValidateStrategyName(s.Name); err != nil {
			return nil, fmt.Errorf("signals: role: %w", err)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("signals: role: strategy %q given twice", s.Name)
		}
		seen[s.Name] = true
		if len(s.Rules) == 0 || len(s.Intervals) == 0 {
			return nil, fmt.Errorf("signals: role: strategy %q has no rules or no intervals", s.Name)
		}
	}
	if cfg.Subject == "" {
		cfg.Subject = "ts.analysis.>"
	}
	if cfg.QueueGroup == "" {
		cfg.QueueGroup = "tickstash-signals"
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = 4096
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Role{nc: nc, rdb: rdb, pub: pub, closes: closes, cfg: cfg, keys: newKeyspace(cfg.Prefix),
		log: log, metrics: newRoleMetrics(reg)}, nil
}

// Run subscribes to the analysis updates and handles them until ctx ends, then returns
// nil after the update in hand is finished (its publish is cut short by ctx). It
// returns an error if the subscription fails. Errors of single updates are logged and
// counted in tickstash_signals_updates_total; they do not stop Run.
func (r *Role) Run(ctx context.Context) error {
	ch := make(chan *nats.Msg, r.cfg.Buffer)
	var sub *nats.Subscription
	var err error
	if r.cfg.QueueGroup == "-" {
		sub, err = r.nc.ChanSubscribe(r.cfg.Subject, ch)
	} else {
		sub, err = r.nc.ChanQueueSubscribe(r.cfg.Subject, r.cfg.QueueGroup, ch)
	}
	if err != nil {
		return fmt.Errorf("signals: subscribe %s: %w", r.cfg.Subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := r.nc.Flush(); err != nil {
		return fmt.Errorf("signals: subscribe %s: %w", r.cfg.Subject, err)
	}
	r.log.Info("signals role started", "subject", r.cfg.Subject, "strategies", len(r.cfg.Strategies))
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-ch:
			u, err := DecodeUpdate(m.Data)
			if err != nil {
				r.metrics.updates.WithLabelValues("bad").Inc()
				r.log.Warn("signals: dropped analysis update", "subject", m.Subject, "err", err)
				continue
			}
			if err := r.Handle(ctx, u); err != nil && ctx.Err() == nil {
				r.log.Warn("signals: update failed", "subject", m.Subject, "err", err)
			}
		}
	}
}

// errNoClose means an update needed a close that neither it nor the CandleReader had.
var errNoClose = errors.New("signals: no close price for the update's candle")

// Handle evaluates the strategies that apply to u, publishes the signals raised and saves
// u as the strategies' previous point. An update for a candle not after a strategy's
// previous one is ignored by that strategy (already seen), so handling the same update
// twice publishes nothing new. Invalid signals are dropped by the publisher and do not
// fail Handle. It returns an error if Redis, the CandleReader or publishing fails; the
// state is then not saved, so a retry of u raises the same signals (same ids).
func (r *Role) Handle(ctx context.Context, u Update) error {
	var strategies []*Strategy
	for i := range r.cfg.Strategies {
		if s := &r.cfg.Strategies[i]; s.AppliesTo(u.Exchange, u.Symbol, u.Interval) {
			strategies = append(strategies, s)
		}
	}
	if len(strategies) == 0 {
		r.metrics.updates.WithLabelValues("ok").Inc()
		return nil
	}
	if u.Close.Sign() <= 0 {
		c, err := r.closeOf(ctx, u)
		if err != nil {
			r.metrics.updates.WithLabelValues("no_close").Inc()
			return err
		}
		u.Close = c
	}
	keys := make([]string, len(strategies))
	for i, s := range strategies {
		keys[i] = r.keys.state(s.Name, u.Exchange, u.Symbol, u.Interval)
	}
	prev, err := r.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		r.metrics.updates.WithLabelValues("error").Inc()
		return fmt.Errorf("signals: load rule state: %w", err)
	}
	now := r.cfg.Now()
	var sigs []market.Signal
	var save []int
	points := make([]Point, len(strategies))
	for i, s := range strategies {
		var p *Point
		if str, ok := prev[i].(string); ok {
			var pt Point
			if json.Unmarshal([]byte(str), &pt) == nil {
				p = &pt
			}
		}
		if p != nil && !u.CandleTime.After(p.CandleTime) {
			continue
		}
		cur := Point{CandleTime: u.CandleTime, Close: u.Close, Values: map[string]float64{}}
		for _, col := range s.Columns() {
			if v, ok := u.Values[col]; ok && finite(v) {
				cur.Values[col] = v
			}
		}
		points[i] = cur
		save = append(save, i)
		if sig, ok := s.Evaluate(u.Exchange, u.Symbol, u.Interval, p, &cur, now); ok {
			r.metrics.generated.WithLabelValues(s.Name).Inc()
			sigs = append(sigs, sig)
		}
	}
	if len(sigs) > 0 {
		if err := r.pub.Publish(ctx, sigs...); err != nil && !errors.Is(err, ErrInvalidSignal) {
			r.metrics.updates.WithLabelValues("error").Inc()
			return err
		} else if err != nil {
			r.log.Warn("signals: dropped invalid signals", "err", err)
		}
	}
	if len(save) > 0 {
		ttl := r.cfg.StateTTL
		if ttl <= 0 {
			ttl = 3*u.Interval.Duration() + time.Hour
		}
		_, err := r.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for _, i := range save {
				data, err := json.Marshal(points[i])
				if err != nil {
					return err
				}
				pipe.Set(ctx, keys[i], data, ttl)
			}
			return nil
		})
		if err != nil {
			r.metrics.updates.WithLabelValues("error").Inc()
			return fmt.Errorf("signals: save rule state: %w", err)
		}
	}
	r.metrics.updates.WithLabelValues("ok").Inc()
	return nil
}

func (r *Role) closeOf(ctx context.Context, u Update) (closePrice decimal.Decimal, err error) {
	if r.closes == nil {
		return closePrice, errNoClose
	}
	candles, err := r.closes.LastCandles(ctx, u.Exchange, u.Symbol, u.Interval, 3)
	if err != nil {
		return closePrice, fmt.Errorf("signals: close of %s %s %s: %w", u.Exchange, u.Symbol, u.Interval, err)
	}
	for _, c := range candles {
		if c.OpenTime.Equal(u.CandleTime) && c.Close.Sign() > 0 {
			return c.Close, nil
		}
	}
	return closePrice, fmt.Errorf("%w: %s %s %s at %s", errNoClose, u.Exchange, u.Symbol, u.Interval, market.FormatTime(u.CandleTime))
}
