package book

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tickstash/tickstash/market"
)

func lv(s Side, p, q string) RawLevel { return RawLevel{Side: s, Price: []byte(p), Qty: []byte(q)} }

func diff(first, last int64, levels ...RawLevel) []Depth {
	return []Depth{{Kind: Update, Symbol: "BTC-USDT", Time: fixedTime, First: first, Last: last, Levels: levels}}
}

func snap(last int64, levels ...RawLevel) []Depth {
	return []Depth{{Kind: Snapshot, Symbol: "BTC-USDT", Time: fixedTime, Last: last, Levels: levels}}
}

type recorder struct{ notices []string }

func (r *recorder) notify(n Notice) { r.notices = append(r.notices, n.Kind.String()) }

func TestBinanceRules(t *testing.T) {
	var r recorder
	s := NewSyncer(market.Binance, RulesBinance, SyncConfig{Notify: r.notify, MaxBuffered: 4})
	// Diffs before the snapshot are buffered; the book is not served.
	s.Apply(diff(90, 95, lv(Bid, "99", "1")))
	s.Apply(diff(96, 101, lv(Bid, "100", "2")))
	s.Apply(diff(102, 102, lv(Ask, "101", "3")))
	b := s.Book("BTC-USDT")
	if _, err := b.Mid(); err == nil || b.Status().State != StateEmpty {
		t.Fatalf("served before the snapshot: %+v", b.Status())
	}
	// The snapshot (lastUpdateId 100) drops u ≤ 100, applies 96..101 as the first
	// diff (it covers 101) and 102 after it.
	s.Apply(snap(100, lv(Bid, "99", "5"), lv(Ask, "102", "1")))
	if st := b.Status(); st.State != StateLive || st.Sequence != 102 {
		t.Fatalf("after sync: %+v", st)
	}
	if got := fmt.Sprint(b.top(Bid, 0), b.top(Ask, 0)); got != "[{100 2} {99 5}] [{101 3} {102 1}]" {
		t.Fatalf("book %s", got)
	}
	// The next diff must start right after.
	s.Apply(diff(103, 104, lv(Bid, "100", "0")))
	s.Apply(diff(106, 107, lv(Bid, "98", "1"))) // 105 missing
	if st := b.Status(); st.State != StateStale || !strings.Contains(st.Reason, "want U=105") || st.Sequence != 104 {
		t.Fatalf("gap: %+v", st)
	}
	// While stale, diffs are buffered for the next snapshot (the owner fetches one);
	// the buffer keeps the newest MaxBuffered.
	for u := int64(108); u < 114; u++ {
		s.Apply(diff(u, u, lv(Ask, "103", fmt.Sprint(u))))
	}
	if st := s.Stats(); st.Dropped < 3 {
		t.Fatalf("buffer overflow not counted: %+v", st)
	}
	s.Apply(snap(110, lv(Bid, "97", "1"), lv(Ask, "103", "110")))
	if st := b.Status(); st.State != StateLive || st.Sequence != 113 {
		t.Fatalf("after resync: %+v", st)
	}
	if q := b.top(Ask, 1)[0].Qty.String(); q != "113" {
		t.Fatalf("ask qty %s", q)
	}
	// A snapshot older than the diffs buffered for it.
	s.Apply(diff(120, 121, lv(Bid, "96", "1")))
	if b.Status().State != StateStale {
		t.Fatal("gap not seen")
	}
	s.Apply(snap(118))
	if st := b.Status(); st.State != StateStale || !strings.Contains(st.Reason, "older than the first diff") {
		t.Fatalf("old snapshot: %+v", st)
	}
	if got := strings.Join(r.notices, " "); got != "synced stale resynced stale resynced stale" {
		t.Fatalf("notices %s", got)
	}
	if st := s.Stats(); st.Synced != 1 || st.Resynced != 2 || st.Stale != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSnapshotErrors(t *testing.T) {
	s := NewSyncer(market.Kraken, RulesKraken, SyncConfig{})
	s.Apply([]Depth{{Kind: Snapshot, Symbol: "BTC-USD", Levels: []RawLevel{lv(Bid, "x", "1")}}})
	b := s.Book("BTC-USD")
	if st := b.Status(); st.State != StateStale || !strings.Contains(st.Reason, "snapshot: bid level") {
		t.Fatalf("bad snapshot: %+v", st)
	}
	// Updates to a book not live are counted and dropped.
	s.Apply([]Depth{{Kind: Update, Symbol: "BTC-USD", Levels: []RawLevel{lv(Bid, "1", "1")}}})
	if s.Stats().Dropped != 1 || b.Len(Bid) != 0 {
		t.Fatalf("%+v", s.Stats())
	}
	// A crossed snapshot is stale at once.
	s.Apply([]Depth{{Kind: Snapshot, Symbol: "BTC-USD", Levels: []RawLevel{lv(Bid, "2", "1"), lv(Ask, "1", "1")}}})
	if st := b.Status(); st.State != StateStale || !strings.Contains(st.Reason, "crossed book: best bid 2 ≥ best ask 1") {
		t.Fatalf("crossed snapshot: %+v", st)
	}
	// Truncation to the subscribed depth keeps the best.
	s.Apply([]Depth{{Kind: Snapshot, Symbol: "BTC-USD", MaxDepth: 2, Levels: []RawLevel{
		lv(Bid, "1", "1"), lv(Bid, "3", "1"), lv(Bid, "2", "1"), lv(Ask, "5", "1"), lv(Ask, "4", "1"), lv(Ask, "6", "1")}}})
	if got := fmt.Sprint(b.top(Bid, 0), b.top(Ask, 0)); got != "[{3 1} {2 1}] [{4 1} {5 1}]" || b.Status().State != StateLive {
		t.Fatalf("truncated %s %+v", got, b.Status())
	}
}

// A large book, built and emptied in a scattered order, stays consistent.
func TestLargeBook(t *testing.T) {
	b := New(market.Binance, "BTC-USDT")
	const n = 100_000
	for i := range n {
		p := (i*7919)%n + 1 // a permutation
		must(t, b.Set(Bid, []byte(fmt.Sprintf("%d.%02d", p/100, p%100)), []byte("1")))
	}
	if b.Len(Bid) != n {
		t.Fatalf("%d levels", b.Len(Bid))
	}
	prev := int64(1 << 62)
	b.Levels(Bid, 0, func(p, _ int64) bool {
		if p >= prev {
			t.Fatalf("order broken at %d", p)
		}
		prev = p
		return true
	})
	for i := range n {
		p := (i*104729)%n + 1
		must(t, b.Set(Bid, []byte(fmt.Sprintf("%d.%02d", p/100, p%100)), []byte("0")))
	}
	if b.Len(Bid) != 0 || b.bids.root != 0 || b.bids.best != 0 || b.bids.idx.n != 0 {
		t.Fatalf("not empty: %d", b.Len(Bid))
	}
}
