package signals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/pipeline"
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
	// Columns, if not nil, are the analysis columns the analyzer computes; NewRole then
	// refuses strategies with a rule reading another column (see CheckColumns). nil
	// skips the check.
	Columns []string
	// Stream is the JetStream stream of analysis updates; NewRole creates or updates it
	// as the analysis workers do. The zero value is pipeline's default, TS_ANALYSIS on
	// ts.analysis.>.
	Stream pipeline.AnalysisStream
	// Durable names the durable consumer that every Role instance shares: each update
	// goes to one of them, and a restarted Role resumes after the last update
	// acknowledged. The zero value means "tickstash-signals".
	Durable string
	// AckWait is how long an update handed to a Role may go unacknowledged before the
	// stream delivers it again (to this or another instance): it bounds the delay after a
	// Role dies mid-update. The zero value means 30s.
	AckWait time.Duration
	// Prefix starts the Redis keys of the rule state. The zero value means "ts".
	Prefix string
	// StateTTL is how long a strategy remembers the previous update of a market and
	// interval, the base of the next crossing. The zero value means three intervals
	// plus one hour, so that a role restarted within that time neither misses nor
	// repeats a cross.
	StateTTL time.Duration
	// Now is the clock of Signal.Time. The zero value means time.Now.
	Now func() time.Time
}

// Role turns analysis updates into signals: it reads the updates from their JetStream
// stream through a durable consumer, evaluates the strategies against each strategy's
// previous point of the market and interval (kept in Redis with a TTL), publishes the
// signals they raise, saves the new points and only then acknowledges the update. An
// update whose handling failed, or whose Role died, is delivered again; handling it
// twice publishes nothing new (the saved point makes it old news, and a signal
// republished before the point was saved has the same id, dropped by the signal
// stream). Updates are handled one at a time, in stream order, across all instances.
type Role struct {
	js      jetstream.JetStream
	mu      sync.Mutex // guards cons, made again if it vanishes
	cons    jetstream.Consumer
	rdb     stateStore
	pub     Publisher
	closes  CandleReader
	cfg     RoleConfig
	keys    keyspace
	log     *slog.Logger
	metrics *roleMetrics
}

// NewRole returns a Role reading updates over nc, state from rdb, closes from closes
// (nil: updates without a close are skipped) and publishing with pub. It creates or
// updates the update stream and the durable consumer, so that every update published
// after NewRole returns reaches a Role, even one started later (a new consumer starts
// with the updates published after its creation). nc may be nil for a Role used only
// through Handle. It returns an error if cfg has no strategies, a strategy is invalid,
// repeated or reads a column outside cfg.Columns, or the stream or consumer cannot be
// created.
func NewRole(ctx context.Context, nc *nats.Conn, rdb stateStore, pub Publisher, closes CandleReader, cfg RoleConfig, log *slog.Logger, reg prometheus.Registerer) (*Role, error) {
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
	if cfg.Columns != nil {
		if err := CheckColumns(cfg.Strategies, cfg.Columns); err != nil {
			return nil, err
		}
	}
	if cfg.Durable == "" {
		cfg.Durable = "tickstash-signals"
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Role{rdb: rdb, pub: pub, closes: closes, cfg: cfg, keys: newKeyspace(cfg.Prefix),
		log: log, metrics: newRoleMetrics(reg)}
	if nc == nil {
		return r, nil
	}
	var err error
	if r.js, err = jetstream.New(nc); err != nil {
		return nil, fmt.Errorf("signals: jetstream: %w", err)
	}
	if err := r.ensure(ctx); err != nil {
		return nil, err
	}
	if reg != nil {
		reg.MustRegister(&pendingCollector{r: r, scrapeErrors: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "tickstash_signals_updates_scrape_errors_total",
			Help: "Scrapes that could not read the analysis update backlog from JetStream.",
		})})
	}
	return r, nil
}

// ensure creates or updates the update stream and the durable consumer.
func (r *Role) ensure(ctx context.Context) error {
	if _, err := r.cfg.Stream.Ensure(ctx, r.js); err != nil {
		return fmt.Errorf("signals: role: %w", err)
	}
	cons, err := r.js.CreateOrUpdateConsumer(ctx, r.cfg.Stream.Stream(), jetstream.ConsumerConfig{
		Durable:       r.cfg.Durable,
		Description:   "tickstash signals role",
		FilterSubject: r.cfg.Stream.Subjects(),
		DeliverPolicy: jetstream.DeliverNewPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       r.cfg.AckWait,
		MaxDeliver:    -1,
		// One update in flight across every instance: updates are handled in stream
		// order even when a Role dies holding some (its successor would otherwise take
		// newer updates first and ignore the redelivered older ones as old news,
		// missing their crosses). It caps the rate at one update per handling round
		// trip (state read, signal publish, state write, ack), about a millisecond
		// (BenchmarkRoleUpdates), while analysis produces one update per market and
		// interval per candle.
		MaxAckPending: 1,
	})
	if err != nil {
		return fmt.Errorf("signals: role: durable consumer %s on stream %s: %w", r.cfg.Durable, r.cfg.Stream.Stream(), err)
	}
	r.mu.Lock()
	r.cons = cons
	r.mu.Unlock()
	return nil
}

func (r *Role) consumer() jetstream.Consumer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cons
}

// Run handles the analysis updates until ctx ends, then returns nil after the update in
// hand is finished (its publish is cut short by ctx, and it is delivered again later).
// It returns an error if the Role has no consumer (made without a NATS connection).
// Errors of single updates are logged and counted in tickstash_signals_updates_total;
// they do not stop Run: an undecodable update or one without a close price is dropped,
// any other failure (Redis, publishing) is retried in place, with a pause doubling up to
// 5s, before the next update is taken.
func (r *Role) Run(ctx context.Context) error {
	if r.js == nil {
		return errors.New("signals: role: made without a NATS connection; it can only Handle")
	}
	r.log.Info("signals role started", "stream", r.cfg.Stream.Stream(), "consumer", r.cfg.Durable, "strategies", len(r.cfg.Strategies))
	for ctx.Err() == nil {
		it, err := r.consumer().Messages(jetstream.PullMaxMessages(64), jetstream.PullHeartbeat(time.Second),
			jetstream.PullExpiry(5*time.Second))
		if err != nil {
			// The stream or consumer may be gone (deleted, or a broker that lost its
			// memory store): make them again, then read on.
			r.log.Warn("signals: reading analysis updates", "err", err)
			sleepCtx(ctx, time.Second)
			if err := r.ensure(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("signals: recreating the analysis update consumer", "err", err)
			}
			continue
		}
		stop := context.AfterFunc(ctx, it.Stop)
		for {
			m, err := it.Next()
			if err != nil {
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					break
				}
				r.log.Warn("signals: reading analysis updates", "err", err)
				// Missing heartbeats too: a consumer deleted while no pull request of
				// ours was waiting gives no "consumer deleted" status, only silence.
				if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
					errors.Is(err, jetstream.ErrNoHeartbeat) {
					break
				}
				continue
			}
			r.handleMsg(ctx, m)
		}
		stop()
		it.Stop()
		if ctx.Err() == nil {
			// The iterator ended on its own: the consumer may be gone.
			if err := r.ensure(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("signals: recreating the analysis update consumer", "err", err)
				sleepCtx(ctx, time.Second)
			}
		}
	}
	return nil
}

// handleMsg handles one delivered update and settles it with the stream.
func (r *Role) handleMsg(ctx context.Context, m jetstream.Msg) {
	if md, err := m.Metadata(); err == nil && md.NumDelivered > 1 {
		r.metrics.redelivered.Inc()
	}
	u, err := DecodeUpdate(m.Data())
	if err != nil {
		r.metrics.updates.WithLabelValues("bad").Inc()
		r.log.Warn("signals: dropped analysis update", "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	// A failed update is retried in place rather than handed back, so that no newer
	// update of its market overtakes it (it would then be ignored as old news).
	wait := 50 * time.Millisecond
	for {
		err = r.Handle(ctx, u)
		switch {
		case err == nil:
			_ = m.Ack()
			return
		case ctx.Err() != nil:
			_ = m.Nak() // shutting down: to another instance, or to this one after its restart
			return
		case errors.Is(err, errNoClose):
			r.log.Warn("signals: dropped analysis update", "subject", m.Subject(), "err", err)
			_ = m.Term()
			return
		}
		r.metrics.retries.Inc()
		r.log.Warn("signals: update failed; retrying", "subject", m.Subject(), "retry_in", wait, "err", err)
		_ = m.InProgress() // keeps the stream from delivering it elsewhere meanwhile
		sleepCtx(ctx, wait)
		wait = min(2*wait, 5*time.Second)
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
