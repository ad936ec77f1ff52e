package leaderboard

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
	"github.com/tickstash/tickstash/internal/redistest"
)

// stored returns what Redis holds for member in the board's all-time window: the
// canonical decimal of its hash entry and its sorted-set score.
func stored(t *testing.T, s *Store, board, member string) (string, float64) {
	t.Helper()
	ctx := context.Background()
	base := s.keys.board(board) + "all:"
	raw, err := s.rdb.HGet(ctx, base+"h", member).Result()
	if err != nil {
		t.Fatalf("%s: %v", member, err)
	}
	prefix, dec, _ := strings.Cut(raw, " ")
	score, err := s.rdb.ZScore(ctx, base+"z", prefix+member).Result()
	if err != nil {
		t.Fatalf("%s: score: %v", member, err)
	}
	return dec, score
}

// The script adds exactly: random sums of many digits and wide exponents, with signs
// that cancel, match shopspring's, and so do the stored decimal, score and order.
func TestIncrementArithmetic(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t, Config{Boards: []Board{{Name: "sum", Ranking: Competition, Windows: []Window{AllTime, Day}}}})
	rng := rand.New(rand.NewPCG(3, 4))
	want := map[string]decimal.Decimal{}
	for i := range 600 {
		m := fmt.Sprintf("m%d", rng.IntN(12))
		var delta decimal.Decimal
		switch rng.IntN(5) {
		case 0: // cancel exactly
			delta = want[m].Neg()
		case 1: // a long coefficient
			delta = decimal.New(rng.Int64N(2e18)-1e18, int32(rng.IntN(40)-30))
		case 2: // a borrow across many digits
			delta = decimal.New(-1, int32(rng.IntN(20)-25))
		default:
			delta = decimal.New(rng.Int64N(2_000_000)-1_000_000, int32(rng.IntN(12)-6))
		}
		sum := want[m].Add(delta)
		if _, _, _, err := encodeValue(sum); err != nil {
			continue
		}
		got, err := s.Increment(ctx, "sum", m, delta)
		if err != nil {
			t.Fatalf("step %d: %s += %s: %v", i, m, delta, err)
		}
		if !got.Equal(sum) || got.String() != sum.String() {
			t.Fatalf("step %d: %s += %s: got %s, want %s", i, m, delta, got, sum)
		}
		want[m] = sum
	}
	var ordered []line
	for m, v := range want {
		dec, score := stored(t, s, "sum", m)
		_, wantScore, canon, _ := encodeValue(v)
		if dec != canon || score != wantScore {
			t.Errorf("%s: stored %s score %v, want %s score %v", m, dec, score, canon, wantScore)
		}
		ordered = append(ordered, line{Member: m, Value: v.String()})
	}
	top, err := s.Top(ctx, "sum", Day, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(top); i++ {
		if c := top[i-1].Value.Cmp(top[i].Value); c < 0 || (c == 0 && top[i-1].Rank != top[i].Rank) || (c > 0 && top[i].Rank != int64(i+1)) {
			t.Fatalf("out of order at %d: %+v", i, lines(top))
		}
	}
	if len(top) != len(ordered) {
		t.Fatalf("%d on the board, want %d", len(top), len(ordered))
	}
}

// The script's scores (the server's strtod) are the correctly rounded float64 that
// encodeValue computes in Go, also where rounding is hardest, so data written by either
// ranks the same.
func TestScriptScoreMatchesGo(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t, Config{Boards: []Board{{Name: "score", Windows: []Window{AllTime}}}})
	vals := []string{
		"9007199254740993", "9007199254740995", "-9007199254740993", "0.1", "0.3", "1e23",
		"8.98846567431158e307", "1.7976931348623157e308", "1.7976931348623158e308",
		"1.797693134862315807e308", "1e400", "-1e400", "2.2250738585072011e-308",
		"2.4703282292062327e-324", "2.4703282292062328e-324", "4.9406564584124654e-324", "1e-400", "-1e-400",
		"12345678901234567890.123456789", "0." + strings.Repeat("9", 80), strings.Repeat("7", 80),
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 300 {
		vals = append(vals, decimal.New(rng.Int64N(1<<62)-(1<<61), int32(rng.IntN(700)-350)).String())
	}
	for i, v := range vals {
		m := "m" + strconv.Itoa(i)
		if _, err := s.Increment(ctx, "score", m, d(v)); err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		_, want, canon, _ := encodeValue(d(v))
		dec, score := stored(t, s, "score", m)
		if score != want || dec != canon {
			t.Errorf("%s: script stored %s with score %v; Go: %s, %v", v, dec, score, canon, want)
		}
	}
}

// Sums past the value limits fail like a value past them: ErrInvalidValue, nothing
// written. Sums at the limits are fine. This also ties decimal.lua's limits to Go's.
func TestIncrementLimits(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t, Config{Boards: []Board{{Name: "lim"}}})
	nines := strings.Repeat("9", MaxDigits-1)
	max := fmt.Sprintf("9e%d", MaxExponent-1) // just below 10^MaxExponent
	for _, c := range []struct {
		name, start, delta string
		ok                 bool
	}{
		{"MaxDigits digits", nines, "0.1", true},                                       // 80 digits
		{"MaxDigits+1 digits", nines, "0.01", false},                                   // 81
		{"carry to a new digit", strings.Repeat("9", MaxDigits), "1", true},            // 1e80
		{"far apart", "1e500", "1e-500", false},                                        // 1001 digits
		{"far apart, cancelling", "1e500", "-1e-500", false},                           // 1000 nines
		{"magnitude at the top", max, "1" + strings.Repeat("0", MaxExponent-1), false}, // 10^1000
		{"magnitude below the top", max, "9e998", true},
		{"magnitude at the bottom", "1e-1000", "-1e-1000", true}, // zero
		{"smaller than the bottom", "2e-1000", "-1.99e-1000", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := strings.ReplaceAll(c.name, " ", "-")
			mustSet(t, s, "lim", m, c.start)
			before, _ := s.Rank(ctx, "lim", Week, m)
			got, err := s.Increment(ctx, "lim", m, d(c.delta))
			want := d(c.start).Add(d(c.delta))
			if _, _, _, encErr := encodeValue(want); (encErr == nil) != c.ok {
				t.Fatalf("bad case: Go says %v", encErr)
			}
			if c.ok {
				if err != nil || !got.Equal(want) {
					t.Fatalf("got %s %v, want %s", got, err, want)
				}
				return
			}
			if !errors.Is(err, ErrInvalidValue) {
				t.Fatalf("err %v, want ErrInvalidValue", err)
			}
			if after, _ := s.Rank(ctx, "lim", Week, m); after.Rank != before.Rank || after.Value.String() != before.Value.String() {
				t.Errorf("written anyway: %+v, was %+v", after, before)
			}
		})
	}
}

func TestIncrementAndRank(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t, Config{Boards: []Board{
		{Name: "ord"},
		{Name: "comp", Ranking: Competition},
		{Name: "dense", Ranking: Dense},
		{Name: "low", Order: LowFirst, Ranking: Competition},
		{Name: "dayonly", Windows: []Window{Day}},
		{Name: "cap", MaxMembers: 2, Windows: []Window{AllTime}},
	}})
	// The same story as TestRankingAndTies, told with increments: b reaches 20 before
	// c, c before e; d is alone at 30.
	steps := []struct{ member, delta string }{
		{"a", "10"}, {"b", "20"}, {"c", "5"}, {"c", "15"}, {"d", "30"}, {"e", "19.999"}, {"e", "0.001"}, {"b", "0"},
	}
	want := map[string][]line{
		"ord":   {{"a", "10", 1}, {"b", "20", 1}, {"c", "5", 3}, {"c", "20", 2}, {"d", "30", 1}, {"e", "19.999", 4}, {"e", "20", 4}, {"b", "20", 2}},
		"comp":  {{"a", "10", 1}, {"b", "20", 1}, {"c", "5", 3}, {"c", "20", 1}, {"d", "30", 1}, {"e", "19.999", 4}, {"e", "20", 2}, {"b", "20", 2}},
		"dense": {{"a", "10", 1}, {"b", "20", 1}, {"c", "5", 3}, {"c", "20", 1}, {"d", "30", 1}, {"e", "19.999", 3}, {"e", "20", 2}, {"b", "20", 2}},
		"low":   {{"a", "10", 1}, {"b", "20", 2}, {"c", "5", 1}, {"c", "20", 2}, {"d", "30", 4}, {"e", "19.999", 2}, {"e", "20", 2}, {"b", "20", 2}},
	}
	for board, w := range want {
		t.Run(board, func(t *testing.T) {
			var got []line
			for i, st := range steps {
				win := AllWindows[i%len(AllWindows)]
				e, err := s.IncrementAndRank(ctx, board, win, st.member, d(st.delta))
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, line{e.Member, e.Value.String(), e.Rank})
				// The same as a Rank afterwards.
				if r, err := s.Rank(ctx, board, win, st.member); err != nil || r.Member != e.Member || r.Rank != e.Rank || r.Value.String() != e.Value.String() {
					t.Errorf("step %d: Rank says %+v %v, IncrementAndRank %+v", i, r, err, e)
				}
			}
			if diff := cmp.Diff(w, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	if _, err := s.IncrementAndRank(ctx, "dayonly", Week, "x", d("1")); !errors.Is(err, ErrNoWindow) {
		t.Errorf("week of a day-only board: %v", err)
	}
	if n, _ := s.Count(ctx, "dayonly", Day); n != 0 {
		t.Errorf("written despite ErrNoWindow: %d members", n)
	}
	if _, err := s.IncrementAndRank(ctx, "nope", Day, "x", d("1")); !errors.Is(err, ErrUnknownBoard) {
		t.Errorf("unknown board: %v", err)
	}
	mustSet(t, s, "cap", "p", "10")
	mustSet(t, s, "cap", "q", "20")
	if _, err := s.IncrementAndRank(ctx, "cap", AllTime, "r", d("1")); !errors.Is(err, ErrNotRanked) {
		t.Errorf("member dropped past MaxMembers: %v", err)
	}
	if e, err := s.IncrementAndRank(ctx, "cap", AllTime, "p", d("11")); err != nil || e.Rank != 1 || e.Value.String() != "21" {
		t.Errorf("p: %+v %v", e, err)
	}
}

// Concurrent IncrementAndRank calls from two stores (two processes) land exactly and
// each sees a rank.
func TestIncrementAndRankConcurrent(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t, Config{Boards: []Board{{Name: "c", Ranking: Competition}}})
	other, err := NewStore(s.rdb, s.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		st := s
		if g%2 == 1 {
			st = other
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				e, err := st.IncrementAndRank(ctx, "c", Month, fmt.Sprintf("m%d", i%5), d("0.000000001"))
				if err != nil || e.Rank < 1 || e.Rank > 5 {
					t.Errorf("%+v %v", e, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	top, err := s.Top(ctx, "c", Week, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range top {
		if e.Value.String() != "0.00000008" || e.Rank != 1 {
			t.Errorf("%+v, want 80 × 1e-9 and a shared first place", e)
		}
	}
}

// TestWriteKeepsTTLs checks the TTLs write.lua no longer sets on every write: a window
// whose only member changes value never empties (and never comes back without a TTL),
// nor do a Dense board's distinct-value keys; existing all-time keys are refreshed by the
// first write of a minute on the Store's clock, not by every write.
func TestWriteKeepsTTLs(t *testing.T) {
	ctx := context.Background()
	s, rdb, clk := newStore(t, Config{Boards: []Board{{Name: "solo", Ranking: Dense}}})
	for i := range 3 {
		if _, err := s.Increment(ctx, "solo", "only", d(strconv.Itoa(i+1))); err != nil {
			t.Fatal(err)
		}
		clk.Set(clk.Now().Add(time.Second)) // within the minute: no refresh
	}
	keys := redistest.Keys(t, rdb, s.keys.board("solo")+"*") // every master of a cluster
	if len(keys) != 1+4*4 {                                  // the counter and z, h, d, c of four windows
		t.Errorf("keys %v: want the counter and 16 window keys", keys)
	}
	for _, k := range keys {
		if ttl := rdb.PTTL(ctx, k).Val(); ttl <= 0 {
			t.Errorf("%s: TTL %v, want one", k, ttl)
		}
	}
	if e, err := s.Rank(ctx, "solo", AllTime, "only"); err != nil || e.Value.String() != "6" || e.Rank != 1 {
		t.Errorf("rank %+v, %v: want 6, first", e, err)
	}

	all := s.keys.board("solo") + "all:z"
	short := time.Hour
	if err := rdb.PExpire(ctx, all, short).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Increment(ctx, "solo", "only", d("1")); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, all).Val(); ttl > short {
		t.Errorf("all-time TTL %v after a write within the minute: want it left at most %v", ttl, short)
	}
	clk.Set(clk.Now().Add(time.Minute))
	if _, err := s.Increment(ctx, "solo", "only", d("1")); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, all).Val(); ttl < 399*24*time.Hour {
		t.Errorf("all-time TTL %v after the first write of a new minute: want it refreshed to 400 days", ttl)
	}
}
