package ingest

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"
)

var (
	//go:embed shard_heartbeat.lua
	shardHeartbeatLua string
	//go:embed shard_acquire.lua
	shardAcquireLua string
	//go:embed shard_release.lua
	shardReleaseLua string

	shardHeartbeat = redis.NewScript(shardHeartbeatLua)
	shardAcquire   = redis.NewScript(shardAcquireLua)
	shardRelease   = redis.NewScript(shardReleaseLua)
)

// Unit is a piece of ingest work that one instance of a shard group owns at a time,
// typically one market of one feed ("binance:BTCUSDT").
type Unit struct {
	// Key names the unit; every instance of a group must use the same keys.
	Key string
	// New builds the unit's source each time this instance takes the unit over.
	New func() (Source, error)
}

// ShardConfig configures a Sharded source. Zero values mean the defaults.
type ShardConfig struct {
	// Group names the instances that share the units; required, [A-Za-z0-9_.-].
	Group string
	// Instance identifies this process in the group; "" means a random id.
	Instance string
	// Lease is how long a unit stays owned without renewal, and how long a dead
	// instance stays a member: a dead instance's units are taken over within about
	// Lease + Tick. 0 means 5s.
	Lease time.Duration
	// Tick is how often membership and leases are renewed and the units rebalanced; 0
	// means Lease/5.
	Tick time.Duration
	// Prefix starts the keys; "" means "ts".
	Prefix string
}

var groupRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// Sharded is a Source that spreads units of work over every instance of a group: each
// unit's owner is chosen by rendezvous hashing over the live members, and an instance
// runs a unit only while it holds the unit's lease in Redis. When an instance joins or
// leaves, units move: the old owner stops the unit's source before it releases the
// lease, and the new owner starts it only once the lease is its own, so no unit runs
// twice. An instance that cannot renew its leases (Redis unreachable) stops its units
// before the leases can have expired.
type Sharded struct {
	rdb   redis.UniversalClient
	units map[string]Unit
	cfg   ShardConfig
	log   *slog.Logger

	owned    prometheus.Gauge
	moves    *prometheus.CounterVec
	failures prometheus.Counter
}

// NewSharded returns a sharded source over units. Unit keys must be unique.
func NewSharded(rdb redis.UniversalClient, units []Unit, cfg ShardConfig, log *slog.Logger, reg prometheus.Registerer) (*Sharded, error) {
	if !groupRE.MatchString(cfg.Group) {
		return nil, fmt.Errorf("ingest: shard group %q: want 1 to 64 of A-Z a-z 0-9 _ . -", cfg.Group)
	}
	if cfg.Instance == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		cfg.Instance = hex.EncodeToString(b[:])
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 5 * time.Second
	}
	if cfg.Tick <= 0 {
		cfg.Tick = cfg.Lease / 5
	}
	if cfg.Tick >= cfg.Lease/2 {
		return nil, fmt.Errorf("ingest: shard tick %v must be under half the lease %v", cfg.Tick, cfg.Lease)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "ts"
	}
	byKey := make(map[string]Unit, len(units))
	for _, u := range units {
		if _, dup := byKey[u.Key]; dup {
			return nil, fmt.Errorf("ingest: shard unit %q listed twice", u.Key)
		}
		byKey[u.Key] = u
	}
	f := promauto.With(reg)
	return &Sharded{
		rdb: rdb, units: byKey, cfg: cfg, log: log.With("shard_group", cfg.Group, "instance", cfg.Instance),
		owned: f.NewGauge(prometheus.GaugeOpts{
			Name: "tickstash_ingest_shard_units_owned",
			Help: "Units of ingest work (markets of a feed) this instance owns in its shard group.",
		}),
		moves: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_ingest_shard_unit_changes_total",
			Help: "Units this instance started (took over) or stopped (handed over, or lost with its lease), by change.",
		}, []string{"change"}),
		failures: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_ingest_shard_redis_errors_total",
			Help: "Membership or lease renewals that failed to reach Redis.",
		}),
	}, nil
}

// Name returns "shard:<group>".
func (s *Sharded) Name() string { return "shard:" + s.cfg.Group }

// Instance returns this instance's id in the group.
func (s *Sharded) Instance() string { return s.cfg.Instance }

// running is a unit this instance runs.
type running struct {
	cancel  context.CancelFunc
	done    chan struct{}
	renewed time.Time // last successful lease renewal (local clock)
}

// Run balances the units until ctx ends, then stops every unit and gives up its leases
// and its membership so others take over at once.
func (s *Sharded) Run(ctx context.Context, out chan<- Event) error {
	run := map[string]*running{}
	var wg sync.WaitGroup
	stop := func(key, why string) {
		r := run[key]
		r.cancel()
		<-r.done
		delete(run, key)
		s.moves.WithLabelValues("stopped").Inc()
		s.log.Info("unit stopped", "unit", key, "why", why)
	}
	defer func() {
		for key := range run {
			stop(key, "shutdown")
		}
		wg.Wait()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		pipe := s.rdb.Pipeline()
		for key := range s.units {
			shardRelease.Run(ctx, pipe, []string{shardLeaseKey(s.cfg.Prefix, s.cfg.Group, key)}, s.cfg.Instance)
		}
		pipe.ZRem(ctx, shardMembersKey(s.cfg.Prefix, s.cfg.Group), s.cfg.Instance)
		_, _ = pipe.Exec(ctx)
		s.owned.Set(0)
	}()

	tick := time.NewTicker(s.cfg.Tick)
	defer tick.Stop()
	for {
		s.balance(ctx, run, stop, &wg, out)
		s.owned.Set(float64(len(run)))
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// balance is one round: heartbeat, stop what is no longer ours, renew what is, take
// what should be.
func (s *Sharded) balance(ctx context.Context, run map[string]*running, stop func(string, string), wg *sync.WaitGroup, out chan<- Event) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Tick)
	defer cancel()
	now := time.Now()
	members, err := shardHeartbeat.Run(rctx, s.rdb, []string{shardMembersKey(s.cfg.Prefix, s.cfg.Group)},
		s.cfg.Instance, s.cfg.Lease.Milliseconds()).StringSlice()
	if err != nil {
		s.failures.Inc()
		s.log.Warn("shard heartbeat failed", "err", err)
		s.fence(run, stop, now)
		return
	}
	desired := map[string]bool{}
	for key := range s.units {
		if owner(key, members) == s.cfg.Instance {
			desired[key] = true
		}
	}
	for key := range run {
		if !desired[key] {
			stop(key, "rebalanced")
			if err := shardRelease.Run(rctx, s.rdb, []string{shardLeaseKey(s.cfg.Prefix, s.cfg.Group, key)}, s.cfg.Instance).Err(); err != nil {
				s.log.Warn("lease release failed; it will expire", "unit", key, "err", err)
			}
		}
	}
	// Renew held leases and try the wanted ones in one pipeline.
	keys := make([]string, 0, len(desired))
	for key := range desired {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(keys))
	for i, key := range keys {
		cmds[i] = shardAcquire.EvalSha(rctx, pipe, []string{shardLeaseKey(s.cfg.Prefix, s.cfg.Group, key)}, s.cfg.Instance, s.cfg.Lease.Milliseconds())
	}
	if _, err := pipe.Exec(rctx); redis.HasErrorPrefix(err, "NOSCRIPT") {
		pipe = s.rdb.Pipeline()
		for i, key := range keys {
			cmds[i] = shardAcquire.Eval(rctx, pipe, []string{shardLeaseKey(s.cfg.Prefix, s.cfg.Group, key)}, s.cfg.Instance, s.cfg.Lease.Milliseconds())
		}
		_, _ = pipe.Exec(rctx)
	}
	for i, key := range keys {
		held, err := cmds[i].Int()
		r := run[key]
		switch {
		case err != nil:
			s.failures.Inc()
			s.log.Warn("lease renewal failed", "unit", key, "err", err)
		case held == 1 && r != nil:
			r.renewed = now
		case held == 1:
			s.start(ctx, key, run, wg, out, now)
		case r != nil:
			stop(key, "lease lost to another instance")
		}
	}
	s.fence(run, stop, now)
}

// fence stops units whose lease this instance could not renew for most of the lease
// time: another instance may own them by now.
func (s *Sharded) fence(run map[string]*running, stop func(string, string), now time.Time) {
	for key, r := range run {
		if now.Sub(r.renewed) > s.cfg.Lease*4/5 {
			stop(key, "lease not renewed in time")
		}
	}
}

func (s *Sharded) start(ctx context.Context, key string, run map[string]*running, wg *sync.WaitGroup, out chan<- Event, now time.Time) {
	src, err := s.units[key].New()
	if err != nil {
		s.log.Error("unit cannot start", "unit", key, "err", err)
		return
	}
	uctx, cancel := context.WithCancel(ctx)
	r := &running{cancel: cancel, done: make(chan struct{}), renewed: now}
	run[key] = r
	s.moves.WithLabelValues("started").Inc()
	s.log.Info("unit started", "unit", key)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(r.done)
		if err := src.Run(uctx, out); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("unit source failed", "unit", key, "err", err)
		}
	}()
}

// owner picks a unit's owner among members by rendezvous hashing: every instance that
// sees the same members picks the same owner, and a member leaving moves only its own
// units.
func owner(unit string, members []string) string {
	var best string
	var bestScore uint64
	for _, m := range members {
		h := fnv.New64a()
		h.Write([]byte(m))
		h.Write([]byte{0})
		h.Write([]byte(unit))
		score := mix64(h.Sum64())
		if best == "" || score > bestScore || (score == bestScore && m < best) {
			best, bestScore = m, score
		}
	}
	return best
}

// mix64 is the splitmix64 finalizer: it spreads FNV's weak low bits.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
