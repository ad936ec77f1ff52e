package leaderboard

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"
)

// Errors. Each is wrapped with context; test with errors.Is.
var (
	// ErrUnknownBoard: the board was not defined on this Store.
	ErrUnknownBoard = errors.New("leaderboard: unknown board")
	// ErrInvalidBoard: a board definition or name does not validate.
	ErrInvalidBoard = errors.New("leaderboard: invalid board")
	// ErrInvalidMember: a member name does not validate.
	ErrInvalidMember = errors.New("leaderboard: invalid member")
	// ErrInvalidValue: a value is outside MaxDigits / MaxExponent.
	ErrInvalidValue = errors.New("leaderboard: invalid value")
	// ErrNoWindow: the board does not keep the window asked for.
	ErrNoWindow = errors.New("leaderboard: board does not keep this window")
	// ErrNotRanked: the member has no value in the window.
	ErrNotRanked = errors.New("leaderboard: member not on the board")
	// ErrContended: Increment lost its compare-and-set too many times in a row.
	ErrContended = errors.New("leaderboard: too much contention on the member")
)

// Config configures a Store. Every zero value means the documented default.
type Config struct {
	// Prefix starts every key; "" means DefaultPrefix ("ts").
	Prefix string
	// Retention is how long a day, week or month period is kept after it ends: its keys
	// expire at period end + Retention. 0 means 7 days.
	Retention time.Duration
	// AllTimeTTL is the TTL of all-time keys, refreshed by every write: a board nobody
	// writes to for that long disappears. 0 means 400 days.
	AllTimeTTL time.Duration
	// MaxMembers bounds each window key of a board whose own MaxMembers is 0. 0 means
	// 100 000.
	MaxMembers int
	// DedupTTL is how long ReportPnL remembers a report id. 0 means 7 days.
	DedupTTL time.Duration
	// Boards to define besides the built-in ones (BuiltinBoards), which are always
	// defined. A board here with a built-in's name replaces it.
	Boards []Board
	// Now is the clock that picks the current day, week and month; nil means time.Now.
	Now func() time.Time
}

// Entry is one member's place on a board.
type Entry struct {
	Member string
	// Value is exact: the decimal as written (trailing zeros dropped).
	Value decimal.Decimal
	// Rank is 1-based, by the board's Ranking.
	Rank int64
}

// Store reads and writes boards in Redis. It is safe for concurrent use.
type Store struct {
	rdb  redis.UniversalClient
	keys keyspace
	cfg  Config

	mu      sync.RWMutex
	boards  map[string]Board
	stripes [64]sync.Mutex

	ops       *prometheus.CounterVec
	conflicts prometheus.Counter
	seconds   *prometheus.HistogramVec
}

// NewStore returns a store over rdb with the built-in boards and cfg.Boards defined.
// It returns an error wrapping ErrInvalidBoard if one of cfg.Boards does not validate.
// Its metrics are registered with reg.
func NewStore(rdb redis.UniversalClient, cfg Config, reg prometheus.Registerer) (*Store, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 7 * 24 * time.Hour
	}
	if cfg.AllTimeTTL <= 0 {
		cfg.AllTimeTTL = 400 * 24 * time.Hour
	}
	if cfg.MaxMembers <= 0 {
		cfg.MaxMembers = 100_000
	}
	if cfg.DedupTTL <= 0 {
		cfg.DedupTTL = 7 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	f := promauto.With(reg)
	s := &Store{
		rdb: rdb, keys: keyspace{prefix: cfg.Prefix}, cfg: cfg, boards: map[string]Board{},
		ops: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_leaderboard_operations_total",
			Help: "Leaderboard operations by kind (set, set_if_better, increment, remove, read) and outcome (ok, error, duplicate).",
		}, []string{"op", "outcome"}),
		conflicts: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_leaderboard_increment_conflicts_total",
			Help: "Increments retried because another writer changed the member between read and write.",
		}),
		seconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tickstash_leaderboard_operation_duration_seconds",
			Help:    "Time of one leaderboard operation, Redis round trips included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"op"}),
	}
	for _, b := range append(BuiltinBoards(), cfg.Boards...) {
		if err := s.Define(b); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Define adds or replaces a board definition on this Store (not in Redis: every process
// defines the boards it uses). It returns an error wrapping ErrInvalidBoard if b does not
// validate. Changing a board's Order or Ranking does not rewrite data already stored.
func (s *Store) Define(b Board) error {
	if err := b.validate(); err != nil {
		return err
	}
	if len(b.Windows) == 0 {
		b.Windows = AllWindows
	}
	b.Windows = append([]Window(nil), b.Windows...)
	if b.MaxMembers == 0 {
		b.MaxMembers = s.cfg.MaxMembers
	}
	s.mu.Lock()
	s.boards[b.Name] = b
	s.mu.Unlock()
	return nil
}

// Board returns the definition of a board, or an error wrapping ErrUnknownBoard.
func (s *Store) Board(name string) (Board, error) {
	s.mu.RLock()
	b, ok := s.boards[name]
	s.mu.RUnlock()
	if !ok {
		if err := ValidateBoardName(name); err != nil {
			return Board{}, err
		}
		return Board{}, fmt.Errorf("%w: %q", ErrUnknownBoard, name)
	}
	return b, nil
}

// Boards returns the names of the defined boards.
func (s *Store) Boards() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.boards))
	for n := range s.boards {
		out = append(out, n)
	}
	return out
}

func (s *Store) observe(op string, start time.Time, err error) {
	s.seconds.WithLabelValues(op).Observe(time.Since(start).Seconds())
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	s.ops.WithLabelValues(op, outcome).Inc()
}

// Set sets member's value on every window of the board (each window's current period).
// Setting the value a member already has keeps its place among equal values.
// It returns an error wrapping ErrUnknownBoard, ErrInvalidMember or ErrInvalidValue
// before anything is written.
func (s *Store) Set(ctx context.Context, board, member string, v decimal.Decimal) (err error) {
	defer s.observe("set", time.Now(), err)
	_, err = s.write(ctx, 's', board, member, v, "")
	return err
}

// SetIfBetter sets member's value on each window where it beats the current one (or
// there is none): higher on HighFirst boards, lower on LowFirst boards. It reports
// whether any window changed. Errors as Set.
func (s *Store) SetIfBetter(ctx context.Context, board, member string, v decimal.Decimal) (changed bool, err error) {
	defer s.observe("set_if_better", time.Now(), err)
	n, err := s.write(ctx, 'b', board, member, v, "")
	return n > 0, err
}

// Increment adds delta to member's value on every window (a missing value counts as
// zero) and returns the new all-time value (or, on a board without an all-time window,
// that of its first window). It is exact: a read, then a compare-and-set script, retried
// when another writer got in between; after 64 lost races it returns ErrContended.
// Errors as Set.
func (s *Store) Increment(ctx context.Context, board, member string, delta decimal.Decimal) (decimal.Decimal, error) {
	return s.increment(ctx, board, member, delta, "")
}

// ReportPnL adds a realized PnL to user's line on the traders.pnl board, at most once per
// reportID (a retry of the same report is a no-op for Config.DedupTTL); reportID ""
// disables the check. It reports whether the report was applied.
func (s *Store) ReportPnL(ctx context.Context, user, reportID string, pnl decimal.Decimal) (applied bool, err error) {
	if reportID != "" {
		if err := ValidateMember(reportID); err != nil {
			return false, fmt.Errorf("leaderboard: report id: %w", err)
		}
	}
	_, err = s.increment(ctx, BoardTraderPnL, user, pnl, reportID)
	if errors.Is(err, errDuplicate) {
		return false, nil
	}
	return err == nil, err
}

var errDuplicate = errors.New("leaderboard: duplicate report")

func (s *Store) increment(ctx context.Context, board, member string, delta decimal.Decimal, dedup string) (_ decimal.Decimal, err error) {
	defer s.observe("increment", time.Now(), err)
	b, err := s.Board(board)
	if err != nil {
		return decimal.Decimal{}, err
	}
	if err := ValidateMember(member); err != nil {
		return decimal.Decimal{}, err
	}
	if _, _, _, err := encodeValue(delta); err != nil {
		return decimal.Decimal{}, err
	}
	// Writers in this process take turns per member; other processes lose a
	// compare-and-set now and then and back off.
	mu := &s.stripes[stripe(board, member)]
	mu.Lock()
	defer mu.Unlock()
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return decimal.Decimal{}, err
			}
		}
		now := s.cfg.Now()
		wins := s.windowKeys(&b, now)
		cmds, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, w := range wins {
				p.HGet(ctx, w.keys.h, member)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return decimal.Decimal{}, fmt.Errorf("leaderboard: %s: read %s: %w", board, member, err)
		}
		vals := make([]winValue, len(wins))
		for i, c := range cmds {
			cur := decimal.Zero
			raw, err := c.(*redis.StringCmd).Result()
			if err == nil {
				if vals[i].expect, cur, err = parseHashValue(raw); err != nil {
					return decimal.Decimal{}, err
				}
			}
			vals[i].value = cur.Add(delta)
		}
		_, err = s.script(ctx, 'c', &b, member, wins, vals, dedup)
		switch {
		case errors.Is(err, errConflict):
			s.conflicts.Inc()
			continue
		case err != nil:
			return decimal.Decimal{}, err
		}
		return vals[0].value, nil
	}
	return decimal.Decimal{}, fmt.Errorf("%w: %s %s", ErrContended, board, member)
}

// parseHashValue splits "<enc><arrival> <decimal>" into the encoding and the value.
func parseHashValue(raw string) (enc string, v decimal.Decimal, err error) {
	prefix, dec, ok := strings.Cut(raw, " ")
	n := encLen(prefix)
	if !ok || n < 0 || len(prefix) != n+seqWidth {
		return "", decimal.Decimal{}, fmt.Errorf("leaderboard: corrupt hash value %q", raw)
	}
	if v, err = decimal.NewFromString(dec); err != nil {
		return "", decimal.Decimal{}, fmt.Errorf("leaderboard: corrupt hash value %q: %w", raw, err)
	}
	return prefix[:n], v, nil
}

type windowAt struct {
	w    Window
	keys windowKeys
	ttl  time.Duration
}

// windowKeys lists the board's windows, all-time first, with the keys and TTLs of their
// current periods.
func (s *Store) windowKeys(b *Board, now time.Time) []windowAt {
	out := make([]windowAt, 0, len(b.Windows))
	for _, w := range AllWindows {
		if !b.has(w) {
			continue
		}
		_, end, period := w.bounds(now)
		ttl := s.cfg.AllTimeTTL
		if w != AllTime {
			ttl = end.Add(s.cfg.Retention).Sub(now)
		}
		out = append(out, windowAt{w: w, keys: s.keys.window(b.Name, w, period), ttl: ttl})
	}
	return out
}

type winValue struct {
	value  decimal.Decimal
	expect string
}

var errConflict = errors.New("leaderboard: compare-and-set conflict")

const maxAttempts = 64

func stripe(board, member string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(board))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(member))
	return int(h.Sum32() % 64)
}

// backoff sleeps a random time up to 100µs·2^attempt, at most 20ms.
func backoff(ctx context.Context, attempt int) error {
	limit := min(100*time.Microsecond<<min(attempt, 10), 20*time.Millisecond)
	t := time.NewTimer(rand.N(limit) + 1)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (s *Store) write(ctx context.Context, mode byte, board, member string, v decimal.Decimal, dedup string) (int, error) {
	b, err := s.Board(board)
	if err != nil {
		return 0, err
	}
	if err := ValidateMember(member); err != nil {
		return 0, err
	}
	wins := s.windowKeys(&b, s.cfg.Now())
	vals := make([]winValue, len(wins))
	for i := range vals {
		vals[i].value = v
	}
	return s.script(ctx, mode, &b, member, wins, vals, dedup)
}

// script runs write.lua. It validates every value before anything is sent.
func (s *Store) script(ctx context.Context, mode byte, b *Board, member string, wins []windowAt, vals []winValue, dedup string) (int, error) {
	keys := make([]string, 0, 2+4*len(wins))
	seq := s.keys.seq(b.Name)
	keys = append(keys, seq, seq)
	dedupTTL := int64(0)
	if dedup != "" {
		keys[1] = s.keys.dedup(b.Name, dedup)
		dedupTTL = s.cfg.DedupTTL.Milliseconds()
	}
	order, dense := "d", "0"
	if b.Order == LowFirst {
		order = "a"
	}
	if b.Ranking == Dense {
		dense = "1"
	}
	args := make([]any, 0, 6+5*len(wins))
	args = append(args, string(mode), member, order, dense, b.MaxMembers, dedupTTL)
	for i, w := range wins {
		enc, score, canon, err := encodeValue(vals[i].value)
		if err != nil {
			return 0, fmt.Errorf("leaderboard: %s %s: %w", b.Name, member, err)
		}
		ttl := w.ttl.Milliseconds()
		if ttl < 1 {
			ttl = 1
		}
		keys = append(keys, w.keys.z, w.keys.h, w.keys.d, w.keys.c)
		args = append(args, ttl, enc, strconv.FormatFloat(score, 'g', -1, 64), canon, vals[i].expect)
	}
	res, err := writeScript.Run(ctx, s.rdb, keys, args...).Int64Slice()
	if err != nil {
		return 0, fmt.Errorf("leaderboard: %s: write %s: %w", b.Name, member, err)
	}
	switch res[0] {
	case 0:
		return 0, errConflict
	case 2:
		s.ops.WithLabelValues("report", "duplicate").Inc()
		return 0, errDuplicate
	}
	return int(res[1]), nil
}

// Remove deletes member from every window of the board (the current period of each;
// past periods expire on their own). Removing a member that is not there is not an error.
func (s *Store) Remove(ctx context.Context, board, member string) (err error) {
	defer s.observe("remove", time.Now(), err)
	b, err := s.Board(board)
	if err != nil {
		return err
	}
	if err := ValidateMember(member); err != nil {
		return err
	}
	keys := []string{}
	for _, w := range s.windowKeys(&b, s.cfg.Now()) {
		keys = append(keys, w.keys.z, w.keys.h, w.keys.d, w.keys.c)
	}
	dense := "0"
	if b.Ranking == Dense {
		dense = "1"
	}
	if err := removeScript.Run(ctx, s.rdb, keys, member, dense).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("leaderboard: %s: remove %s: %w", board, member, err)
	}
	return nil
}

// Top returns the first n entries of the board's window (its current period).
// n <= 0 returns none.
func (s *Store) Top(ctx context.Context, board string, w Window, n int) ([]Entry, error) {
	if n <= 0 {
		return nil, nil
	}
	r, err := s.read(ctx, board, w, "r", 0, int64(n-1))
	return r.entries, err
}

// Range returns the entries at 1-based places from..to inclusive (ordinal places: the
// rank of an entry can be smaller under Competition or Dense ranking).
func (s *Store) Range(ctx context.Context, board string, w Window, from, to int64) ([]Entry, error) {
	if from < 1 || to < from {
		return nil, nil
	}
	r, err := s.read(ctx, board, w, "r", from-1, to-1)
	return r.entries, err
}

// Rank returns member's entry, its rank by the board's Ranking. It returns an error
// wrapping ErrNotRanked when the member has no value in the window.
func (s *Store) Rank(ctx context.Context, board string, w Window, member string) (Entry, error) {
	es, idx, _, err := s.Around(ctx, board, w, member, 0)
	if err != nil {
		return Entry{}, err
	}
	return es[idx], nil
}

// Around returns member's entry with up to k entries above and k below it, and the index
// of the member's entry in the slice, and the number of members in the window. It returns
// an error wrapping ErrNotRanked when the member has no value in the window.
func (s *Store) Around(ctx context.Context, board string, w Window, member string, k int) (entries []Entry, index int, count int64, err error) {
	if err := ValidateMember(member); err != nil {
		return nil, 0, 0, err
	}
	if k < 0 {
		k = 0
	}
	r, err := s.read(ctx, board, w, "m", member, k)
	if err != nil {
		return nil, 0, r.count, err
	}
	if r.pos < 0 {
		return nil, 0, r.count, fmt.Errorf("%w: %s %s %s", ErrNotRanked, board, w, member)
	}
	return r.entries, int(r.pos - r.start), r.count, nil
}

// Count returns the number of members in the board's window.
func (s *Store) Count(ctx context.Context, board string, w Window) (int64, error) {
	bd, wk, err := s.current(board, w)
	if err != nil {
		return 0, err
	}
	n, err := s.rdb.ZCard(ctx, wk.z).Result()
	if err != nil {
		return 0, fmt.Errorf("leaderboard: %s: count: %w", bd.Name, err)
	}
	return n, nil
}

// current returns the board and the keys of the current period of its window w.
func (s *Store) current(board string, w Window) (Board, windowKeys, error) {
	bd, err := s.Board(board)
	if err != nil {
		return Board{}, windowKeys{}, err
	}
	if !bd.has(w) {
		return Board{}, windowKeys{}, fmt.Errorf("%w: %s keeps no %s window", ErrNoWindow, board, w)
	}
	_, _, period := w.bounds(s.cfg.Now())
	return bd, s.keys.window(board, w, period), nil
}

// Percentile returns the share of the window's members that member ranks at or ahead
// of, in percent: 100 for the leader, 100/count for the last. Errors as Rank.
func (s *Store) Percentile(ctx context.Context, board string, w Window, member string) (float64, error) {
	es, idx, count, err := s.Around(ctx, board, w, member, 0)
	if err != nil {
		return 0, err
	}
	return 100 * float64(count-es[idx].Rank+1) / float64(count), nil
}

type readResult struct {
	count, start, pos int64
	entries           []Entry
}

func (s *Store) read(ctx context.Context, board string, w Window, op string, a, b any) (_ readResult, err error) {
	defer s.observe("read", time.Now(), err)
	bd, wk, err := s.current(board, w)
	if err != nil {
		return readResult{}, err
	}
	order, ranking := "d", "o"
	if bd.Order == LowFirst {
		order = "a"
	}
	switch bd.Ranking {
	case Competition:
		ranking = "c"
	case Dense:
		ranking = "d"
	}
	raw, err := readScript.Run(ctx, s.rdb, []string{wk.z, wk.h, wk.d}, order, ranking, op, a, b).Slice()
	if err != nil {
		return readResult{}, fmt.Errorf("leaderboard: %s: read: %w", board, err)
	}
	r := readResult{count: raw[0].(int64), start: raw[2].(int64), pos: raw[3].(int64)}
	rank := raw[1].(int64)
	var prevEnc string
	for i, x := range raw[4:] {
		enc, _, member, err := splitZMember(x.(string))
		if err != nil {
			return r, err
		}
		v, err := decodeValue(enc)
		if err != nil {
			return r, err
		}
		if i > 0 {
			switch {
			case bd.Ranking == Ordinal:
				rank++
			case enc == prevEnc:
			case bd.Ranking == Competition:
				rank = r.start + int64(i) + 1
			default:
				rank++
			}
		}
		prevEnc = enc
		r.entries = append(r.entries, Entry{Member: member, Value: v, Rank: rank})
	}
	return r, nil
}
