package signals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/ratelimit"
)

// StartFrom is where a new subscription starts in the stream.
type StartFrom uint8

// Start positions.
const (
	// FromNew delivers only signals published after the subscription starts.
	FromNew StartFrom = iota
	// FromLast first delivers the last stored signal of every subject the subscription
	// covers (a late joiner's catch-up: each strategy and market's latest call), then
	// new ones.
	FromLast
	// FromAll delivers every stored signal, then new ones.
	FromAll
)

// ParseStartFrom parses "new", "last" or "all".
func ParseStartFrom(s string) (StartFrom, error) {
	switch s {
	case "new", "":
		return FromNew, nil
	case "last":
		return FromLast, nil
	case "all":
		return FromAll, nil
	}
	return 0, fmt.Errorf("signals: start %q: want new, last or all", s)
}

func (f StartFrom) policy() jetstream.DeliverPolicy {
	switch f {
	case FromLast:
		return jetstream.DeliverLastPerSubjectPolicy
	case FromAll:
		return jetstream.DeliverAllPolicy
	}
	return jetstream.DeliverNewPolicy
}

// Entitler decides whether a user may receive a signal; *EntitlementStore satisfies it.
type Entitler interface {
	Allowed(ctx context.Context, user, strategy string, sym market.Symbol) (bool, error)
}

// DeliveryLimiter charges one delivery to a user; *ratelimit.Limiter satisfies it.
type DeliveryLimiter interface {
	Allow(ctx context.Context, identifier string) (ratelimit.Result, error)
}

var (
	_ Entitler        = (*EntitlementStore)(nil)
	_ DeliveryLimiter = (*ratelimit.Limiter)(nil)
)

// ClientConfig configures a Client.
type ClientConfig struct {
	StreamConfig
	// Entitlements, if set, is asked before each delivery; signals the user is not
	// entitled to are skipped (and acknowledged). nil delivers everything the filters
	// match.
	Entitlements Entitler
	// Limiter, if set, charges each delivery to the user; nil means no limit.
	Limiter DeliveryLimiter
	// DropLimited drops (and acknowledges) a signal the limiter denies. The zero value
	// holds the delivery back until the limiter allows it, keeping order.
	DropLimited bool
	// Log receives notices (nil: discarded).
	Log *slog.Logger
}

// Client receives signals for bots. It is safe for concurrent use; each Subscribe is
// independent.
type Client struct {
	js      jetstream.JetStream
	cfg     ClientConfig
	metrics *subscriberMetrics
}

// NewClient returns a client over nc whose metrics are registered with reg (nil: not
// registered).
func NewClient(nc *nats.Conn, cfg ClientConfig, reg prometheus.Registerer) (*Client, error) {
	cfg.StreamConfig = cfg.StreamConfig.withDefaults()
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("signals: jetstream: %w", err)
	}
	return &Client{js: js, cfg: cfg, metrics: newSubscriberMetrics(reg)}, nil
}

// SubscribeOptions selects what a subscription receives.
type SubscribeOptions struct {
	// User is the identity of the entitlement check and the rate limit; required when
	// the Client has either.
	User string
	// Strategies and Symbols filter the signals; empty means all. Each (strategy, symbol)
	// pair is one consumer with one filter subject (so nats-server 2.9 works, and
	// server-side permissions from NATSPermissions can check it); at most 64 pairs.
	Strategies []string
	Symbols    []market.Symbol
	// From is where a new subscription starts. The zero value is FromNew.
	From StartFrom
	// Durable, if set, names durable pull consumers with explicit acks (<Durable> for
	// one filter, <Durable>-<n> for several): a restarted bot resumes after the last
	// signal it acknowledged, and a signal its handler failed is redelivered. "" uses
	// ordered consumers, which need no acks and vanish with the subscription.
	Durable string
	// AckWait is how long the server waits for a durable consumer's ack before it
	// redelivers. The zero value means 30s.
	AckWait time.Duration
}

// Handler receives one signal. An error stops the subscription; on a durable consumer
// the signal is negatively acknowledged and will be redelivered.
type Handler func(ctx context.Context, sig market.Signal) error

// ErrUserRequired is returned by Subscribe when the Client checks entitlements or rate
// limits and SubscribeOptions.User is empty.
var ErrUserRequired = errors.New("signals: subscribe: user required")

// Subscribe delivers the signals opts selects to h, one at a time, until ctx ends (it
// then returns nil) or h fails (it returns h's error). Before each delivery it checks the
// user's entitlement and charges the rate limit. It returns an error if a consumer
// cannot be created (no stream, a permissions violation, a durable created with another
// start position) or the entitlement or limiter fails.
func (c *Client) Subscribe(ctx context.Context, opts SubscribeOptions, h Handler) error {
	if opts.User == "" && (c.cfg.Entitlements != nil || c.cfg.Limiter != nil) {
		return ErrUserRequired
	}
	for _, st := range opts.Strategies {
		if err := market.ValidateStrategyName(st); err != nil {
			return fmt.Errorf("signals: subscribe: %w", err)
		}
	}
	for _, sym := range opts.Symbols {
		if err := sym.Validate(); err != nil {
			return fmt.Errorf("signals: subscribe: %w", err)
		}
	}
	filters := subscriptionFilters(opts, c.cfg.StreamConfig)
	if len(filters) > 64 {
		return fmt.Errorf("signals: subscribe: %d strategy and symbol pairs, at most 64", len(filters))
	}
	if opts.AckWait <= 0 {
		opts.AckWait = 30 * time.Second
	}
	var consumers []jetstream.Consumer
	for i, f := range filters {
		var cons jetstream.Consumer
		var err error
		if opts.Durable != "" {
			name := opts.Durable
			if len(filters) > 1 {
				name = fmt.Sprintf("%s-%d", opts.Durable, i+1)
			}
			cons, err = c.js.CreateOrUpdateConsumer(ctx, c.cfg.Stream, jetstream.ConsumerConfig{
				Durable:       name,
				FilterSubject: f,
				DeliverPolicy: opts.From.policy(),
				AckPolicy:     jetstream.AckExplicitPolicy,
				AckWait:       opts.AckWait,
				MaxAckPending: 1024,
			})
		} else {
			cons, err = c.js.OrderedConsumer(ctx, c.cfg.Stream, jetstream.OrderedConsumerConfig{
				FilterSubjects: []string{f},
				DeliverPolicy:  opts.From.policy(),
			})
		}
		if err != nil {
			return fmt.Errorf("signals: subscribe %s: %w", f, err)
		}
		consumers = append(consumers, cons)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex // one delivery at a time, and guards seen
		seen    = newRecentIDs(8192)
		wg      sync.WaitGroup
		errOnce sync.Once
		runErr  error
	)
	fail := func(err error) {
		errOnce.Do(func() { runErr = err; cancel() })
	}
	for _, cons := range consumers {
		wg.Go(func() {
			if err := c.consume(ctx, cons, func(m jetstream.Msg) error {
				mu.Lock()
				defer mu.Unlock()
				return c.deliver(ctx, opts, seen, m, h)
			}); err != nil {
				fail(err)
			}
		})
	}
	wg.Wait()
	return runErr
}

// consume pulls messages from cons and passes them to f until ctx ends (nil) or f fails
// (its error). A pull iterator that closes on its own, as after a broker restart, is
// opened again.
func (c *Client) consume(ctx context.Context, cons jetstream.Consumer, f func(jetstream.Msg) error) error {
	for ctx.Err() == nil {
		it, err := cons.Messages(jetstream.PullMaxMessages(256), jetstream.PullHeartbeat(time.Second),
			jetstream.PullExpiry(5*time.Second))
		if err != nil {
			c.cfg.Log.Warn("signals: subscription", "err", err)
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		stop := context.AfterFunc(ctx, it.Stop)
		for {
			m, err := it.Next()
			if err != nil {
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					break
				}
				c.cfg.Log.Warn("signals: subscription", "err", err)
				continue
			}
			if err := f(m); err != nil {
				stop()
				it.Stop()
				return err
			}
		}
		stop()
		it.Stop()
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// subscriptionFilters returns one filter subject per (strategy, symbol) pair.
func subscriptionFilters(opts SubscribeOptions, sc StreamConfig) []string {
	e := Entitlement{Strategies: opts.Strategies, Symbols: make([]string, len(opts.Symbols))}
	for i, s := range opts.Symbols {
		e.Symbols[i] = string(s)
	}
	if len(e.Strategies) == 0 {
		e.Strategies = []string{Any}
	}
	if len(e.Symbols) == 0 {
		e.Symbols = []string{Any}
	}
	return FilterSubjects(e, sc)
}

// deliver checks, limits and hands one message to h. It returns an error only to stop
// the subscription.
func (c *Client) deliver(ctx context.Context, opts SubscribeOptions, seen *recentIDs, m jetstream.Msg, h Handler) error {
	durable := opts.Durable != ""
	ack := func() {
		if durable {
			_ = m.Ack()
		}
	}
	var sig market.Signal
	if err := json.Unmarshal(m.Data(), &sig); err != nil {
		c.metrics.invalid.Inc()
		c.cfg.Log.Warn("signals: dropped invalid message", "subject", m.Subject(), "err", err)
		if durable {
			_ = m.Term()
		}
		return nil
	}
	if !slices.Contains(opts.Strategies, sig.Strategy) && len(opts.Strategies) > 0 ||
		!slices.Contains(opts.Symbols, sig.Symbol) && len(opts.Symbols) > 0 {
		ack() // a subject that does not match its payload
		return nil
	}
	if seen.has(sig.ID) {
		ack() // redelivered after a lost ack, or republished outside the duplicate window
		return nil
	}
	if c.cfg.Entitlements != nil {
		ok, err := c.cfg.Entitlements.Allowed(ctx, opts.User, sig.Strategy, sig.Symbol)
		if err != nil {
			if durable {
				_ = m.Nak()
			}
			return fmt.Errorf("signals: entitlement of %s: %w", opts.User, err)
		}
		if !ok {
			c.metrics.denied.Inc()
			ack()
			return nil
		}
	}
	if c.cfg.Limiter != nil {
		for {
			res, err := c.cfg.Limiter.Allow(ctx, opts.User)
			if err != nil {
				if durable {
					_ = m.Nak()
				}
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("signals: rate limit of %s: %w", opts.User, err)
			}
			if res.Allowed {
				break
			}
			c.metrics.rateLimited.Inc()
			if c.cfg.DropLimited {
				ack()
				return nil
			}
			wait := max(res.RetryAfter, time.Millisecond)
			if durable {
				_ = m.InProgress()
				wait = min(wait, opts.AckWait/2)
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				if durable {
					_ = m.Nak()
				}
				return nil
			case <-t.C:
			}
		}
	}
	if err := h(ctx, sig); err != nil {
		if durable {
			_ = m.Nak()
		}
		return err
	}
	c.metrics.deliveries.Inc()
	seen.add(sig.ID)
	if durable {
		// The ack's confirmation is awaited so that a lost ack is noticed, but not for
		// long: the signal is in seen, so a redelivery is acknowledged without a
		// second delivery.
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := m.DoubleAck(actx)
		cancel()
		if err != nil && ctx.Err() == nil {
			c.cfg.Log.Warn("signals: ack", "id", sig.ID, "err", err)
		}
	}
	return nil
}

// recentIDs remembers the last ids delivered by one subscription, so that a signal
// redelivered after a lost ack (a broker restart) is not handed over twice.
type recentIDs struct {
	set  map[string]struct{}
	ring []string
	next int
}

func newRecentIDs(n int) *recentIDs {
	return &recentIDs{set: make(map[string]struct{}, n), ring: make([]string, n)}
}

func (r *recentIDs) has(id string) bool { _, ok := r.set[id]; return ok }

func (r *recentIDs) add(id string) {
	if r.has(id) {
		return
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.next] = id
	r.set[id] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
}

// TailOptions selects what Tail prints.
type TailOptions struct {
	StreamConfig
	// Strategy and Symbol filter; "" means all.
	Strategy string
	Symbol   market.Symbol
	// From is where to start. The zero value is FromNew.
	From StartFrom
}

// Tail prints signals as JSON lines (market.Signal's record) to w until ctx ends, then
// returns nil. It returns an error if the stream does not exist or w fails.
func Tail(ctx context.Context, nc *nats.Conn, w io.Writer, opts TailOptions) error {
	c, err := NewClient(nc, ClientConfig{StreamConfig: opts.StreamConfig}, nil)
	if err != nil {
		return err
	}
	so := SubscribeOptions{From: opts.From}
	if opts.Strategy != "" {
		so.Strategies = []string{opts.Strategy}
	}
	if opts.Symbol != "" {
		so.Symbols = []market.Symbol{opts.Symbol}
	}
	return c.Subscribe(ctx, so, func(_ context.Context, sig market.Signal) error {
		data, err := json.Marshal(sig)
		if err != nil {
			return err
		}
		if _, err := w.Write(append(data, '\n')); err != nil {
			return fmt.Errorf("signals: tail: %w", err)
		}
		return nil
	})
}
