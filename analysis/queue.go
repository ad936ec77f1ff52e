package analysis

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/internal/backoff"
	"github.com/tickstash/tickstash/market"
)

// Errors of the queue API. They are returned wrapped; test with errors.Is.
var (
	// ErrQueueFull is returned by Enqueue and Retry when the queue holds QueueConfig.MaxLen
	// jobs (waiting, running or waiting for a retry): the caller should back off.
	ErrQueueFull = errors.New("analysis: queue full")
	// ErrJobNotFound is returned for a job id the queue does not know (or whose record
	// has expired).
	ErrJobNotFound = errors.New("analysis: job not found")
	// ErrJobNotDead is returned by Retry for a job that is not in the dead-letter stream.
	ErrJobNotDead = errors.New("analysis: job is not dead")
	// ErrInvalidJob is returned by Enqueue for a JobSpec that does not validate.
	ErrInvalidJob = errors.New("analysis: invalid job")
)

// QueueConfig configures a Queue. Every zero value means the documented default. All
// processes sharing a queue must use the same Prefix, Group and bounds.
type QueueConfig struct {
	// Prefix starts every key, as in cache.Keyspace; "" means "ts". The queue's keys are
	// "<prefix>:{aq}:..." so its scripts run on one cluster slot.
	Prefix string
	// Group is the consumer group name; "" means "workers".
	Group string
	// MaxLen bounds the jobs in the queue (waiting, running, waiting for a retry);
	// Enqueue returns ErrQueueFull beyond it. 0 means 10 000.
	MaxLen int
	// Lease is how long a delivery may go without its worker's heartbeat (which resets
	// the entry's idle time, see WorkerConfig.Heartbeat) before another worker takes it
	// over (XAUTOCLAIM). Idle workers look for expired leases at every poll, so a job of a
	// worker that died completes elsewhere about Lease plus one poll interval after the
	// death. A job may run longer than Lease: its worker's heartbeat keeps it. 0 means 3s.
	Lease time.Duration
	// MaxDeliveries caps how often a job is delivered (first run, retries, reclaims after
	// a worker died); a job that fails or is lost that often is dead-lettered. 0 means 5.
	MaxDeliveries int
	// BackoffBase is the delay before the first retry; each further retry doubles it.
	// 0 means 1s.
	BackoffBase time.Duration
	// BackoffMax caps the retry delay. 0 means 5 minutes.
	BackoffMax time.Duration
	// JobTTL is how long a job's record (status) lives after its last change: a job
	// finished while nine tenths of the TTL its enqueue set are left keeps that TTL (one
	// command less per job), so a finished record lives 0.9–1 JobTTL. 0 means 24h.
	JobTTL time.Duration
	// DeadTTL is how long a dead job's record lives, so that Retry can still requeue it.
	// 0 means 7 days.
	DeadTTL time.Duration
	// DeadMaxLen bounds the dead-letter stream (approximately, MAXLEN ~). 0 means 10 000.
	DeadMaxLen int
	// ResultTTL is the TTL of each target's latest result and indicator state. 0 means
	// 24h.
	ResultTTL time.Duration
	// ConsumerIdle is how long a consumer of the group may go without reading while it
	// holds no pending entry before the workers' janitors remove it as dead (a worker
	// removes its own when it stops cleanly). A live consumer reads every PollInterval;
	// one removed by mistake is recreated by its next read. 0 means 10×Lease or 5
	// minutes, whichever is longer.
	ConsumerIdle time.Duration
	// DefaultAnalyzer is the analyzer CandleClosed enqueues and Enqueue uses for a
	// JobSpec without one; "" means "default".
	DefaultAnalyzer string
	// Now is the clock for retry due times and the times recorded on jobs; nil means
	// time.Now. Leases are measured by Redis (entry idle time) and do not use it.
	Now func() time.Time
}

func (c QueueConfig) withDefaults() QueueConfig {
	if c.Group == "" {
		c.Group = "workers"
	}
	if c.MaxLen <= 0 {
		c.MaxLen = 10000
	}
	if c.Lease <= 0 {
		c.Lease = 3 * time.Second
	}
	if c.ConsumerIdle <= 0 {
		c.ConsumerIdle = max(10*c.Lease, 5*time.Minute)
	}
	if c.MaxDeliveries <= 0 {
		c.MaxDeliveries = 5
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = time.Second
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 5 * time.Minute
	}
	if c.JobTTL <= 0 {
		c.JobTTL = 24 * time.Hour
	}
	if c.DeadTTL <= 0 {
		c.DeadTTL = 7 * 24 * time.Hour
	}
	if c.DeadMaxLen <= 0 {
		c.DeadMaxLen = 10000
	}
	if c.ResultTTL <= 0 {
		c.ResultTTL = 24 * time.Hour
	}
	if c.DefaultAnalyzer == "" {
		c.DefaultAnalyzer = "default"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// JobSpec says what to analyse: one market's candles of one interval with one analyzer
// (a named indicator set, see WorkerConfig.Analyzers).
type JobSpec struct {
	Exchange market.Exchange `json:"exchange"`
	Symbol   market.Symbol   `json:"symbol"`
	Interval market.Interval `json:"interval"`
	// Analyzer names the indicator set; "" means QueueConfig.DefaultAnalyzer. Names are
	// 1 to 32 of a-z, 0-9, '-' and '_'.
	Analyzer string `json:"analyzer"`
	// Watermark is the newest candle (open time) the job must cover; requests coalesced
	// into one job keep the latest. The zero time means none in particular.
	Watermark time.Time `json:"watermark,omitzero"`
}

var analyzerName = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// Validate reports whether the spec can be queued. It returns an error wrapping
// ErrInvalidJob naming the bad field.
func (s JobSpec) Validate() error {
	if err := s.Exchange.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidJob, err)
	}
	if err := s.Symbol.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidJob, err)
	}
	if err := s.Interval.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidJob, err)
	}
	if !analyzerName.MatchString(s.Analyzer) {
		return fmt.Errorf("%w: analyzer %q: want 1 to 32 of a-z, 0-9, '-' and '_'", ErrInvalidJob, s.Analyzer)
	}
	return nil
}

func (s JobSpec) target() string { return target(s.Exchange, s.Symbol, s.Interval, s.Analyzer) }

// JobState is where a job is in its life.
type JobState string

// The states of a job.
const (
	// JobQueued: waiting for a worker, possibly for a retry that is not yet due.
	JobQueued JobState = "queued"
	// JobRunning: a worker holds it.
	JobRunning JobState = "running"
	// JobDone: the analysis finished and its result is stored.
	JobDone JobState = "done"
	// JobFailed: the job finished without a result and will not be retried, e.g. for
	// insufficient data; JobStatus.Error says why.
	JobFailed JobState = "failed"
	// JobDead: given up after MaxDeliveries or for a malformed job; it is in the
	// dead-letter stream and Retry can requeue it.
	JobDead JobState = "dead"
)

// JobStatus is what Status reports about a job.
type JobStatus struct {
	ID    string   `json:"id"`
	Spec  JobSpec  `json:"spec"`
	State JobState `json:"state"`
	// Attempts counts the deliveries of the current run (reset when a rerun or Retry
	// requeues the job).
	Attempts int `json:"attempts"`
	// Error is the last error: why the job failed, is waiting for a retry, or died.
	Error string `json:"error,omitempty"`
	// RerunPending is set when a request arrived while the job was running: it runs
	// once more after it finishes.
	RerunPending bool      `json:"rerun_pending,omitempty"`
	EnqueuedAt   time.Time `json:"enqueued_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	FinishedAt   time.Time `json:"finished_at,omitzero"`
	// RetryAt is when a job waiting for a retry becomes due.
	RetryAt time.Time `json:"retry_at,omitzero"`
}

// DeadJob is one entry of the dead-letter stream.
type DeadJob struct {
	// ID is the job id; empty for a malformed stream entry, whose fields are in Raw.
	ID       string    `json:"id"`
	Spec     JobSpec   `json:"spec"`
	Error    string    `json:"error"`
	Attempts int       `json:"attempts"`
	At       time.Time `json:"at"`
	Raw      string    `json:"raw,omitempty"`
}

// Queue is the analysis job queue on a Redis Streams consumer group. It is safe for
// concurrent use. Producers use Enqueue (or CandleClosed); Workers consume.
type Queue struct {
	rdb  redis.UniversalClient
	cfg  QueueConfig
	keys queueKeys
	m    *queueMetrics

	batch enqueueBatcher
}

// NewQueue returns a queue over rdb (a single Redis, a Cluster or Sentinel client). Its
// metrics, including queue gauges read from Redis at scrape time, are registered with
// reg (nil: not registered). The consumer group is created on first use.
func NewQueue(rdb redis.UniversalClient, cfg QueueConfig, reg prometheus.Registerer) *Queue {
	cfg = cfg.withDefaults()
	q := &Queue{rdb: rdb, cfg: cfg, keys: newQueueKeys(cfg.Prefix)}
	q.m = newQueueMetrics(q, reg)
	return q
}

// Config returns the configuration in use, defaults filled in.
func (q *Queue) Config() QueueConfig { return q.cfg }

// streamMaxLen is the hard MAXLEN of the job stream. Enqueue refuses new jobs well
// before it, so trimming only ever removes entries if the bound was bypassed; such
// entries are detected and counted when reclaimed.
func (q *Queue) streamMaxLen() int { return 2*q.cfg.MaxLen + 1000 }

func (q *Queue) nowMs() int64 { return q.cfg.Now().UnixMilli() }

func secs(d time.Duration) int64 { return max(1, int64((d+time.Second-1)/time.Second)) }

// jobIDEncoding spells job ids: 96 random bits in 20 characters of a-z and 2-7 (short,
// because an id goes to Redis many times per job; never starting with '-', so that it
// reads as an argument on a command line).
var jobIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func newJobID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return jobIDEncoding.EncodeToString(b[:])
}

// Enqueue asks for spec to be analysed and returns the id of the job that will do it.
// If a job for the same target (exchange, symbol, interval, analyzer) is waiting, it
// raises that job's watermark and returns its id instead of adding a job; if one is
// running, it is run once more after it finishes. It returns an error wrapping
// ErrInvalidJob for a bad spec, ErrQueueFull when the queue is at QueueConfig.MaxLen,
// and a wrapped Redis error otherwise.
func (q *Queue) Enqueue(ctx context.Context, spec JobSpec) (string, error) {
	if spec.Analyzer == "" {
		spec.Analyzer = q.cfg.DefaultAnalyzer
	}
	if err := spec.Validate(); err != nil {
		return "", err
	}
	r := &enqueueReq{spec: spec, id: newJobID(), done: make(chan struct{})}
	if err := q.submit(ctx, r); err != nil {
		return "", err
	}
	if r.err != nil {
		return "", r.err
	}
	switch r.how {
	case "full":
		q.m.rejected.Inc()
		return "", fmt.Errorf("%w: %d jobs queued (bound %d); retry later", ErrQueueFull, q.cfg.MaxLen, q.cfg.MaxLen)
	case "coalesced", "rerun":
		q.m.coalesced.Inc()
	default:
		q.m.enqueued.Inc()
	}
	return r.gotID, nil
}

// CandleClosed enqueues the default analyzer's job for the candle's market and interval,
// with the candle's open time as watermark. It implements ingest.CandleSink. Errors are
// those of Enqueue.
func (q *Queue) CandleClosed(ctx context.Context, c market.Candle) error {
	_, err := q.Enqueue(ctx, JobSpec{Exchange: c.Exchange, Symbol: c.Symbol, Interval: c.Interval,
		Analyzer: q.cfg.DefaultAnalyzer, Watermark: c.OpenTime})
	return err
}

// Length returns how many entries the job stream holds: jobs waiting plus running (the
// gauge tickstash_analysis_queue_length). Acknowledged entries are deleted, so 0 means
// every job enqueued so far was settled (or waits in the delayed set for a retry).
func (q *Queue) Length(ctx context.Context) (int64, error) {
	n, err := q.rdb.XLen(ctx, q.keys.stream()).Result()
	if err != nil {
		return 0, fmt.Errorf("analysis: queue length: %w", err)
	}
	return n, nil
}

// Status returns the state of job id. It returns an error wrapping ErrJobNotFound if the
// queue has no record of it (never enqueued, or expired after QueueConfig.JobTTL).
func (q *Queue) Status(ctx context.Context, id string) (JobStatus, error) {
	if id == "" || strings.ContainsAny(id, "{}: ") {
		return JobStatus{}, fmt.Errorf("%w: %q", ErrJobNotFound, id)
	}
	h, err := q.rdb.HGetAll(ctx, q.keys.job(id)).Result()
	if err != nil {
		return JobStatus{}, fmt.Errorf("analysis: status of job %s: %w", id, err)
	}
	if len(h) == 0 {
		return JobStatus{}, fmt.Errorf("%w: %s", ErrJobNotFound, id)
	}
	st := JobStatus{
		ID:           id,
		Spec:         specFromFields(h),
		State:        JobState(h["st"]),
		Attempts:     atoi(h["att"]),
		Error:        h["err"],
		RerunPending: h["rerun"] == "1",
		EnqueuedAt:   msTime(h["enq"]),
		UpdatedAt:    msTime(h["upd"]),
		FinishedAt:   msTime(h["fin"]),
	}
	if st.UpdatedAt.IsZero() {
		st.UpdatedAt = st.EnqueuedAt // not changed since it was enqueued
	}
	if st.State == JobQueued {
		st.RetryAt = msTime(h["due"])
		if !st.RetryAt.IsZero() {
			if _, err := q.rdb.ZScore(ctx, q.keys.delayed(), id).Result(); err != nil {
				st.RetryAt = time.Time{} // already promoted
			}
		}
	}
	return st, nil
}

// specFromFields decodes a job's spec from hash or stream fields, leniently: a field
// that does not parse stays zero.
func specFromFields(h map[string]string) JobSpec {
	s := JobSpec{Exchange: market.Exchange(h["ex"]), Symbol: market.Symbol(h["sym"]), Analyzer: h["an"]}
	if iv, err := market.ParseInterval(h["iv"]); err == nil {
		s.Interval = iv
	}
	s.Watermark = msTime(h["wm"])
	return s
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// msTime parses Unix milliseconds; "", "0" and junk give the zero time.
func msTime(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// Dead returns up to n entries of the dead-letter stream, newest first.
func (q *Queue) Dead(ctx context.Context, n int) ([]DeadJob, error) {
	if n <= 0 {
		return nil, fmt.Errorf("analysis: dead jobs: n must be positive, got %d", n)
	}
	msgs, err := q.rdb.XRevRangeN(ctx, q.keys.dead(), "+", "-", int64(n)).Result()
	if err != nil {
		return nil, fmt.Errorf("analysis: dead jobs: %w", err)
	}
	out := make([]DeadJob, 0, len(msgs))
	for _, m := range msgs {
		h := make(map[string]string, len(m.Values))
		for k, v := range m.Values {
			h[k], _ = v.(string)
		}
		out = append(out, DeadJob{ID: h["j"], Spec: specFromFields(h), Error: h["e"],
			Attempts: atoi(h["att"]), At: msTime(h["at"]), Raw: h["raw"]})
	}
	return out, nil
}

// Retry requeues dead job id with its delivery count reset and removes it from the
// dead-letter stream. It returns an error wrapping ErrJobNotFound if the job's record is
// gone (after QueueConfig.DeadTTL, or a malformed entry that never had one),
// ErrJobNotDead if the job is not dead, and ErrQueueFull at the queue's bound.
func (q *Queue) Retry(ctx context.Context, id string) error {
	if id == "" || strings.ContainsAny(id, "{}: ") {
		return fmt.Errorf("%w: %q", ErrJobNotFound, id)
	}
	res, err := retryScript.Run(ctx, q.rdb,
		[]string{q.keys.stream(), q.keys.delayed(), q.keys.dead(), q.keys.job(id)},
		id, q.nowMs(), secs(q.cfg.JobTTL), q.cfg.MaxLen, q.streamMaxLen()).Text()
	if err != nil {
		return fmt.Errorf("analysis: retry job %s: %w", id, err)
	}
	switch res {
	case "ok":
		return nil
	case "missing":
		return fmt.Errorf("%w: %s", ErrJobNotFound, id)
	case "notdead":
		return fmt.Errorf("%w: %s", ErrJobNotDead, id)
	case "full":
		q.m.rejected.Inc()
		return fmt.Errorf("%w: retry job %s", ErrQueueFull, id)
	}
	return fmt.Errorf("analysis: retry job %s: unexpected reply %q", id, res)
}

// ensureGroup creates the consumer group (and the stream) if it does not exist. It
// reads from the start of the stream, so jobs enqueued before any worker ran are seen.
func (q *Queue) ensureGroup(ctx context.Context) error {
	err := q.rdb.XGroupCreateMkStream(ctx, q.keys.stream(), q.cfg.Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("analysis: create consumer group: %w", err)
	}
	return nil
}

func isNoGroup(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "NOGROUP") }

// delivery is one job a worker holds under a fencing token.
type delivery struct {
	id, entry string
	token     string
	spec      JobSpec
	attempt   int
	reclaimed bool
}

// read takes up to count new entries for consumer, blocking up to block, and claims
// them. Malformed entries go to the dead-letter stream.
func (q *Queue) read(ctx context.Context, consumer string, count int, block time.Duration) ([]delivery, error) {
	streams, err := q.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: q.cfg.Group, Consumer: consumer, Streams: []string{q.keys.stream(), ">"},
		Count: int64(count), Block: block,
	}).Result()
	if isNoGroup(err) {
		// Redis lost the group (restarted without persistence, or keys deleted).
		if err := q.ensureGroup(ctx); err != nil {
			return nil, err
		}
		return nil, nil
	}
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("analysis: read jobs: %w", err)
	}
	var msgs []redis.XMessage
	for _, s := range streams {
		msgs = append(msgs, s.Messages...)
	}
	return q.claim(ctx, consumer, msgs, false)
}

// reclaim takes over up to count deliveries whose lease expired (their worker died or
// stalled) and claims them for consumer. Entries trimmed from the stream while pending
// are counted and dropped from the group.
func (q *Queue) reclaim(ctx context.Context, consumer string, count int) ([]delivery, error) {
	_, ds, err := q.housekeep(ctx, consumer, count, 0)
	return ds, err
}

// promote moves up to limit due retries to the stream.
func (q *Queue) promote(ctx context.Context, limit int) (int, error) {
	n, _, err := q.housekeep(ctx, "", 0, limit)
	return n, err
}

// housekeep moves up to promote due retries to the stream and takes over up to reclaim
// deliveries whose lease expired, claiming them for consumer, in one script call (see
// queue_housekeep.lua). It returns the number of retries moved and the deliveries to run.
// A missing consumer group is created.
func (q *Queue) housekeep(ctx context.Context, consumer string, reclaim, promote int) (int, []delivery, error) {
	res, err := housekeepScript.Run(ctx, q.rdb,
		[]string{q.keys.stream(), q.keys.delayed(), q.keys.dead(), q.keys.fence()},
		q.cfg.Group, q.nowMs(), consumer, q.cfg.Lease.Milliseconds(), max(reclaim, 0), max(promote, 0),
		q.cfg.MaxDeliveries, secs(q.cfg.JobTTL), secs(q.cfg.DeadTTL), q.cfg.DeadMaxLen, q.streamMaxLen(),
		q.keys.jobPrefix()).Slice()
	if err == nil && len(res) != 5 {
		err = fmt.Errorf("unexpected reply %v", res)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("analysis: promote retries and reclaim expired leases: %w", err)
	}
	if toInt(res[4]) == 1 {
		return int(toInt(res[0])), nil, q.ensureGroup(ctx)
	}
	if n := toInt(res[2]); n > 0 {
		q.m.trimmed.Add(float64(n))
	}
	if n := toInt(res[1]); n > 0 {
		q.m.reclaimed.Add(float64(n))
	}
	claimed, _ := res[3].([]any)
	ds, err := q.claimed(claimed, true)
	return int(toInt(res[0])), ds, err
}

// claim runs the claim script on msgs and returns the deliveries to run.
func (q *Queue) claim(ctx context.Context, consumer string, msgs []redis.XMessage, reclaimed bool) ([]delivery, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	keys := []string{q.keys.stream(), q.keys.dead(), q.keys.fence()}
	args := []any{q.cfg.Group, q.nowMs(), consumer, q.cfg.MaxDeliveries, secs(q.cfg.JobTTL), secs(q.cfg.DeadTTL), q.cfg.DeadMaxLen}
	var ids []string
	for _, m := range msgs {
		id, _ := m.Values["j"].(string)
		if id == "" || len(m.Values) != 1 || strings.ContainsAny(id, "{}: ") {
			if err := q.deadLetter(ctx, m, "analysis: malformed job entry: want one field j=<job id>"); err != nil {
				return nil, err
			}
			continue
		}
		keys = append(keys, q.keys.job(id))
		args = append(args, m.ID, id)
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	res, err := claimScript.Run(ctx, q.rdb, keys, args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("analysis: claim jobs: %w", err)
	}
	return q.claimed(res, reclaimed)
}

// claimed turns the claim step's reply (see queue_claimlib.lua) into the deliveries to
// run, counting the entries it dead-lettered.
func (q *Queue) claimed(res []any, reclaimed bool) ([]delivery, error) {
	out := make([]delivery, 0, len(res))
	for _, r := range res {
		f, _ := r.([]any)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "ok":
			if len(f) != 10 {
				return out, fmt.Errorf("analysis: claim jobs: unexpected reply %v", f)
			}
			d := delivery{entry: str(f[1]), id: str(f[2]), token: str(f[3]), reclaimed: reclaimed}
			d.spec = JobSpec{Exchange: market.Exchange(str(f[4])), Symbol: market.Symbol(str(f[5])),
				Analyzer: str(f[7]), Watermark: msTime(str(f[8]))}
			if iv, err := market.ParseInterval(str(f[6])); err == nil {
				d.spec.Interval = iv
			}
			d.attempt = int(toInt(f[9]))
			out = append(out, d)
		case "dead":
			q.m.dead.Inc()
		}
	}
	return out, nil
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return ""
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

// deadLetter moves a malformed stream entry to the dead-letter stream.
func (q *Queue) deadLetter(ctx context.Context, m redis.XMessage, reason string) error {
	fields := make([]string, 0, len(m.Values))
	for k, v := range m.Values {
		fields = append(fields, fmt.Sprintf("%s=%v", k, v))
	}
	sort.Strings(fields)
	err := deadLetterScript.Run(ctx, q.rdb, []string{q.keys.stream(), q.keys.dead()},
		q.cfg.Group, m.ID, reason, strings.Join(fields, " "), q.nowMs(), q.cfg.DeadMaxLen).Err()
	if err != nil {
		return fmt.Errorf("analysis: dead-letter entry %s: %w", m.ID, err)
	}
	q.m.dead.Inc()
	return nil
}

// outcome is how a delivery ended.
type outcome string

const (
	outDone    outcome = "done"
	outFailed  outcome = "failed"
	outRetry   outcome = "retry"
	outDead    outcome = "dead"
	outRelease outcome = "release"
)

// settlement is a finished delivery to record.
type settlement struct {
	d   *delivery
	out outcome
	err string
}

// backoff is the delay before retry number attempt (1 for the first retry). It has no
// jitter: the retry schedule is part of the queue's documented behaviour, and the
// delayed set already spreads retries by their failure times.
func (q *Queue) backoff(attempt int) time.Duration {
	return backoff.Policy{Min: q.cfg.BackoffBase, Max: q.cfg.BackoffMax}.Ceiling(attempt - 1)
}

// complete records settlements in one script call. applied[i] is false when delivery i
// had lost its lease, so nothing was changed for it.
func (q *Queue) complete(ctx context.Context, ss []settlement) (applied []bool, err error) {
	applied, _, err = q.completeAndRead(ctx, "", ss, 0)
	return applied, err
}

// completeAndRead records settlements and then, in the same script call, reads up to
// count new entries for consumer and claims them, as read does without blocking. It
// saves a busy worker a round trip and a script call per batch. applied[i] is false when
// delivery i had lost its lease, so nothing was changed for it. Malformed entries read
// go to the dead-letter stream; a missing consumer group reads nothing.
func (q *Queue) completeAndRead(ctx context.Context, consumer string, ss []settlement, count int) (applied []bool, ds []delivery, err error) {
	if len(ss) == 0 && count <= 0 {
		return nil, nil, nil
	}
	now := q.cfg.Now()
	keys := []string{q.keys.stream(), q.keys.delayed(), q.keys.dead(), q.keys.fence()}
	args := make([]any, 0, 10+6*len(ss))
	args = append(args, q.cfg.Group, now.UnixMilli(), secs(q.cfg.JobTTL), secs(q.cfg.DeadTTL), q.cfg.DeadMaxLen,
		q.streamMaxLen(), consumer, max(count, 0), q.cfg.MaxDeliveries, q.keys.jobPrefix())
	for _, s := range ss {
		var due int64
		if s.out == outRetry {
			due = now.Add(q.backoff(s.d.attempt)).UnixMilli()
		}
		args = append(args, s.d.id, s.d.entry, s.d.token, string(s.out), due, s.err)
	}
	res, err := completeScript.Run(ctx, q.rdb, keys, args...).Slice()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("unexpected reply %v", res)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("analysis: complete %d jobs: %w", len(ss), err)
	}
	settled, _ := res[0].([]any)
	if len(settled) != len(ss) {
		return nil, nil, fmt.Errorf("analysis: complete %d jobs: unexpected reply %v", len(ss), res[0])
	}
	applied = make([]bool, len(ss))
	for i, r := range settled {
		n := toInt(r)
		applied[i] = n > 0
		if n == 0 {
			continue
		}
		switch ss[i].out {
		case outRetry:
			q.m.retries.Inc()
		case outDead:
			q.m.dead.Inc()
		}
	}
	claimed, _ := res[1].([]any)
	ds, err = q.claimed(claimed, false)
	if err != nil {
		// The settlements are recorded; the deliveries not returned are reclaimed
		// after the lease.
		return applied, ds, err
	}
	return applied, ds, nil
}

// extend resets the idle time of ds for consumer; lost[i] reports a delivery another
// worker holds now.
func (q *Queue) extend(ctx context.Context, consumer string, ds []*delivery) (lost []bool, err error) {
	if len(ds) == 0 {
		return nil, nil
	}
	keys := []string{q.keys.stream()}
	args := []any{q.cfg.Group, consumer}
	for _, d := range ds {
		keys = append(keys, q.keys.job(d.id))
		args = append(args, d.entry, d.token)
	}
	res, err := extendScript.Run(ctx, q.rdb, keys, args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("analysis: extend %d leases: %w", len(ds), err)
	}
	lost = make([]bool, len(ds))
	for i, r := range res {
		lost[i] = r == 0
	}
	return lost, nil
}
