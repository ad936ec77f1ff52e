package leaderboard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/internal/redistest"
)

// clock is a settable clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func newStore(t testing.TB, cfg Config) (*Store, redis.UniversalClient, *clock) {
	t.Helper()
	rdb := redistest.Client(t)
	return newStoreOn(t, rdb, cfg)
}

func newStoreOn(t testing.TB, rdb redis.UniversalClient, cfg Config) (*Store, redis.UniversalClient, *clock) {
	t.Helper()
	cfg.Prefix = redistest.Prefix(t, rdb)
	clk := &clock{t: time.Date(2026, 1, 7, 12, 0, 0, 0, time.UTC)} // a Wednesday
	if cfg.Now == nil {
		cfg.Now = clk.Now
	}
	s, err := NewStore(rdb, cfg, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return s, rdb, clk
}

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

type line struct {
	Member string
	Value  string
	Rank   int64
}

func lines(es []Entry) []line {
	out := make([]line, len(es))
	for i, e := range es {
		out[i] = line{e.Member, e.Value.String(), e.Rank}
	}
	return out
}

func mustSet(t *testing.T, s *Store, board, member, v string) {
	t.Helper()
	if err := s.Set(context.Background(), board, member, d(v)); err != nil {
		t.Fatal(err)
	}
}

func TestRankingAndTies(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t, Config{Boards: []Board{
		{Name: "ord"},
		{Name: "comp", Ranking: Competition},
		{Name: "dense", Ranking: Dense},
		{Name: "low", Order: LowFirst, Ranking: Competition},
	}})
	// b reaches 20 before c, c before e; d is alone at 30.
	for _, b := range []string{"ord", "comp", "dense", "low"} {
		mustSet(t, s, b, "a", "10")
		mustSet(t, s, b, "b", "20")
		mustSet(t, s, b, "c", "5")
		mustSet(t, s, b, "c", "20")
		mustSet(t, s, b, "d", "30")
		mustSet(t, s, b, "e", "20.000") // equal to 20: trailing zeros do not matter
		mustSet(t, s, b, "b", "20")     // unchanged value keeps b's place
	}
	tests := []struct {
		board string
		want  []line
	}{
		{"ord", []line{{"d", "30", 1}, {"b", "20", 2}, {"c", "20", 3}, {"e", "20", 4}, {"a", "10", 5}}},
		{"comp", []line{{"d", "30", 1}, {"b", "20", 2}, {"c", "20", 2}, {"e", "20", 2}, {"a", "10", 5}}},
		{"dense", []line{{"d", "30", 1}, {"b", "20", 2}, {"c", "20", 2}, {"e", "20", 2}, {"a", "10", 3}}},
		{"low", []line{{"a", "10", 1}, {"b", "20", 2}, {"c", "20", 2}, {"e", "20", 2}, {"d", "30", 5}}},
	}
	for _, tt := range tests {
		t.Run(tt.board, func(t *testing.T) {
			for _, w := range AllWindows {
				top, err := s.Top(ctx, tt.board, w, 10)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, lines(top)); diff != "" {
					t.Fatalf("%s top (-want +got):\n%s", w, diff)
				}
			}
			// Rank and Around agree with Top at every position.
			for i, want := range tt.want {
				got, err := s.Rank(ctx, tt.board, Week, want.Member)
				if err != nil || got.Rank != want.Rank || got.Value.String() != want.Value {
					t.Errorf("rank %s: %+v %v, want %+v", want.Member, got, err, want)
				}
				around, idx, count, err := s.Around(ctx, tt.board, Day, want.Member, 1)
				if err != nil || count != 5 {
					t.Fatalf("around %s: %v, count %d", want.Member, err, count)
				}
				lo, hi := max(0, i-1), min(len(tt.want), i+2)
				if diff := cmp.Diff(tt.want[lo:hi], lines(around)); diff != "" || around[idx].Member != want.Member {
					t.Errorf("around %s (index %d) (-want +got):\n%s", want.Member, idx, diff)
				}
			}
		})
	}

	if p, err := s.Percentile(ctx, "comp", AllTime, "d"); err != nil || p != 100 {
		t.Errorf("percentile of the leader: %v %v", p, err)
	}
	if p, err := s.Percentile(ctx, "comp", AllTime, "a"); err != nil || p != 20 {
		t.Errorf("percentile of the last of 5: %v %v", p, err)
	}
	if p, err := s.Percentile(ctx, "comp", AllTime, "e"); err != nil || p != 80 {
		t.Errorf("percentile of a tie at rank 2 of 5: %v %v", p, err)
	}

	// Remove keeps Dense's distinct values right.
	for _, m := range []string{"b", "c", "e"} {
		if err := s.Remove(ctx, "dense", m); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := s.Rank(ctx, "dense", AllTime, "a"); err != nil || r.Rank != 2 {
		t.Errorf("dense rank of a after the 20s left: %+v %v", r, err)
	}
	if n, err := s.Count(ctx, "dense", Month); err != nil || n != 2 {
		t.Errorf("count %d %v", n, err)
	}
	if _, err := s.Rank(ctx, "dense", AllTime, "b"); !errors.Is(err, ErrNotRanked) {
		t.Errorf("rank of a removed member: %v", err)
	}
	if got, _ := s.Range(ctx, "ord", AllTime, 2, 3); len(got) != 2 || got[0].Member != "b" || got[1].Rank != 3 {
		t.Errorf("range 2..3: %+v", got)
	}
}

func TestExactLargeValues(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t, Config{Boards: []Board{{Name: "big", Ranking: Competition}}})
	// All four are the same float64 (1.2345678901234567e19); only the decimals differ.
	vals := map[string]string{
		"x": "12345678901234567890.123456788",
		"y": "12345678901234567890.123456789",
		"z": "12345678901234567890.1234567885",
		"w": "12345678901234567891",
	}
	for _, m := range []string{"w", "y", "z", "x"} {
		mustSet(t, s, "big", m, vals[m])
	}
	top, err := s.Top(ctx, "big", AllTime, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []line{{"w", vals["w"], 1}, {"y", vals["y"], 2}, {"z", vals["z"], 3}, {"x", vals["x"], 4}}
	if diff := cmp.Diff(want, lines(top)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	// Exact increments: 0.000000001 a thousand times moves x past y by exactly 1e-6.
	// Two stores stand for two processes: their compare-and-sets race in Redis.
	other, err := NewStore(s.rdb, s.cfg, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		st := s
		if g%2 == 1 {
			st = other
		}
		go func() {
			defer wg.Done()
			for i := 0; i < 125; i++ {
				if _, err := st.Increment(ctx, "big", "x", d("0.000000001")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got, err := s.Rank(ctx, "big", Day, "x")
	if err != nil || got.Value.String() != "12345678901234567890.123457788" || got.Rank != 2 {
		t.Fatalf("x after 1000 concurrent increments: %+v %v", got, err)
	}
	if v, err := s.Increment(ctx, "big", "fresh", d("-1e-40")); err != nil || v.String() != "-0.0000000000000000000000000000000000000001" {
		t.Errorf("increment from nothing: %s %v", v, err)
	}
}

func TestSetIfBetter(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t, Config{Boards: []Board{{Name: "hi"}, {Name: "lo", Order: LowFirst}}})
	for _, c := range []struct {
		board, v string
		changed  bool
		now      string
	}{
		{"hi", "5", true, "5"}, {"hi", "4.9", false, "5"}, {"hi", "5.00", false, "5"}, {"hi", "5.01", true, "5.01"},
		{"lo", "5", true, "5"}, {"lo", "5.1", false, "5"}, {"lo", "-1", true, "-1"},
	} {
		changed, err := s.SetIfBetter(ctx, c.board, "m", d(c.v))
		if err != nil || changed != c.changed {
			t.Errorf("%s %s: changed %v %v, want %v", c.board, c.v, changed, err, c.changed)
		}
		if e, err := s.Rank(ctx, c.board, AllTime, "m"); err != nil || e.Value.String() != c.now {
			t.Errorf("%s after %s: %+v %v, want %s", c.board, c.v, e, err, c.now)
		}
	}
}

func TestWindowsAndExpiry(t *testing.T) {
	ctx := context.Background()
	s, rdb, clk := newStore(t, Config{Retention: 48 * time.Hour, Boards: []Board{{Name: "pnl"}}})
	if _, err := s.Increment(ctx, "pnl", "u", d("1")); err != nil { // Wednesday 2026-01-07
		t.Fatal(err)
	}
	clk.Set(time.Date(2026, 1, 8, 0, 0, 0, 0, time.UTC)) // Thursday: a new day, same week and month
	if _, err := s.Increment(ctx, "pnl", "u", d("2")); err != nil {
		t.Fatal(err)
	}
	clk.Set(time.Date(2026, 2, 1, 23, 59, 0, 0, time.UTC)) // Sunday: new month, still week of Jan 26
	if _, err := s.Increment(ctx, "pnl", "u", d("4")); err != nil {
		t.Fatal(err)
	}
	clk.Set(time.Date(2026, 2, 2, 0, 0, 0, 0, time.UTC)) // Monday: new week
	if _, err := s.Increment(ctx, "pnl", "u", d("8")); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"all": "15", "day:2026-01-07": "1", "day:2026-01-08": "2", "day:2026-02-01": "4", "day:2026-02-02": "8",
		"week:2026-01-05": "3", "week:2026-01-26": "4", "week:2026-02-02": "8", "month:2026-01": "3", "month:2026-02": "12",
	}
	for k, v := range want {
		raw, err := rdb.HGet(ctx, s.keys.board("pnl")+k+":h", "u").Result()
		if err != nil {
			t.Errorf("%s: %v", k, err)
			continue
		}
		if _, got, _ := parseHashValue(raw); got.String() != v {
			t.Errorf("%s: %s, want %s", k, got, v)
		}
	}
	// TTLs: period end + retention, measured on the injected clock.
	now := clk.Now()
	for k, end := range map[string]time.Time{
		"day:2026-02-02":  time.Date(2026, 2, 3, 0, 0, 0, 0, time.UTC),
		"week:2026-02-02": time.Date(2026, 2, 9, 0, 0, 0, 0, time.UTC),
		"month:2026-02":   time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
	} {
		ttl := rdb.PTTL(ctx, s.keys.board("pnl")+k+":z").Val()
		if want := end.Add(48 * time.Hour).Sub(now); ttl > want || ttl < want-time.Minute {
			t.Errorf("%s: TTL %v, want %v", k, ttl, want)
		}
	}
	if ttl := rdb.PTTL(ctx, s.keys.board("pnl")+"all:z").Val(); ttl < 399*24*time.Hour {
		t.Errorf("all-time TTL %v", ttl)
	}
	// Reads follow the clock: today is Monday 2026-02-02.
	if top, _ := s.Top(ctx, "pnl", Month, 1); len(top) != 1 || top[0].Value.String() != "12" {
		t.Errorf("month top: %+v", top)
	}

	// A period written just before its end with a tiny retention really expires.
	s2, rdb2, clk2 := newStore(t, Config{Retention: 50 * time.Millisecond, Boards: []Board{{Name: "short", Windows: []Window{Day}}}})
	clk2.Set(time.Date(2026, 1, 7, 23, 59, 59, 950_000_000, time.UTC))
	mustSet(t, s2, "short", "u", "1")
	if n, _ := s2.Count(ctx, "short", Day); n != 1 {
		t.Fatalf("count %d before expiry", n)
	}
	time.Sleep(250 * time.Millisecond)
	if n, _ := rdb2.Exists(ctx, s2.keys.board("short")+"day:2026-01-07:z", s2.keys.board("short")+"day:2026-01-07:h").Result(); n != 0 {
		t.Errorf("%d day keys left after period end + retention", n)
	}
	if _, err := s2.Top(ctx, "short", Week, 1); !errors.Is(err, ErrNoWindow) {
		t.Errorf("week of a day-only board: %v", err)
	}
}

func TestBadInputWritesNothing(t *testing.T) {
	ctx := context.Background()
	s, rdb, _ := newStore(t, Config{Boards: []Board{{Name: "b"}}})
	checks := []struct {
		name string
		err  error
		do   func() error
	}{
		{"unknown board", ErrUnknownBoard, func() error { return s.Set(ctx, "nope", "m", d("1")) }},
		{"bad board name", ErrInvalidBoard, func() error { return s.Set(ctx, "Bad Name", "m", d("1")) }},
		{"empty member", ErrInvalidMember, func() error { return s.Set(ctx, "b", "", d("1")) }},
		{"control char", ErrInvalidMember, func() error { return s.Set(ctx, "b", "a\nb", d("1")) }},
		{"too precise", ErrInvalidValue, func() error { return s.Set(ctx, "b", "m", d("0."+strings.Repeat("1", 100))) }},
		{"too large increment", ErrInvalidValue, func() error { _, err := s.Increment(ctx, "b", "m", d("1e2000")); return err }},
		{"unknown board read", ErrUnknownBoard, func() error { _, err := s.Top(ctx, "nope", AllTime, 3); return err }},
	}
	for _, c := range checks {
		if err := c.do(); !errors.Is(err, c.err) {
			t.Errorf("%s: %v, want %v", c.name, err, c.err)
		}
	}
	if keys := redistest.Keys(t, rdb, s.keys.prefix+"*"); len(keys) != 0 {
		t.Errorf("keys written by bad input: %v", keys)
	}
	if _, err := NewStore(rdb, Config{Boards: []Board{{Name: "x", Windows: []Window{Day, Day}}}}, prometheus.NewRegistry()); !errors.Is(err, ErrInvalidBoard) {
		t.Errorf("repeated window: %v", err)
	}
}

func TestMaxMembersAndDedup(t *testing.T) {
	ctx := context.Background()
	s, rdb, _ := newStore(t, Config{Boards: []Board{{Name: "cap", MaxMembers: 3, Ranking: Dense, Windows: []Window{AllTime}}}})
	for i, v := range []string{"5", "1", "7", "3", "9"} {
		mustSet(t, s, "cap", fmt.Sprintf("m%d", i), v)
	}
	top, _ := s.Top(ctx, "cap", AllTime, 10)
	if diff := cmp.Diff([]line{{"m4", "9", 1}, {"m2", "7", 2}, {"m0", "5", 3}}, lines(top)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if n := rdb.HLen(ctx, s.keys.board("cap")+"all:h").Val(); n != 3 {
		t.Errorf("hash holds %d members, want 3", n)
	}
	if n := rdb.ZCard(ctx, s.keys.board("cap")+"all:d").Val(); n != 3 {
		t.Errorf("distinct values %d, want 3", n)
	}

	for i := 0; i < 3; i++ {
		applied, err := s.ReportPnL(ctx, "alice", "trade-1", d("10.5"))
		if err != nil || applied != (i == 0) {
			t.Fatalf("report %d: applied %v %v", i, applied, err)
		}
	}
	if e, err := s.Rank(ctx, BoardTraderPnL, Week, "alice"); err != nil || e.Value.String() != "10.5" {
		t.Errorf("alice: %+v %v", e, err)
	}
}

func TestClusterNoCrossSlot(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	url := redistest.StartCluster(t)
	t.Setenv("TICKSTASH_TEST_REDIS_URL", url)
	rdb := redistest.Client(t)
	ctx := context.Background()
	s, _, _ := newStoreOn(t, rdb, Config{Boards: []Board{{Name: "dense", Ranking: Dense}}})
	for i := 0; i < 20; i++ {
		for _, b := range []string{"dense", BoardTraderPnL, BoardGainers} {
			if _, err := s.Increment(ctx, b, fmt.Sprintf("m%d", i%7), decimal.NewFromInt(int64(i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := s.ReportPnL(ctx, "bob", "r1", d("1")); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"dense", BoardTraderPnL, BoardGainers} {
		if _, err := s.Top(ctx, b, Day, 5); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Rank(ctx, b, AllTime, "m3"); err != nil {
			t.Fatal(err)
		}
		if err := s.Remove(ctx, b, "m3"); err != nil {
			t.Fatal(err)
		}
	}
	tr := NewStrategyTracker(s, StrategyConfig{})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := tr.RecordSignal(ctx, "rsi", "binance", "BTC-USDT", 1, d("100"), t0); err != nil {
		t.Fatal(err)
	}
	if closed, err := tr.RecordSignal(ctx, "rsi", "binance", "BTC-USDT", 2, d("110"), t0.Add(time.Minute)); err != nil || !closed {
		t.Fatal(closed, err)
	}
}

// Competition ranks where a better value shares the tie group's float64 score: the rank
// of each tied member is found past the better one, from Rank, Top and IncrementAndRank,
// on high-first and low-first boards.
func TestCompetitionRankPastFloatCollision(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t, Config{Boards: []Board{
		{Name: "hi", Ranking: Competition},
		{Name: "lo", Order: LowFirst, Ranking: Competition},
	}})
	// One float64 (1.2345678901234567e19) for all: "a" is better by 1e-9 on "hi", worse
	// on "lo"; b, c and d tie.
	const tie, above = "12345678901234567890.123456789", "12345678901234567890.123456790"
	for _, board := range []string{"hi", "lo"} {
		mustSet(t, s, board, "a", above)
		for _, m := range []string{"b", "c", "d"} {
			mustSet(t, s, board, m, tie)
		}
	}
	tests := []struct {
		board string
		want  map[string]int64
	}{
		{"hi", map[string]int64{"a": 1, "b": 2, "c": 2, "d": 2}},
		{"lo", map[string]int64{"b": 1, "c": 1, "d": 1, "a": 4}},
	}
	for _, tt := range tests {
		top, err := s.Top(ctx, tt.board, AllTime, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range top {
			if e.Rank != tt.want[e.Member] {
				t.Errorf("%s Top: %s ranks %d, want %d", tt.board, e.Member, e.Rank, tt.want[e.Member])
			}
		}
		for m, want := range tt.want {
			e, err := s.Rank(ctx, tt.board, AllTime, m)
			if err != nil || e.Rank != want {
				t.Errorf("%s Rank(%s) = %d, %v; want %d", tt.board, m, e.Rank, err, want)
			}
		}
		// Adding zero keeps each value, and the rank read in the same script.
		for m, want := range tt.want {
			e, err := s.IncrementAndRank(ctx, tt.board, AllTime, m, d("0"))
			if err != nil || e.Rank != want {
				t.Errorf("%s IncrementAndRank(%s, 0) = %d, %v; want %d", tt.board, m, e.Rank, err, want)
			}
		}
	}
}
