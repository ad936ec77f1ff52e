package featureflag

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"
)

//go:embed set.lua
var setLua string

var setScript = redis.NewScript(setLua)

// DefaultSubject is the core NATS subject that announces a change; the message is the
// flag's key.
const DefaultSubject = "ts.flags.changed"

// ErrTooMany is wrapped by Set when creating a flag would pass Config.MaxFlags.
var ErrTooMany = errors.New("flags: too many flags")

// Config configures a Client. Every zero value means the documented default.
type Config struct {
	// Prefix starts every key; "" means "ts".
	Prefix string
	// Subject is the NATS subject of change notifications; "" means DefaultSubject.
	// Use a different subject per prefix.
	Subject string
	// Resync is how often Run reloads every definition, in case a notification was lost.
	// 0 means 30 seconds.
	Resync time.Duration
	// MaxFlags bounds the number of flags. 0 means 1000.
	MaxFlags int
	// HistoryLen is about how many changes the history stream keeps (it is trimmed with
	// MAXLEN ~). 0 means 10 000.
	HistoryLen int
	// Now is the clock of change records; nil means time.Now.
	Now func() time.Time
}

// Change is one recorded change of a flag. Before or After is nil when the flag was
// created or deleted.
type Change struct {
	ID            string
	Key           string
	Who           string
	When          time.Time
	Before, After *Flag
}

// Client manages flag definitions in Redis and evaluates flags from a local copy, which
// Run keeps current from NATS notifications and a periodic resync. Evaluation makes no
// network call. It is safe for concurrent use.
//
// Keys (the hash tag {flags} keeps them in one slot):
//
//	<prefix>:{flags}:defs     hash: key → JSON definition (at most MaxFlags fields)
//	<prefix>:{flags}:changes  stream: key, who, when, before, after (MAXLEN ~ HistoryLen)
type Client struct {
	rdb  redis.UniversalClient
	nc   *nats.Conn
	cfg  Config
	log  *slog.Logger
	defs string
	hist string

	local  atomic.Pointer[map[string]*compiled]
	notify chan struct{}

	evaluations prometheus.Counter
	unknown     prometheus.Counter
	refreshes   *prometheus.CounterVec
	refreshErrs prometheus.Counter
	changes     prometheus.Counter
	count       prometheus.Gauge
}

// New returns a client. nc may be nil: then changes are not announced, and Run only
// resyncs periodically. log may be nil. Its metrics are registered with reg.
func New(rdb redis.UniversalClient, nc *nats.Conn, cfg Config, log *slog.Logger, reg prometheus.Registerer) *Client {
	if cfg.Prefix == "" {
		cfg.Prefix = "ts"
	}
	if cfg.Subject == "" {
		cfg.Subject = DefaultSubject
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 30 * time.Second
	}
	if cfg.MaxFlags <= 0 {
		cfg.MaxFlags = 1000
	}
	if cfg.HistoryLen <= 0 {
		cfg.HistoryLen = 10_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := promauto.With(reg)
	c := &Client{
		rdb: rdb, nc: nc, cfg: cfg, log: log,
		defs:   cfg.Prefix + ":{flags}:defs",
		hist:   cfg.Prefix + ":{flags}:changes",
		notify: make(chan struct{}, 1),
		evaluations: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_flags_evaluations_total",
			Help: "Flag evaluations from the local copy.",
		}),
		unknown: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_flags_unknown_evaluations_total",
			Help: "Evaluations of a flag the local copy does not hold (the caller's default was served).",
		}),
		refreshes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_flags_refreshes_total",
			Help: "Reloads of the local copy by trigger: start, notify, resync.",
		}, []string{"trigger"}),
		refreshErrs: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_flags_refresh_errors_total",
			Help: "Failed reloads of the local copy (the previous copy stays in use).",
		}),
		changes: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_flags_changes_total",
			Help: "Flag definitions written or deleted by this process.",
		}),
		count: f.NewGauge(prometheus.GaugeOpts{
			Name: "tickstash_flags_definitions",
			Help: "Flags in the local copy.",
		}),
	}
	empty := map[string]*compiled{}
	c.local.Store(&empty)
	return c
}

// Set writes a flag definition (validated and normalized first) and records the change
// by who, then announces it on NATS. Writing the definition already stored records
// nothing. It returns an error wrapping ErrInvalid (nothing written) or ErrTooMany.
func (c *Client) Set(ctx context.Context, f Flag, who string) error {
	if err := f.Normalize(); err != nil {
		return err
	}
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("flags: encode %s: %w", f.Key, err)
	}
	if len(b) > MaxDefinitionBytes {
		return fmt.Errorf("%w: %s: %d bytes, limit %d", ErrInvalid, f.Key, len(b), MaxDefinitionBytes)
	}
	return c.write(ctx, f.Key, string(b), who)
}

// Delete removes a flag and records the change. It returns an error wrapping
// ErrNotFound when there is no such flag.
func (c *Client) Delete(ctx context.Context, key, who string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	return c.write(ctx, key, "", who)
}

func (c *Client) write(ctx context.Context, key, def, who string) error {
	if who == "" {
		who = "unknown"
	}
	res, err := setScript.Run(ctx, c.rdb, []string{c.defs, c.hist},
		key, def, who, c.cfg.Now().UnixMilli(), c.cfg.HistoryLen, c.cfg.MaxFlags).Slice()
	if err != nil {
		return fmt.Errorf("flags: set %s: %w", key, err)
	}
	switch res[0].(int64) {
	case 0:
		return nil
	case -1:
		return fmt.Errorf("%w: %d flags defined, limit %d", ErrTooMany, c.cfg.MaxFlags, c.cfg.MaxFlags)
	case -2:
		return fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	c.changes.Inc()
	if c.nc != nil {
		// Best effort: a lost notification is made up by the periodic resync.
		if err := c.nc.Publish(c.cfg.Subject, []byte(key)); err != nil {
			c.log.Warn("flags: announce change", "key", key, "err", err)
		}
	}
	return nil
}

// Get reads a flag's definition from Redis. It returns an error wrapping ErrNotFound
// when there is no such flag.
func (c *Client) Get(ctx context.Context, key string) (Flag, error) {
	raw, err := c.rdb.HGet(ctx, c.defs, key).Result()
	if errors.Is(err, redis.Nil) {
		return Flag{}, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err != nil {
		return Flag{}, fmt.Errorf("flags: get %s: %w", key, err)
	}
	return ParseFlag([]byte(raw))
}

// List reads every definition from Redis, sorted by key. A stored definition that no
// longer validates is an error.
func (c *Client) List(ctx context.Context) ([]Flag, error) {
	all, err := c.rdb.HGetAll(ctx, c.defs).Result()
	if err != nil {
		return nil, fmt.Errorf("flags: list: %w", err)
	}
	out := make([]Flag, 0, len(all))
	for _, k := range slices.Sorted(maps.Keys(all)) {
		f, err := ParseFlag([]byte(all[k]))
		if err != nil {
			return nil, fmt.Errorf("flags: stored %s: %w", k, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// History returns up to n recorded changes, newest first, of one flag (key != "") or of
// all.
func (c *Client) History(ctx context.Context, key string, n int) ([]Change, error) {
	if n <= 0 {
		n = 20
	}
	var out []Change
	end := "+"
	for len(out) < n {
		msgs, err := c.rdb.XRevRangeN(ctx, c.hist, end, "-", 200).Result()
		if err != nil {
			return nil, fmt.Errorf("flags: history: %w", err)
		}
		for _, m := range msgs {
			if m.ID == end {
				continue
			}
			if key != "" && m.Values["key"] != key {
				continue
			}
			out = append(out, changeFrom(m))
			if len(out) == n {
				break
			}
		}
		if len(msgs) < 200 {
			break
		}
		end = msgs[len(msgs)-1].ID
	}
	return out, nil
}

func changeFrom(m redis.XMessage) Change {
	str := func(k string) string { s, _ := m.Values[k].(string); return s }
	ch := Change{ID: m.ID, Key: str("key"), Who: str("who")}
	if ms, err := strconv.ParseInt(str("when"), 10, 64); err == nil {
		ch.When = time.UnixMilli(ms).UTC()
	}
	for _, x := range []struct {
		raw string
		dst **Flag
	}{{str("before"), &ch.Before}, {str("after"), &ch.After}} {
		if x.raw == "" {
			continue
		}
		var f Flag
		if json.Unmarshal([]byte(x.raw), &f) == nil {
			*x.dst = &f
		}
	}
	return ch
}

// Refresh reloads the local copy from Redis now. On error the previous copy stays.
func (c *Client) Refresh(ctx context.Context) error {
	return c.refresh(ctx, "start")
}

func (c *Client) refresh(ctx context.Context, trigger string) error {
	all, err := c.rdb.HGetAll(ctx, c.defs).Result()
	if err != nil {
		c.refreshErrs.Inc()
		return fmt.Errorf("flags: refresh: %w", err)
	}
	m := make(map[string]*compiled, len(all))
	for k, raw := range all {
		f, err := ParseFlag([]byte(raw))
		if err != nil {
			// Set validates, so only a hand edit gets here: skip the flag, which then
			// evaluates to the caller's default, rather than keep every flag stale.
			c.log.Warn("flags: stored definition does not validate; the flag evaluates to defaults", "key", k, "err", err)
			continue
		}
		m[k] = compile(f)
	}
	c.local.Store(&m)
	c.count.Set(float64(len(m)))
	c.refreshes.WithLabelValues(trigger).Inc()
	return nil
}

// Run loads the local copy, subscribes to change notifications (when the client has a
// NATS connection) and keeps the copy current until ctx ends; it then returns nil. It
// returns an error only if the first load or the subscription fails.
func (c *Client) Run(ctx context.Context) error {
	if err := c.refresh(ctx, "start"); err != nil {
		return err
	}
	if c.nc != nil {
		sub, err := c.nc.Subscribe(c.cfg.Subject, func(*nats.Msg) {
			select {
			case c.notify <- struct{}{}:
			default: // a reload is already pending; it will see this change too
			}
		})
		if err != nil {
			return fmt.Errorf("flags: subscribe %s: %w", c.cfg.Subject, err)
		}
		defer func() { _ = sub.Unsubscribe() }()
		// Changes made while subscribing are picked up by one more load.
		if err := c.nc.Flush(); err == nil {
			_ = c.refresh(ctx, "start")
		}
	}
	t := time.NewTicker(c.cfg.Resync)
	defer t.Stop()
	for {
		var trigger string
		select {
		case <-ctx.Done():
			return nil
		case <-c.notify:
			trigger = "notify"
		case <-t.C:
			trigger = "resync"
		}
		if err := c.refresh(ctx, trigger); err != nil && ctx.Err() == nil {
			c.log.Warn("flags: reload failed; evaluating from the previous copy", "trigger", trigger, "err", err)
		}
	}
}

// Variant evaluates the flag for u from the local copy and returns its variant, or def
// when the local copy has no such flag (unknown, deleted, or not loaded yet).
func (c *Client) Variant(key string, u User, def string) string {
	f, ok := (*c.local.Load())[key]
	if !ok {
		c.unknown.Inc()
		return def
	}
	c.evaluations.Inc()
	return f.eval(u)
}

// Bool evaluates an on/off flag: true when the variant is "on", false for any other
// variant, def when the flag is unknown (see Variant).
func (c *Client) Bool(key string, u User, def bool) bool {
	f, ok := (*c.local.Load())[key]
	if !ok {
		c.unknown.Inc()
		return def
	}
	c.evaluations.Inc()
	return f.eval(u) == "on"
}

// Known reports whether the local copy holds the flag.
func (c *Client) Known(key string) bool {
	_, ok := (*c.local.Load())[key]
	return ok
}
