package ratelimit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Errors returned by the Limiter.
var (
	// ErrUnavailable means Redis failed or did not answer within Config.Timeout and the
	// limiter fails closed; it wraps the cause.
	ErrUnavailable = errors.New("ratelimit: redis unavailable")
	// ErrInvalidCost means the cost is below 1 or above what some policy can ever grant
	// (its Limit, or Burst for TokenBucket and GCRA): such a request could never pass.
	ErrInvalidCost = errors.New("ratelimit: invalid cost")
	// ErrEmptyIdentifier means the identifier is "".
	ErrEmptyIdentifier = errors.New("ratelimit: empty identifier")
)

// rediser is what the Limiter needs from go-redis: redis.Client, redis.ClusterClient
// and redis.UniversalClient all provide it.
type rediser interface {
	redis.Scripter
	Del(ctx context.Context, keys ...string) *redis.IntCmd
}

var _ rediser = (redis.UniversalClient)(nil)

// Config configures a Limiter.
type Config struct {
	// Policies are checked together on every call; a request passes only if all allow
	// it, and is charged to all or none. At least one is required.
	Policies []Policy
	// Prefix starts every Redis key. The zero value means "ts". It must not contain
	// '{' or '}' (it would break the keys' hash tag).
	Prefix string
	// Name is the value of the limiter const label on the metrics, keeping two limiters
	// in one registry apart. The zero value means "default".
	Name string
	// Timeout bounds each Redis call, and how long a check waits for its batched call,
	// queueing behind the call in flight included. The zero value means 100ms; a
	// negative value means no bound beyond the caller's context.
	Timeout time.Duration
	// FailOpen, when Redis fails or times out, allows the request (counted in
	// tickstash_ratelimit_fail_open_total) instead of denying it with ErrUnavailable.
	// The zero value fails closed.
	FailOpen bool
	// LocalCacheSize bounds the in-process cache of denied identifiers, which answers
	// for a blocked identifier until its retry time without calling Redis. The zero
	// value means 65536 entries; a negative value disables the cache.
	LocalCacheSize int
	// MaxBatch bounds how many concurrent checks (AllowN calls) share one script call.
	// While a call is at Redis, the checks that arrive meanwhile queue up and go
	// together in the next one, whose script reads the clock once and decides them in
	// arrival order, each as if alone: one round trip and one script run for many
	// checks. An idle limiter sends a check at once, so batching adds no waiting. On
	// Redis Cluster a batch is split by hash slot into calls pipelined together. Peek
	// and Reset are never batched. The zero value means 64; 1 disables batching, so
	// every check is its own call.
	MaxBatch int
	// Lease, above zero, lets a busy identifier's check take up to Lease units of its
	// quota beyond its cost, in the same script call, which this process then spends on
	// the identifier's next checks without a Redis call (Result.Leased). It trades
	// exactness for throughput, within bounds:
	//   - every unit spent was charged in Redis first, so no process passes more than
	//     Redis granted; but a unit charged in one window may be spent in the next, so a
	//     window may see up to Lease units more than its limit from each process;
	//   - units a process holds are charged but not yet spent, so while one process
	//     holds a lease, other processes may be refused up to Lease units early. Held
	//     units are not lost with time; they are lost only when the identifier is Reset,
	//     or dropped from a full map of LocalCacheSize idle identifiers (65536 when the
	//     cache is off).
	// Keep it small beside the policies' capacities (the gateway uses 1%). Lease sizes
	// follow the identifier's pace: they start at 1 unit, double while each is used up
	// within LeaseTTL of its take and halve when one lasts longer, so an identifier with
	// few requests never leases; a take Redis refuses (near the limit) or that fails
	// stops leasing for a LeaseTTL, so checks near the limit are exact. Units already
	// leased are still spent while Redis is down. The zero value disables leasing.
	Lease int64
	// LeaseTTL is how long a lease is sized to last, and how long leasing pauses after
	// a refused take. The zero value means 1s.
	LeaseTTL time.Duration
	// Now is the clock of the local cache's expiry; Redis-side decisions always use the
	// Redis server's clock. The zero value means time.Now.
	Now func() time.Time
}

// Limiter checks requests of identifiers (users, tokens, IP addresses) against a fixed
// set of policies kept in Redis. It is safe for concurrent use, and any number of
// Limiters with the same Prefix and Policies, in any number of processes, share counts.
type Limiter struct {
	rdb      rediser
	prefix   string
	policies []Policy
	argv     []any    // ARGV of check.lua up to the costs: peek flag "0", policy count, policies
	batch    *batcher // nil when Config.MaxBatch is 1
	timeout  time.Duration
	failOpen bool
	cache    *blockCache
	leases   *leases // nil when Config.Lease is 0
	now      func() time.Time
	metrics  *metrics
}

// NewLimiter returns a Limiter over rdb that registers its metrics with reg (nil: not
// registered). It returns an error naming the field if cfg is invalid, and the
// registerer's error (as a panic from promauto) if the metrics are already registered
// under the same Config.Name.
func NewLimiter(rdb rediser, cfg Config, reg prometheus.Registerer) (*Limiter, error) {
	if rdb == nil {
		return nil, errors.New("ratelimit: nil redis client")
	}
	if len(cfg.Policies) == 0 {
		return nil, errors.New("ratelimit: no policies")
	}
	seen := make(map[string]bool, len(cfg.Policies))
	argv := make([]any, 2, 2+4*len(cfg.Policies))
	argv[0], argv[1] = "0", len(cfg.Policies)
	for _, p := range cfg.Policies {
		if err := p.validate(); err != nil {
			return nil, err
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("ratelimit: policy %q: duplicate name", p.Name)
		}
		seen[p.Name] = true
		argv = append(argv, p.Algorithm.code(), p.Limit, p.Window.Microseconds(), p.Capacity())
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = "ts"
	}
	for _, r := range prefix {
		if r == '{' || r == '}' {
			return nil, fmt.Errorf("ratelimit: prefix %q: must not contain braces", prefix)
		}
	}
	if cfg.MaxBatch < 0 {
		return nil, fmt.Errorf("ratelimit: max batch %d: must not be negative", cfg.MaxBatch)
	}
	if cfg.Lease < 0 || cfg.LeaseTTL < 0 {
		return nil, fmt.Errorf("ratelimit: lease %d for %v: must not be negative", cfg.Lease, cfg.LeaseTTL)
	}
	name := cfg.Name
	if name == "" {
		name = "default"
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 100 * time.Millisecond
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	l := &Limiter{
		rdb:      rdb,
		prefix:   prefix,
		policies: append([]Policy(nil), cfg.Policies...),
		argv:     argv,
		timeout:  timeout,
		failOpen: cfg.FailOpen,
		now:      now,
		metrics:  newMetrics(reg, name, cfg.Policies),
	}
	if cfg.MaxBatch != 1 {
		_, cluster := rdb.(*redis.ClusterClient)
		l.batch = newBatcher(l, cmp.Or(cfg.MaxBatch, 64), cluster)
	}
	switch {
	case cfg.LocalCacheSize == 0:
		l.cache = newBlockCache(65536)
	case cfg.LocalCacheSize > 0:
		l.cache = newBlockCache(cfg.LocalCacheSize)
	}
	if cfg.Lease > 0 {
		entries := 65536
		if cfg.LocalCacheSize > 0 {
			entries = cfg.LocalCacheSize
		}
		l.leases = newLeases(cfg.Lease, l.policies, cmp.Or(cfg.LeaseTTL, time.Second), entries)
	}
	return l, nil
}

// Policies returns a copy of the limiter's policies.
func (l *Limiter) Policies() []Policy {
	return append([]Policy(nil), l.policies...)
}

// Result is the decision on one request.
type Result struct {
	// Allowed reports whether every policy allowed the request; if so, it was charged
	// to every policy, else to none.
	Allowed bool
	// Policy, Limit, Remaining, ResetAfter, ResetAt and RetryAfter are those of the
	// most restrictive policy: when denied, the denying policy with the longest
	// RetryAfter; when allowed, the policy with the fewest units remaining.
	Policy     string
	Limit      int64
	Remaining  int64
	ResetAfter time.Duration
	ResetAt    time.Time
	RetryAfter time.Duration
	// Policies holds each policy's own decision, in Config.Policies order. It is nil
	// when the limiter failed open or closed.
	Policies []PolicyResult
	// Cached reports that the denial came from the local cache without a Redis call;
	// ResetAfter and RetryAfter are then measured on the local clock.
	Cached bool
	// FailedOpen reports that Redis failed and the request was allowed unchecked.
	FailedOpen bool
	// Leased reports that the request was allowed from units this process leased from
	// Redis earlier (Config.Lease), without a Redis call. Remaining then counts the
	// units still leased, and the reset times have aged since the lease was taken.
	Leased bool
}

// PolicyResult is one policy's decision on a request.
type PolicyResult struct {
	// Policy is the policy's Name.
	Policy string
	// Allowed reports whether this policy alone would let the request through.
	Allowed bool
	// Limit is the policy's capacity: Limit for the window algorithms, Burst (or
	// Limit) for TokenBucket and GCRA.
	Limit int64
	// Remaining is the number of units left after the request if it was charged
	// (every policy allowed it), else the units left now.
	Remaining int64
	// ResetAfter is how long until the policy's quota is whole again, counting this
	// request if it was charged (for FixedWindow: until the window ends); ResetAt is
	// that instant on the Redis server's clock.
	ResetAfter time.Duration
	ResetAt    time.Time
	// RetryAfter is how long until a request of the same cost could pass this policy;
	// zero if it passes now.
	RetryAfter time.Duration
}

// Allow is AllowN with cost 1.
func (l *Limiter) Allow(ctx context.Context, identifier string) (Result, error) {
	return l.AllowN(ctx, identifier, 1)
}

// AllowN decides whether identifier may spend cost units now under every policy and,
// if so, charges them all in one atomic Redis script call; if any policy denies,
// nothing is charged. A denied identifier is remembered locally until its RetryAfter,
// and answered from memory (Result.Cached) for requests of at least that cost.
// Concurrent calls share script calls (see Config.MaxBatch) with the same results.
// With Config.Lease, a busy identifier's checks are mostly answered from units this
// process took from Redis ahead (Result.Leased).
//
// It returns ErrEmptyIdentifier or ErrInvalidCost for bad arguments. When Redis fails
// or exceeds Config.Timeout it returns an allowed Result with FailedOpen set and a nil
// error if the limiter fails open, else a denied Result and an error wrapping
// ErrUnavailable. If ctx itself ends, it returns ctx's error whatever the fail mode.
func (l *Limiter) AllowN(ctx context.Context, identifier string, cost int64) (Result, error) {
	if err := l.checkArgs(identifier, cost); err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("ratelimit: check %q: %w", identifier, err)
	}
	now := l.now()
	// Units leased are already charged: they go before a cached denial, which may
	// predate them.
	if l.leases != nil {
		if pol, ok := l.leases.spend(identifier, cost, now); ok {
			l.metrics.leased.Inc()
			res := Result{Allowed: true, Policies: pol, Leased: true}
			l.count(&res)
			res.summarize()
			return res, nil
		}
	}
	if l.cache != nil {
		if e, ok := l.cache.get(identifier, cost, now); ok {
			l.metrics.cacheHits.Inc()
			return l.fromCache(e, now), nil
		}
	}
	if l.leases != nil {
		if extra, held, ticket := l.leases.begin(identifier, cost, now); extra > 0 {
			if res, done, err := l.take(ctx, identifier, ticket, cost, held, extra); done {
				return res, err
			}
		}
	}
	res, err := l.run(ctx, identifier, cost, false)
	if err != nil {
		if ctx.Err() == nil {
			l.countFailure()
		}
		return res, err
	}
	l.count(&res)
	if !res.Allowed && l.cache != nil && res.RetryAfter > 0 {
		now := l.now()
		l.cache.put(identifier, blockEntry{at: now, until: now.Add(res.RetryAfter), cost: cost, result: res}, now)
	}
	return res, nil
}

// take runs a check of cost, held units of which the lease already covers, that also
// asks Redis for extra units to lease. done is false when Redis refused the extra units
// but not necessarily the check, which the caller must then run exactly.
func (l *Limiter) take(ctx context.Context, identifier string, ticket *leaseEntry, cost, held, extra int64) (res Result, done bool, err error) {
	res, err = l.run(ctx, identifier, cost-held+extra, false)
	now := l.now()
	switch {
	case err != nil:
		l.leases.refused(identifier, ticket, now)
		if ctx.Err() == nil {
			l.countFailure()
		}
		return res, true, err
	case res.FailedOpen:
		l.leases.refused(identifier, ticket, now)
		l.count(&res)
		return res, true, nil
	case !res.Allowed:
		l.leases.refused(identifier, ticket, now)
		return Result{}, false, nil
	}
	l.leases.settle(identifier, ticket, extra, slices.Clone(res.Policies), now)
	// This caller's view: the extra units are still there, held here.
	for i := range res.Policies {
		res.Policies[i] = l.leases.credit(i, res.Policies[i], extra)
	}
	res.summarize()
	l.count(&res)
	return res, true, nil
}

// count records a decision's per-policy outcomes in the metrics.
func (l *Limiter) count(res *Result) {
	if res.FailedOpen {
		l.metrics.failOpens.Inc()
		for _, p := range l.policies {
			l.metrics.decision(p.Name, resultFailOpen)
		}
		return
	}
	for _, p := range res.Policies {
		if p.Allowed {
			l.metrics.decision(p.Policy, resultAllowed)
		} else {
			l.metrics.decision(p.Policy, resultDenied)
		}
	}
}

// countFailure records a check that failed closed.
func (l *Limiter) countFailure() {
	for _, p := range l.policies {
		l.metrics.decision(p.Name, resultFailClosed)
	}
}

// fromCache ages a cached denial to now.
func (l *Limiter) fromCache(e blockEntry, now time.Time) Result {
	elapsed := now.Sub(e.at)
	age := func(d time.Duration) time.Duration { return max(d-elapsed, 0) }
	res := e.result
	res.Cached = true
	res.RetryAfter = e.until.Sub(now)
	res.ResetAfter = age(res.ResetAfter)
	res.Policies = make([]PolicyResult, len(e.result.Policies))
	for i, p := range e.result.Policies {
		p.ResetAfter, p.RetryAfter = age(p.ResetAfter), age(p.RetryAfter)
		res.Policies[i] = p
		if p.Allowed {
			l.metrics.decision(p.Policy, resultAllowed)
		} else {
			l.metrics.decision(p.Policy, resultDenied)
		}
	}
	return res
}

// Peek reports what Allow would decide for identifier now, without charging anything
// and without the local cache; Remaining is the units left before the request. Its
// errors are those of AllowN.
func (l *Limiter) Peek(ctx context.Context, identifier string) (Result, error) {
	if err := l.checkArgs(identifier, 1); err != nil {
		return Result{}, err
	}
	return l.run(ctx, identifier, 1, true)
}

// Reset deletes every count of identifier in Redis and in this process's local cache
// and lease, so its next request starts afresh. Other processes' local caches still
// deny it until the RetryAfter they were told, and their leases still hold. It returns
// ErrEmptyIdentifier, or an error wrapping ErrUnavailable if Redis fails.
func (l *Limiter) Reset(ctx context.Context, identifier string) error {
	if identifier == "" {
		return ErrEmptyIdentifier
	}
	if l.cache != nil {
		l.cache.delete(identifier)
	}
	if l.leases != nil {
		l.leases.drop(identifier)
	}
	keys := make([]string, len(l.policies))
	for i, p := range l.policies {
		keys[i] = policyKey(l.prefix, identifier, p.Name)
	}
	ctx, cancel := l.withTimeout(ctx)
	defer cancel()
	if err := l.rdb.Del(ctx, keys...).Err(); err != nil {
		return fmt.Errorf("%w: reset: %w", ErrUnavailable, err)
	}
	return nil
}

func (l *Limiter) checkArgs(identifier string, cost int64) error {
	if identifier == "" {
		return ErrEmptyIdentifier
	}
	if cost < 1 {
		return fmt.Errorf("%w: %d is below 1", ErrInvalidCost, cost)
	}
	for _, p := range l.policies {
		if cost > p.Capacity() {
			return fmt.Errorf("%w: %d exceeds the capacity %d of policy %q", ErrInvalidCost, cost, p.Capacity(), p.Name)
		}
	}
	return nil
}

func (l *Limiter) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if l.timeout < 0 {
		return ctx, func() {}
	}
	// A caller's deadline that comes first already bounds the call, and a timer per
	// call is not free.
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= l.timeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, l.timeout)
}

// run decides one check, in a batch unless peeking or batching is off, and turns the
// script's reply into a Result.
func (l *Limiter) run(ctx context.Context, identifier string, cost int64, peek bool) (Result, error) {
	tag := identifierTag(l.prefix, identifier)
	keys := make([]string, len(l.policies))
	for i, p := range l.policies {
		keys[i] = tag + p.Name
	}
	var (
		now   int64
		reply []int64
		err   error
	)
	if l.batch != nil && !peek {
		now, reply, err = l.batch.check(ctx, keys, cost)
	} else {
		argv := append(slices.Clone(l.argv), cost)
		if peek {
			argv[0] = "1"
		}
		sctx, cancel := l.withTimeout(ctx)
		reply, err = l.eval(sctx, keys, argv, 1)
		cancel()
		if err == nil {
			now, reply = reply[0], reply[1:]
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("ratelimit: check %q: %w", identifier, ctx.Err())
		}
		return l.failed(err)
	}

	at := time.UnixMicro(now)
	res := Result{Allowed: reply[0] == 1, Policies: make([]PolicyResult, len(l.policies))}
	for i, p := range l.policies {
		v := reply[1+4*i : 5+4*i]
		pr := PolicyResult{
			Policy:     p.Name,
			Allowed:    v[0] == 1,
			Limit:      p.Capacity(),
			Remaining:  v[1],
			ResetAfter: time.Duration(v[2]) * time.Microsecond,
			RetryAfter: time.Duration(v[3]) * time.Microsecond,
		}
		pr.ResetAt = at.Add(pr.ResetAfter)
		res.Policies[i] = pr
	}
	res.summarize()
	return res, nil
}

// summarize sets the Result's top-level fields from its most restrictive policy.
func (res *Result) summarize() {
	pick := 0
	for i, pr := range res.Policies {
		if moreRestrictive(pr, res.Policies[pick]) {
			pick = i
		}
	}
	m := res.Policies[pick]
	res.Policy, res.Limit, res.Remaining = m.Policy, m.Limit, m.Remaining
	res.ResetAfter, res.ResetAt, res.RetryAfter = m.ResetAfter, m.ResetAt, m.RetryAfter
}

// eval runs check.lua once for checks checks and returns its reply, checked for length.
func (l *Limiter) eval(ctx context.Context, keys []string, argv []any, checks int) ([]int64, error) {
	start := time.Now()
	reply, err := checkScript.Run(ctx, l.rdb, keys, argv...).Int64Slice()
	l.metrics.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, err
	}
	return reply, l.checkReply(reply, checks)
}

// checkReply reports a reply of check.lua whose length does not fit checks checks.
func (l *Limiter) checkReply(reply []int64, checks int) error {
	if want := 1 + checks*(1+4*len(l.policies)); len(reply) != want {
		return fmt.Errorf("reply of %d values, want %d", len(reply), want)
	}
	return nil
}

// moreRestrictive orders policy decisions: a denial beats an allowance, a longer retry
// beats a shorter one, fewer remaining units beat more, a later reset beats an earlier.
func moreRestrictive(a, b PolicyResult) bool {
	if a.Allowed != b.Allowed {
		return !a.Allowed
	}
	if !a.Allowed {
		return a.RetryAfter > b.RetryAfter
	}
	if a.Remaining != b.Remaining {
		return a.Remaining < b.Remaining
	}
	return a.ResetAfter > b.ResetAfter
}

// failed applies the fail mode to a Redis error. The caller counts the outcome.
func (l *Limiter) failed(err error) (Result, error) {
	if l.failOpen {
		return Result{Allowed: true, FailedOpen: true}, nil
	}
	return Result{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
}
