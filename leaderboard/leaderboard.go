package leaderboard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
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
	// ErrContended: a StrategyTracker update lost its optimistic transaction too many
	// times in a row. (Increment is atomic and never returns it.)
	ErrContended = errors.New("leaderboard: too much contention on the member")
)

// Config configures a Store. Every zero value means the documented default.
type Config struct {
	// Prefix starts every key; "" means DefaultPrefix ("ts").
	Prefix string
	// Retention is how long a day, week or month period is kept after it ends: its keys
	// expire at period end + Retention. 0 means 7 days.
	Retention time.Duration
	// AllTimeTTL is the TTL of all-time keys, refreshed by writes (by the first write of
	// a board in each minute, on the Store's clock, and whenever a key is created): a
	// board nobody writes to for that long disappears. 0 means 400 days.
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

	mu     sync.RWMutex
	boards map[string]*boardState

	ops       *prometheus.CounterVec
	conflicts prometheus.Counter
	seconds   *prometheus.HistogramVec
}

// boardState is a defined board with the keys of its current periods, built once a day
// rather than on every call.
type boardState struct {
	Board
	order, ranking string // as the scripts take them
	batch          writeBatcher
	periods        atomic.Pointer[periodKeys]
	// refreshed is when (Unix ns, the Store's clock) a write.lua call last set every
	// window's TTL.
	refreshed atomic.Int64
}

// ttlRefreshEvery is how often a board's writes refresh the TTLs of keys that exist
// (all-time keys expire AllTimeTTL after the last refresh; a period's TTL is an absolute
// end, the same whenever it is set).
const ttlRefreshEvery = time.Minute

// refreshTTL reports whether a write.lua call at now should set the TTL of every window
// its first write writes: the first call in ttlRefreshEvery, or one on a clock set back.
func (st *boardState) refreshTTL(now time.Time) bool {
	last, n := st.refreshed.Load(), now.UnixNano()
	if d := n - last; d >= 0 && d < int64(ttlRefreshEvery) {
		return false
	}
	return st.refreshed.CompareAndSwap(last, n)
}

// periodKeys are the keys of a board's windows for the periods that contain one UTC day.
type periodKeys struct {
	day  time.Time  // 00:00 UTC of the day
	keys []string   // arrival counter, then z, h, d, c per window (write.lua's KEYS)
	wins []windowAt // the board's windows, all-time first
}

type windowAt struct {
	w    Window
	keys windowKeys
	end  time.Time // end of the current period; zero for AllTime
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
		rdb: rdb, keys: keyspace{prefix: cfg.Prefix}, cfg: cfg, boards: map[string]*boardState{},
		ops: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_leaderboard_operations_total",
			Help: "Leaderboard operations by kind (set, set_if_better, increment, remove, read) and outcome (ok, error, duplicate).",
		}, []string{"op", "outcome"}),
		// Increments add in one script since they stopped being a read and a
		// compare-and-set, so this stays 0; dashboards still chart it.
		conflicts: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_leaderboard_increment_conflicts_total",
			Help: "Increments retried because another writer changed the member between read and write (0 since increments are atomic).",
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
	st := &boardState{Board: b, order: "d", ranking: "o"}
	if b.Order == LowFirst {
		st.order = "a"
	}
	switch b.Ranking {
	case Competition:
		st.ranking = "c"
	case Dense:
		st.ranking = "d"
	}
	s.mu.Lock()
	s.boards[b.Name] = st
	s.mu.Unlock()
	return nil
}

// Board returns the definition of a board, or an error wrapping ErrUnknownBoard.
func (s *Store) Board(name string) (Board, error) {
	st, err := s.board(name)
	if err != nil {
		return Board{}, err
	}
	b := st.Board
	b.Windows = append([]Window(nil), b.Windows...)
	return b, nil
}

func (s *Store) board(name string) (*boardState, error) {
	s.mu.RLock()
	st, ok := s.boards[name]
	s.mu.RUnlock()
	if !ok {
		if err := ValidateBoardName(name); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %q", ErrUnknownBoard, name)
	}
	return st, nil
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

// observe records one operation; call it deferred in a closure so that it sees the
// error the operation returns.
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
	defer func(start time.Time) { s.observe("set", start, err) }(time.Now())
	_, err = s.write(ctx, writeReq{mode: "s", board: board, member: member, value: v})
	return err
}

// SetIfBetter sets member's value on each window where it beats the current one (or
// there is none): higher on HighFirst boards, lower on LowFirst boards. It reports
// whether any window changed. Errors as Set.
func (s *Store) SetIfBetter(ctx context.Context, board, member string, v decimal.Decimal) (changed bool, err error) {
	defer func(start time.Time) { s.observe("set_if_better", start, err) }(time.Now())
	r, err := s.write(ctx, writeReq{mode: "b", board: board, member: member, value: v})
	return r.changed > 0, err
}

// Increment adds delta to member's value on every window (a missing value counts as
// zero) and returns the new all-time value (or, on a board without an all-time window,
// that of its first window). It is exact and atomic: one script reads, adds the decimals
// digit by digit and writes every window, so concurrent increments neither conflict nor
// retry. It returns an error wrapping ErrInvalidValue, with nothing written, when a sum
// would be outside MaxDigits / MaxExponent; other errors as Set.
func (s *Store) Increment(ctx context.Context, board, member string, delta decimal.Decimal) (v decimal.Decimal, err error) {
	defer func(start time.Time) { s.observe("increment", start, err) }(time.Now())
	r, err := s.write(ctx, writeReq{mode: "i", board: board, member: member, value: delta})
	if err != nil {
		return decimal.Decimal{}, err
	}
	return parseValue(r.value)
}

// IncrementAndRank is Increment followed by Rank in window w, in one script: one round
// trip, and the rank is the one the increment produced. It returns an error wrapping
// ErrNoWindow, with nothing written, when the board does not keep w, and one wrapping
// ErrNotRanked, with the increment done, when the member was dropped past the board's
// MaxMembers. Other errors as Increment.
func (s *Store) IncrementAndRank(ctx context.Context, board string, w Window, member string, delta decimal.Decimal) (e Entry, err error) {
	defer func(start time.Time) { s.observe("increment", start, err) }(time.Now())
	r, err := s.write(ctx, writeReq{mode: "i", board: board, member: member, value: delta, rank: w, ranked: true})
	if err != nil {
		return Entry{}, err
	}
	if r.rank == 0 {
		return Entry{}, fmt.Errorf("%w: %s %s %s", ErrNotRanked, board, w, member)
	}
	v, err := parseValue(r.rankValue)
	if err != nil {
		return Entry{}, err
	}
	return Entry{Member: member, Value: v, Rank: r.rank}, nil
}

// ReportPnL adds a realized PnL to user's line on the traders.pnl board, at most once per
// reportID (a retry of the same report is a no-op for Config.DedupTTL); reportID ""
// disables the check. It reports whether the report was applied.
func (s *Store) ReportPnL(ctx context.Context, user, reportID string, pnl decimal.Decimal) (applied bool, err error) {
	defer func(start time.Time) { s.observe("increment", start, err) }(time.Now())
	if reportID != "" {
		if err := ValidateMember(reportID); err != nil {
			return false, fmt.Errorf("leaderboard: report id: %w", err)
		}
	}
	_, err = s.write(ctx, writeReq{mode: "i", board: BoardTraderPnL, member: user, value: pnl, dedup: reportID})
	if errors.Is(err, errDuplicate) {
		return false, nil
	}
	return err == nil, err
}

var errDuplicate = errors.New("leaderboard: duplicate report")

func parseValue(s string) (decimal.Decimal, error) {
	v, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, fmt.Errorf("leaderboard: corrupt value %q from the write script: %w", s, err)
	}
	return v, nil
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

// periodsAt returns the keys of the board's periods that contain now, built at most
// once per board and day.
func (s *Store) periodsAt(st *boardState, now time.Time) *periodKeys {
	u := now.UTC()
	day := time.Date(u.Year(), u.Month(), u.Day(), 0, 0, 0, 0, time.UTC)
	if p := st.periods.Load(); p != nil && p.day.Equal(day) {
		return p
	}
	p := &periodKeys{day: day, wins: make([]windowAt, 0, len(st.Windows))}
	seq := s.keys.seq(st.Name)
	p.keys = append(make([]string, 0, 1+4*len(st.Windows)), seq)
	for _, w := range AllWindows {
		if !st.has(w) {
			continue
		}
		_, end, period := w.bounds(day)
		wk := s.keys.window(st.Name, w, period)
		p.wins = append(p.wins, windowAt{w: w, keys: wk, end: end})
		p.keys = append(p.keys, wk.z, wk.h, wk.d, wk.c)
	}
	st.periods.Store(p)
	return p
}

// ttl returns the TTL of window i's keys written at now: period end + retention, or the
// all-time TTL; at least 1ms.
func (s *Store) ttl(w windowAt, now time.Time) int64 {
	d := s.cfg.AllTimeTTL
	if w.w != AllTime {
		d = w.end.Add(s.cfg.Retention).Sub(now)
	}
	return max(d.Milliseconds(), 1)
}

// writeReq is one write: one item of a write.lua call.
type writeReq struct {
	mode          string // "s" set, "b" set if better, "i" increment
	board, member string
	value         decimal.Decimal // the value, or the delta for "i"
	dedup         string          // report id; "" for none
	rank          Window          // the window to rank in when ranked
	ranked        bool
}

type writeResult struct {
	changed   int64
	value     string // first window's value
	rank      int64  // 0 when not asked for or not ranked
	rankValue string
}

// write runs one write through write.lua, in a batch with the board's concurrent writes
// (batch.go). It validates the board, member, value and window before anything is sent.
func (s *Store) write(ctx context.Context, r writeReq) (writeResult, error) {
	st, w, err := s.prepare(r)
	if err != nil {
		return writeResult{}, err
	}
	if err := s.submit(ctx, st, w); err != nil {
		return writeResult{}, err
	}
	return s.result(w)
}

// prepare validates r and returns its board and the write to send.
func (s *Store) prepare(r writeReq) (*boardState, *pendingWrite, error) {
	st, err := s.board(r.board)
	if err != nil {
		return nil, nil, err
	}
	if err := ValidateMember(r.member); err != nil {
		return nil, nil, err
	}
	enc, _, _, err := encodeValue(r.value)
	if err != nil {
		return nil, nil, fmt.Errorf("leaderboard: %s %s: %w", r.board, r.member, err)
	}
	now := s.cfg.Now()
	p := s.periodsAt(st, now)
	rankAt := 0
	if r.ranked {
		for i, w := range p.wins {
			if w.w == r.rank {
				rankAt = i + 1
			}
		}
		if rankAt == 0 {
			return nil, nil, fmt.Errorf("%w: %s keeps no %s window", ErrNoWindow, r.board, r.rank)
		}
	}
	w := &pendingWrite{req: r, enc: enc, p: p, rankAt: rankAt}
	if r.dedup != "" {
		w.dedupKey = s.keys.dedup(st.Name, r.dedup)
	}
	return st, w, nil
}

// result reads the script's reply to an answered write.
func (s *Store) result(w *pendingWrite) (writeResult, error) {
	r, p, res := w.req, w.p, w.reply
	var status int64
	if len(res) > 0 {
		status, _ = res[0].(int64)
	}
	switch {
	case status == 2:
		s.ops.WithLabelValues("report", "duplicate").Inc()
		return writeResult{}, errDuplicate
	case status == 3 && len(res) == 2:
		i, _ := res[1].(int64)
		win := "?"
		if i >= 1 && int(i) <= len(p.wins) {
			win = p.wins[i-1].w.String()
		}
		return writeResult{}, fmt.Errorf("%w: %s %s: the %s sum would pass %d significant digits or magnitude 10^±%d",
			ErrInvalidValue, r.board, r.member, win, MaxDigits, MaxExponent)
	case status != 1 || len(res) != 5:
		return writeResult{}, fmt.Errorf("leaderboard: %s: write %s: unexpected reply %v", r.board, r.member, res)
	}
	var out writeResult
	out.changed, _ = res[1].(int64)
	out.value, _ = res[2].(string)
	out.rank, _ = res[3].(int64)
	out.rankValue, _ = res[4].(string)
	return out, nil
}

// Remove deletes member from every window of the board (the current period of each;
// past periods expire on their own). Removing a member that is not there is not an error.
func (s *Store) Remove(ctx context.Context, board, member string) (err error) {
	defer func(start time.Time) { s.observe("remove", start, err) }(time.Now())
	st, err := s.board(board)
	if err != nil {
		return err
	}
	if err := ValidateMember(member); err != nil {
		return err
	}
	dense := "0"
	if st.Ranking == Dense {
		dense = "1"
	}
	keys := s.periodsAt(st, s.cfg.Now()).keys[1:]
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
func (s *Store) current(board string, w Window) (*boardState, windowKeys, error) {
	st, err := s.board(board)
	if err != nil {
		return nil, windowKeys{}, err
	}
	for _, wa := range s.periodsAt(st, s.cfg.Now()).wins {
		if wa.w == w {
			return st, wa.keys, nil
		}
	}
	return nil, windowKeys{}, fmt.Errorf("%w: %s keeps no %s window", ErrNoWindow, board, w)
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
	defer func(start time.Time) { s.observe("read", start, err) }(time.Now())
	bd, wk, err := s.current(board, w)
	if err != nil {
		return readResult{}, err
	}
	raw, err := readScript.Run(ctx, s.rdb, []string{wk.z, wk.h, wk.d}, bd.order, bd.ranking, op, a, b).Slice()
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
