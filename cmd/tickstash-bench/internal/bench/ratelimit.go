package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/internal/redisconn"
	"github.com/tickstash/tickstash/ratelimit"
)

// RateLimitConfig configures RateLimit.
type RateLimitConfig struct {
	// Duration is how long each case runs in all. The zero value means 3s.
	Duration time.Duration
	// Rounds splits each case's Duration into rounds run in turn with the other cases,
	// so that load from elsewhere on the machine skews all cases alike. The zero value
	// means 3.
	Rounds int
	// Goroutines is the number of concurrent callers. The zero value means 64.
	Goroutines int
	// Identifiers is the number of distinct identifiers the callers spread over. The
	// zero value means 1000.
	Identifiers int
	// Prefix starts every key the benchmark writes; they are all deleted at the end.
	// The zero value means "tsbench-" and 8 random hex digits.
	Prefix string
}

// RateLimitCase is the outcome of one benchmarked way of checking a limit.
type RateLimitCase struct {
	Name      string
	Checks    int64         // completed checks
	Errors    int64         // checks that returned an error (not counted in Checks)
	Elapsed   time.Duration // wall time of the case
	PerSecond float64       // Checks / Elapsed
	P50, P99  time.Duration // latency of one check as seen by its caller
}

// RateLimitReport is what `tickstash bench ratelimit` prints.
type RateLimitReport struct {
	Goroutines  int
	Identifiers int
	Duration    time.Duration
	Rounds      int
	Cases       []RateLimitCase
	// Ratios of checks per second, with the targets of issue 5.
	GCRAVsRedisRate      float64 // tickstash GCRA ÷ redis_rate GCRA; target ≥ 1
	GCRAVsBareEvalSha    float64 // tickstash GCRA ÷ bare EVALSHA INCR; target ≥ 0.8
	SlidingVsBareEvalSha float64 // tickstash sliding window ÷ bare EVALSHA INCR; target ≥ 0.8
	LocalCacheSpeedup    float64 // blocked callers from the local cache ÷ tickstash GCRA; target ≥ 10
}

// Names of the cases, in the order they run.
const (
	caseBare      = "bare EVALSHA (INCR)"
	caseRedisRate = "go-redis/redis_rate v10 (GCRA)"
	caseGCRA      = "tickstash GCRA"
	caseSliding   = "tickstash sliding window"
	caseBlocked   = "tickstash blocked, local cache"
)

// gcraRate is the rate per second of both GCRA cases.
const gcraRate = 1 << 20

// incrScript is the floor a one-round-trip limiter can reach: one EVALSHA running one
// command.
var incrScript = redis.NewScript(`return redis.call('INCR', KEYS[1])`)

// RateLimit benchmarks tickstash's rate limiter against go-redis/redis_rate and a bare
// EVALSHA on rdb: Goroutines callers check limits for Duration per case, and the report
// gives checks per second, p50/p99 latency and the ratios the performance targets name.
// Limits are set so high that every check is allowed (the write path), except in the
// blocked case, where every identifier is denied first so that checks are answered by
// the local cache. Progress lines go to progress (nil: discarded). Keys are deleted
// before it returns. It returns an error if Redis fails or ctx ends.
func RateLimit(ctx context.Context, rdb redis.UniversalClient, cfg RateLimitConfig, progress io.Writer) (RateLimitReport, error) {
	if cfg.Duration <= 0 {
		cfg.Duration = 3 * time.Second
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 3
	}
	if cfg.Goroutines <= 0 {
		cfg.Goroutines = 64
	}
	if cfg.Identifiers <= 0 {
		cfg.Identifiers = 1000
	}
	if cfg.Prefix == "" {
		cfg.Prefix = randomPrefix("tsbench")
	}
	if progress == nil {
		progress = io.Discard
	}
	rep := RateLimitReport{Goroutines: cfg.Goroutines, Identifiers: cfg.Identifiers, Duration: cfg.Duration, Rounds: cfg.Rounds}
	// redis_rate puts its own "rate:" in front of our keys.
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for _, pattern := range []string{cfg.Prefix + "*", "rate:" + cfg.Prefix + "*"} {
			if err := redisconn.DeleteKeys(cctx, rdb, pattern); err != nil {
				fmt.Fprintf(progress, "clean up %s: %v\n", pattern, err)
			}
		}
	}()

	ids := make([]string, cfg.Identifiers)
	for i := range ids {
		ids[i] = "user-" + strconv.Itoa(i)
	}
	pick := func(g, i int) string { return ids[(g*7919+i)%len(ids)] }

	newLimiter := func(name string, p ratelimit.Policy) (*ratelimit.Limiter, error) {
		return ratelimit.NewLimiter(rdb, ratelimit.Config{
			Policies: []ratelimit.Policy{p},
			Prefix:   cfg.Prefix + ":" + name,
			Timeout:  time.Second,
		}, nil)
	}
	// Both GCRA cases get the same rate, 2^20 per second: high enough that every check
	// passes, low enough that one emission interval (about 1µs) survives redis_rate's
	// float seconds. At 2^30 per second and more its new TAT rounds to now and it skips
	// the SET, so that case would measure a read-only path against our write path.
	gcra, err := newLimiter("gcra", ratelimit.Policy{Name: "p", Algorithm: ratelimit.GCRA, Limit: gcraRate, Burst: 1 << 30, Window: time.Second})
	if err != nil {
		return rep, err
	}
	sliding, err := newLimiter("sw", ratelimit.Policy{Name: "p", Algorithm: ratelimit.SlidingWindow, Limit: 1 << 40, Window: time.Second})
	if err != nil {
		return rep, err
	}
	blocked, err := newLimiter("blocked", ratelimit.Policy{Name: "p", Algorithm: ratelimit.FixedWindow, Limit: 1, Window: time.Hour})
	if err != nil {
		return rep, err
	}
	rr := redis_rate.NewLimiter(rdb)
	rrLimit := redis_rate.Limit{Rate: gcraRate, Burst: 1 << 30, Period: time.Second}
	bareKeys := make([]string, len(ids))
	for i, id := range ids {
		bareKeys[i] = cfg.Prefix + ":bare:{" + id + "}"
	}

	cases := []struct {
		name  string
		setup func(context.Context) error
		check func(ctx context.Context, g, i int) error
	}{
		{caseBare, nil, func(ctx context.Context, g, i int) error {
			return incrScript.Run(ctx, rdb, []string{bareKeys[(g*7919+i)%len(ids)]}).Err()
		}},
		{caseRedisRate, nil, func(ctx context.Context, g, i int) error {
			_, err := rr.Allow(ctx, cfg.Prefix+":rr:"+pick(g, i), rrLimit)
			return err
		}},
		{caseGCRA, nil, func(ctx context.Context, g, i int) error {
			_, err := gcra.Allow(ctx, pick(g, i))
			return err
		}},
		{caseSliding, nil, func(ctx context.Context, g, i int) error {
			_, err := sliding.Allow(ctx, pick(g, i))
			return err
		}},
		{caseBlocked, func(ctx context.Context) error {
			for _, id := range ids {
				for range 2 {
					if _, err := blocked.Allow(ctx, id); err != nil {
						return err
					}
				}
			}
			return nil
		}, func(ctx context.Context, g, i int) error {
			res, err := blocked.Allow(ctx, pick(g, i))
			if err == nil && !res.Cached {
				err = errors.New("blocked check not answered by the local cache")
			}
			return err
		}},
	}
	for _, c := range cases {
		if c.setup != nil {
			if err := c.setup(ctx); err != nil {
				return rep, fmt.Errorf("bench: ratelimit: %s: set up: %w", c.name, err)
			}
		}
	}
	samples := make([]sample, len(cases))
	for round := range cfg.Rounds {
		for i, c := range cases {
			s, err := measure(ctx, cfg.Goroutines, cfg.Duration/time.Duration(cfg.Rounds), c.check)
			if err != nil {
				return rep, fmt.Errorf("bench: ratelimit: %s: %w", c.name, err)
			}
			samples[i].add(s)
			fmt.Fprintf(progress, "round %d/%d %-32s %10.0f checks/s\n", round+1, cfg.Rounds, c.name, float64(len(s.lat))/s.elapsed.Seconds())
		}
	}
	for i, c := range cases {
		res := samples[i].result(c.name)
		fmt.Fprintf(progress, "%-32s %10.0f checks/s  p50 %-9v p99 %v\n", res.Name, res.PerSecond, res.P50, res.P99)
		rep.Cases = append(rep.Cases, res)
	}
	rate := func(name string) float64 {
		for _, c := range rep.Cases {
			if c.Name == name {
				return c.PerSecond
			}
		}
		return 0
	}
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	rep.GCRAVsRedisRate = ratio(rate(caseGCRA), rate(caseRedisRate))
	rep.GCRAVsBareEvalSha = ratio(rate(caseGCRA), rate(caseBare))
	rep.SlidingVsBareEvalSha = ratio(rate(caseSliding), rate(caseBare))
	rep.LocalCacheSpeedup = ratio(rate(caseBlocked), rate(caseGCRA))
	return rep, nil
}

// sample is what measure collected: the latency of every successful check.
type sample struct {
	lat      []time.Duration
	errs     int64
	elapsed  time.Duration
	firstErr error
}

func (s *sample) add(o sample) {
	s.lat = append(s.lat, o.lat...)
	s.errs += o.errs
	s.elapsed += o.elapsed
}

func (s *sample) result(name string) RateLimitCase {
	slices.Sort(s.lat)
	return RateLimitCase{
		Name:      name,
		Checks:    int64(len(s.lat)),
		Errors:    s.errs,
		Elapsed:   s.elapsed,
		PerSecond: float64(len(s.lat)) / s.elapsed.Seconds(),
		P50:       percentile(s.lat, 0.50),
		P99:       percentile(s.lat, 0.99),
	}
}

// measure runs check from goroutines callers for d. It fails if more than 1% of the
// checks fail (returning the first error) or ctx ends.
func measure(ctx context.Context, goroutines int, d time.Duration, check func(ctx context.Context, g, i int) error) (sample, error) {
	lat := make([][]time.Duration, goroutines)
	errs := make([]int64, goroutines)
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for g := range goroutines {
		lat[g] = make([]time.Duration, 0, 1<<12)
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				if err := check(ctx, g, i); err != nil {
					errs[g]++
					once.Do(func() { firstErr = err })
					continue
				}
				lat[g] = append(lat[g], time.Since(t0))
			}
		})
	}
	wg.Wait()
	s := sample{elapsed: time.Since(start), firstErr: firstErr}
	if err := ctx.Err(); err != nil {
		return s, err
	}
	for g := range goroutines {
		s.lat = append(s.lat, lat[g]...)
		s.errs += errs[g]
	}
	if n := int64(len(s.lat)) + s.errs; s.errs*100 > n {
		return s, fmt.Errorf("%d of %d checks failed, first: %w", s.errs, n, firstErr)
	}
	return s, nil
}

// percentile returns the q-quantile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Markdown renders the report as a table plus the targets, for BENCHMARKS.md.
func (r RateLimitReport) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d goroutines, %d identifiers, %v per case in %d interleaved rounds; every check allowed except the blocked case.\n\n",
		r.Goroutines, r.Identifiers, r.Duration, r.Rounds)
	b.WriteString("| case | checks/s | p50 | p99 | errors |\n|---|---:|---:|---:|---:|\n")
	for _, c := range r.Cases {
		fmt.Fprintf(&b, "| %s | %.0f | %v | %v | %d |\n", c.Name, c.PerSecond, round(c.P50), round(c.P99), c.Errors)
	}
	b.WriteString("\n| target | ratio | met |\n|---|---:|---|\n")
	row := func(what string, v, target float64) {
		met := "yes"
		if v < target {
			met = "no"
		}
		fmt.Fprintf(&b, "| %s ≥ %g | %.2f | %s |\n", what, target, v, met)
	}
	row("tickstash GCRA ÷ redis_rate", r.GCRAVsRedisRate, 1)
	row("tickstash GCRA ÷ bare EVALSHA", r.GCRAVsBareEvalSha, 0.8)
	row("tickstash sliding window ÷ bare EVALSHA", r.SlidingVsBareEvalSha, 0.8)
	row("local cache ÷ tickstash GCRA", r.LocalCacheSpeedup, 10)
	return b.String()
}

// round trims durations to three significant digits for the table.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	case d >= time.Microsecond:
		return d.Round(100 * time.Nanosecond)
	}
	return d
}
