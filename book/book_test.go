package book

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/tickstash/tickstash/market"
)

// mapBook is the plain reference: price string → quantity.
type mapBook map[Side]map[string]decimal.Decimal

func (m mapBook) sorted(s Side) []Level {
	var out []Level
	for p, q := range m[s] {
		out = append(out, Level{Price: decimal.RequireFromString(p), Qty: q})
	}
	sort.Slice(out, func(i, j int) bool {
		if s == Bid {
			return out[i].Price.GreaterThan(out[j].Price)
		}
		return out[i].Price.LessThan(out[j].Price)
	})
	return out
}

func checkAgainst(t *testing.T, b *Book, m mapBook, step int) {
	t.Helper()
	for _, s := range []Side{Bid, Ask} {
		want := m.sorted(s)
		got := b.top(s, 0)
		if len(got) != len(want) || b.Len(s) != len(want) {
			t.Fatalf("step %d %s: %d levels (Len %d), want %d", step, s, len(got), b.Len(s), len(want))
		}
		for i := range got {
			if !got[i].Price.Equal(want[i].Price) || !got[i].Qty.Equal(want[i].Qty) {
				t.Fatalf("step %d %s[%d] = %s %s, want %s %s", step, s, i, got[i].Price, got[i].Qty, want[i].Price, want[i].Qty)
			}
		}
		// The walk from the worst end agrees too.
		sd := b.side(s)
		i := len(want) - 1
		for x := sd.worst; x != 0; x = sd.nodes[x].prev {
			if p := toDecimal(b.price(s, &sd.nodes[x]), b.pscale); !p.Equal(want[i].Price) {
				t.Fatalf("step %d %s: backwards [%d] = %s, want %s", step, s, i, p, want[i].Price)
			}
			i--
		}
		if i != -1 {
			t.Fatalf("step %d %s: backward walk stopped at %d", step, s, i)
		}
	}
}

// The treap against a map, through random sets, deletes, deletes of absent levels,
// truncations and prices finer than any before (which rescale the book).
func TestBookAgainstMap(t *testing.T) {
	for seed := range uint64(5) {
		rng := rand.New(rand.NewPCG(seed, 7))
		b := New(market.Kraken, "BTC-USD")
		m := mapBook{Bid: {}, Ask: {}}
		decimals := 2
		for step := range 20000 {
			if step%5000 == 4999 && decimals < 8 {
				decimals += 3
			}
			s := Side(rng.IntN(2))
			// Bids below 1000, asks above, so the book never crosses.
			cents := rng.Int64N(2000)
			base := int64(1000)
			if s == Bid {
				base = 1000 - 20
			} else {
				base = 1000 + 1
			}
			price := decimal.New(base*100+cents, -2)
			if decimals > 2 && rng.IntN(2) == 0 {
				price = price.Add(decimal.New(rng.Int64N(999)+1, -int32(decimals)))
			}
			qty := decimal.Zero
			if rng.IntN(3) > 0 {
				qty = decimal.New(rng.Int64N(1e6)+1, -int32(rng.IntN(6)))
			}
			text := price.StringFixed(int32(decimals))
			if err := b.Set(s, []byte(text), []byte(qty.String())); err != nil {
				t.Fatal(err)
			}
			if qty.IsZero() {
				delete(m[s], price.String())
			} else {
				m[s][price.String()] = qty
			}
			if step%997 == 0 {
				depth := rng.IntN(50) + 1
				b.Truncate(depth)
				for _, side := range []Side{Bid, Ask} {
					for _, l := range m.sorted(side)[min(depth, len(m[side])):] {
						delete(m[side], l.Price.String())
					}
				}
			}
			if step%101 == 0 || step < 200 {
				checkAgainst(t, b, m, step)
			}
		}
		checkAgainst(t, b, m, -1)
		// Clearing keeps the memory and empties the book.
		b.Clear()
		checkAgainst(t, b, mapBook{Bid: {}, Ask: {}}, -2)
	}
}

func TestSetRejects(t *testing.T) {
	b := New(market.Binance, "BTC-USDT")
	for _, tc := range [][2]string{{"-1", "1"}, {"1", "-1"}, {"x", "1"}, {"1", ""}, {"0", "5"}} {
		if err := b.Set(Bid, []byte(tc[0]), []byte(tc[1])); !errors.Is(err, ErrNumber) {
			t.Errorf("Set(%q, %q) = %v, want ErrNumber", tc[0], tc[1], err)
		}
	}
	if b.Len(Bid) != 0 {
		t.Fatal("a rejected level was stored")
	}
	// A level that cannot be held at the book's scales is refused and changes nothing.
	if err := b.Set(Bid, []byte("923456789012345678"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := b.Set(Ask, []byte("1.5"), []byte("1")); !errors.Is(err, ErrNumber) {
		t.Fatalf("widening past int64: %v", err)
	}
	if err := b.Set(Ask, []byte("923456789012345679"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	if b.Len(Ask) != 1 || b.pscale != 0 {
		t.Fatalf("state changed by a refused level: %d asks, scale %d", b.Len(Ask), b.pscale)
	}
	// Removing a level that is not there changes nothing.
	if err := b.Set(Ask, []byte("5"), []byte("0")); err != nil || b.Len(Ask) != 1 {
		t.Fatal(err)
	}
}

func TestHugeAndTinyValuesKeepExact(t *testing.T) {
	b := New(market.Binance, "SHIB-USDT")
	b.MarkLive(1, fixedTime)
	must(t, b.Set(Ask, []byte("0.00002451"), []byte("98765432101.00000000")))
	must(t, b.Set(Ask, []byte("0.00002452"), []byte("1.5")))
	must(t, b.Set(Bid, []byte("0.00002449"), []byte("123456789012")))
	top, err := b.Top(Ask, 0)
	must(t, err)
	if top[0].Qty.String() != "98765432101" || top[1].Price.String() != "0.00002452" {
		t.Fatalf("%v", top)
	}
	f, err := b.Walk(true, decimal.RequireFromString("98765432102"))
	must(t, err)
	// 98765432101 × 0.00002451 + 1 × 0.00002452
	want := decimal.RequireFromString("98765432101").Mul(decimal.RequireFromString("0.00002451")).Add(decimal.RequireFromString("0.00002452"))
	if !f.Cost.Equal(want) || !f.Complete {
		t.Fatalf("cost %s, want %s", f.Cost, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func level(b *Book, s Side, p, q string) {
	if err := b.Set(s, []byte(p), []byte(q)); err != nil {
		panic(err)
	}
}

func figuresBook() *Book {
	b := New(market.Coinbase, "BTC-USD")
	level(b, Bid, "100.0", "1")
	level(b, Bid, "99.5", "2")
	level(b, Bid, "99", "3.000")
	level(b, Ask, "101", "1.5")
	level(b, Ask, "102", "2")
	b.MarkLive(7, fixedTime)
	return b
}

func TestFigures(t *testing.T) {
	b := figuresBook()
	eq := func(name string, got decimal.Decimal, err error, want string) {
		t.Helper()
		if err != nil || got.String() != want {
			t.Errorf("%s = %s, %v; want %s", name, got, err, want)
		}
	}
	s, err := b.Spread()
	eq("spread", s, err, "1")
	m, err := b.Mid()
	eq("mid", m, err, "100.5")
	mp, err := b.Microprice()
	eq("microprice", mp, err, "100.4") // (100·1.5 + 101·1) / 2.5
	im, err := b.Imbalance(1)
	eq("imbalance(1)", im, err, "-0.2")
	im, err = b.Imbalance(0)
	eq("imbalance(all)", im, err, "0.263157894737")  // 2.5 / 9.5
	d, err := b.DepthWithin(decimal.NewFromInt(100)) // 100.5 ± 1.005
	must(t, err)
	if d.Bid.String() != "3" || d.Ask.String() != "1.5" || d.BidNotional.String() != "299" || d.AskNotional.String() != "151.5" {
		t.Errorf("depth %+v", d)
	}
	f, err := b.Walk(true, decimal.NewFromInt(2))
	must(t, err)
	if f.Cost.String() != "202.5" || f.AvgPrice.String() != "101.25" || f.Slippage.String() != "0.25" ||
		f.SlippageBps.String() != "24.752475247525" || !f.Complete || f.Levels != 2 || f.Worst.String() != "102" {
		t.Errorf("buy 2: %+v", f)
	}
	f, err = b.Walk(false, decimal.NewFromInt(10))
	must(t, err)
	if f.Complete || f.Filled.String() != "6" || f.Cost.String() != "596" || f.AvgPrice.String() != "99.3333333333333" ||
		f.Slippage.String() != "0.6666666666667" {
		t.Errorf("sell 10: %+v", f)
	}
	top, err := b.Top(Bid, 2)
	must(t, err)
	if len(top) != 2 || top[0].Price.String() != "100" || top[1].Qty.String() != "2" {
		t.Errorf("top %v", top)
	}
	if _, err := b.Walk(true, decimal.Zero); err == nil {
		t.Error("walk of zero: no error")
	}
	if _, err := b.DepthWithin(decimal.NewFromInt(-1)); err == nil {
		t.Error("negative bps: no error")
	}
	if q := b.Qty(Bid, decimal.RequireFromString("99.50")); q.String() != "2" {
		t.Errorf("qty at 99.50 = %s", q)
	}
}

// A stale book is never presented as good: every reader gets the state and reason.
func TestStaleBookIsNotServed(t *testing.T) {
	b := figuresBook()
	b.MarkStale("gap: diff U=5 after u=3")
	b.MarkStale("a later reason does not replace the first")
	readers := map[string]func() error{
		"Top":         func() error { _, err := b.Top(Bid, 5); return err },
		"Best":        func() error { _, _, err := b.Best(Ask); return err },
		"Spread":      func() error { _, err := b.Spread(); return err },
		"Mid":         func() error { _, err := b.Mid(); return err },
		"Microprice":  func() error { _, err := b.Microprice(); return err },
		"Imbalance":   func() error { _, err := b.Imbalance(3); return err },
		"DepthWithin": func() error { _, err := b.DepthWithin(decimal.NewFromInt(10)); return err },
		"Walk":        func() error { _, err := b.Walk(true, decimal.NewFromInt(1)); return err },
	}
	for name, read := range readers {
		var se *StaleError
		if err := read(); !errors.As(err, &se) || se.State != StateStale || se.Reason != "gap: diff U=5 after u=3" ||
			!strings.Contains(err.Error(), "BTC-USD is stale") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if st := b.Status(); st.State != StateStale || st.Sequence != 7 {
		t.Errorf("status %+v", st)
	}
	empty := New(market.Coinbase, "ETH-USD")
	if _, err := empty.Mid(); err == nil {
		t.Error("an empty book served a mid")
	}
	// A live book with an empty side says so.
	one := New(market.Coinbase, "ETH-USD")
	level(one, Bid, "1", "1")
	one.MarkLive(1, fixedTime)
	if _, err := one.Spread(); !errors.Is(err, ErrEmptySide) {
		t.Errorf("one-sided spread: %v", err)
	}
}

func TestCrossed(t *testing.T) {
	b := figuresBook()
	if b.Crossed() {
		t.Fatal("crossed")
	}
	level(b, Bid, "101", "1") // locked
	if !b.Crossed() {
		t.Fatal("a locked book is not reported crossed")
	}
}

// The checksum against Kraken's recipe applied to the wire text with strings.
func TestKrakenChecksumRecipe(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for range 50 {
		b := New(market.Kraken, "BTC-USD")
		type lv struct{ p, q string }
		var asks, bids []lv
		used := map[string]bool{}
		for range 15 {
			for _, s := range []Side{Bid, Ask} {
				var p string
				if s == Bid {
					p = fmt.Sprintf("%d.%05d", 100+rng.IntN(50), rng.IntN(100000))
				} else {
					p = fmt.Sprintf("%d.%05d", 200+rng.IntN(50), rng.IntN(100000))
				}
				if used[p] {
					continue
				}
				used[p] = true
				q := fmt.Sprintf("%d.%08d", rng.IntN(3), 1+rng.IntN(99999999))
				level(b, s, p, q)
				if s == Bid {
					bids = append(bids, lv{p, q})
				} else {
					asks = append(asks, lv{p, q})
				}
			}
		}
		sort.Slice(asks, func(i, j int) bool {
			return decimal.RequireFromString(asks[i].p).LessThan(decimal.RequireFromString(asks[j].p))
		})
		sort.Slice(bids, func(i, j int) bool {
			return decimal.RequireFromString(bids[i].p).GreaterThan(decimal.RequireFromString(bids[j].p))
		})
		var sb strings.Builder
		for _, side := range [][]lv{asks[:10], bids[:10]} {
			for _, l := range side {
				sb.WriteString(strings.TrimLeft(strings.ReplaceAll(l.p, ".", ""), "0"))
				sb.WriteString(strings.TrimLeft(strings.ReplaceAll(l.q, ".", ""), "0"))
			}
		}
		if got, want := b.KrakenChecksum(), crc32IEEE(sb.String()); got != want {
			t.Fatalf("checksum %d, recipe %d", got, want)
		}
	}
}
