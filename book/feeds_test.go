package book_test

import (
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	"github.com/tickstash/tickstash/book"
	"github.com/tickstash/tickstash/ingest/coinbase"
	"github.com/tickstash/tickstash/ingest/kraken"
	"github.com/tickstash/tickstash/market"
)

var recv = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type depthDecoder interface {
	Decode(dst []book.Depth, msg []byte, recv time.Time) ([]book.Depth, error)
}

// feed decodes and applies messages, collecting notices.
type feed struct {
	t       *testing.T
	dec     depthDecoder
	s       *book.Syncer
	notices []book.Notice
}

func newFeed(t *testing.T, dec depthDecoder, ex market.Exchange, rules book.Rules) *feed {
	f := &feed{t: t, dec: dec}
	f.s = book.NewSyncer(ex, rules, book.SyncConfig{Notify: func(n book.Notice) { f.notices = append(f.notices, n) }})
	return f
}

func (f *feed) send(msg string) {
	f.t.Helper()
	recs, err := f.dec.Decode(nil, []byte(msg), recv)
	if err != nil {
		f.t.Fatalf("decode %s: %v", msg, err)
	}
	f.s.Apply(recs)
}

func (f *feed) state(sym market.Symbol) book.Status {
	f.t.Helper()
	b := f.s.Book(sym)
	if b == nil {
		f.t.Fatalf("no book %s", sym)
	}
	return b.Status()
}

func topString(t *testing.T, b *book.Book, n int) string {
	t.Helper()
	var sb strings.Builder
	for _, s := range []book.Side{book.Bid, book.Ask} {
		levels, err := b.Top(s, n)
		if err != nil {
			t.Fatal(err)
		}
		sb.WriteString(s.String() + ":")
		for _, l := range levels {
			sb.WriteString(" " + l.Price.String() + "x" + l.Qty.String())
		}
		sb.WriteString(";")
	}
	return sb.String()
}

func advanced(seq int, events string) string {
	return fmt.Sprintf(`{"channel":"l2_data","client_id":"","timestamp":"2023-02-09T20:32:50.714964855Z","sequence_num":%d,"events":[%s]}`, seq, events)
}

func l2event(typ, product string, updates ...string) string {
	var u []string
	for _, x := range updates {
		f := strings.Fields(x) // side price qty
		u = append(u, fmt.Sprintf(`{"side":%q,"event_time":"2023-02-09T20:32:50.714964855Z","price_level":%q,"new_quantity":%q}`, f[0], f[1], f[2]))
	}
	return fmt.Sprintf(`{"type":%q,"product_id":%q,"updates":[%s]}`, typ, product, strings.Join(u, ","))
}

// Coinbase Advanced Trade: sequence_num counts every message of the connection; a
// gap stales every book of it, a repeat is dropped, and the next snapshot resyncs.
func TestCoinbaseAdvanced(t *testing.T) {
	f := newFeed(t, coinbase.NewAdvancedDepthDecoder(), market.Coinbase, book.RulesCoinbaseAdvanced)
	f.send(`{"channel":"subscriptions","client_id":"","timestamp":"2023-02-09T20:32:50.714964855Z","sequence_num":0,"events":[{"subscriptions":{"level2":["BTC-USD","ETH-USD"]}}]}`)
	f.send(advanced(1,
		l2event("snapshot", "BTC-USD", "bid 21921.73 0.06317902", "bid 21921.30 0.1", "offer 21921.74 1.00000000", "offer 21922 0.5")+","+
			l2event("snapshot", "ETH-USD", "bid 1500.1 2", "offer 1500.2 3")))
	f.send(`{"channel":"heartbeats","client_id":"","timestamp":"2023-02-09T20:32:51Z","sequence_num":2,"events":[{"current_time":"2023-02-09 20:32:51","heartbeat_counter":3}]}`)
	f.send(advanced(3, l2event("update", "BTC-USD", "bid 21921.30 0", "offer 21921.74 0.25", "bid 21921.50 7")))
	if got := topString(t, f.s.Book("BTC-USD"), 5); got != "bid: 21921.73x0.06317902 21921.5x7;ask: 21921.74x0.25 21922x0.5;" {
		t.Fatalf("book %s", got)
	}
	if st := f.state("BTC-USD"); st.State != book.StateLive || st.Sequence != 3 {
		t.Fatalf("status %+v", st)
	}
	// A repeated message is dropped, not applied twice and not a gap.
	f.send(advanced(3, l2event("update", "BTC-USD", "bid 21921.50 99")))
	if f.s.Stats().Duplicates != 1 || f.state("BTC-USD").State != book.StateLive {
		t.Fatalf("duplicate: %+v", f.s.Stats())
	}
	if got := topString(t, f.s.Book("BTC-USD"), 2); !strings.Contains(got, "21921.5x7") {
		t.Fatalf("duplicate applied: %s", got)
	}
	// Message 4 (of any channel) is lost: every book of the connection is stale.
	f.send(advanced(5, l2event("update", "ETH-USD", "bid 1500 1")))
	for _, sym := range []market.Symbol{"BTC-USD", "ETH-USD"} {
		st := f.state(sym)
		if st.State != book.StateStale || !strings.Contains(st.Reason, "sequence_num 5 after 3") {
			t.Fatalf("%s: %+v", sym, st)
		}
	}
	if _, err := f.s.Book("ETH-USD").Mid(); err == nil {
		t.Fatal("a stale book served a mid")
	}
	// Updates to a stale book are not applied; a new snapshot resyncs it.
	f.send(advanced(6, l2event("update", "BTC-USD", "bid 21921.60 1")))
	f.send(advanced(7, l2event("snapshot", "BTC-USD", "bid 21900 1", "offer 21901 2")))
	if st := f.state("BTC-USD"); st.State != book.StateLive || st.Sequence != 7 {
		t.Fatalf("after resync: %+v", st)
	}
	if got := topString(t, f.s.Book("BTC-USD"), 5); got != "bid: 21900x1;ask: 21901x2;" {
		t.Fatalf("after resync %s", got)
	}
	if f.state("ETH-USD").State != book.StateStale {
		t.Fatal("ETH-USD resynced without a snapshot")
	}
	kinds := ""
	for _, n := range f.notices {
		kinds += n.Kind.String() + " "
	}
	if kinds != "synced synced stale stale resynced " {
		t.Fatalf("notices: %s", kinds)
	}
	// A crossed update stales the book.
	f.send(advanced(8, l2event("update", "BTC-USD", "bid 21901 1")))
	if st := f.state("BTC-USD"); st.State != book.StateStale || !strings.Contains(st.Reason, "crossed") {
		t.Fatalf("crossed: %+v", st)
	}
}

func TestCoinbaseAdvancedRejects(t *testing.T) {
	dec := coinbase.NewAdvancedDepthDecoder()
	for _, msg := range []string{
		advanced(1, `{"type":"snapshot","product_id":"BTC-USD","updates":[{"side":"buy","price_level":"1","new_quantity":"1"}]}`),
		advanced(1, `{"type":"snapshot","product_id":"BTC-USD","updates":[{"side":"bid","new_quantity":"1"}]}`),
		advanced(1, `{"type":"other","product_id":"BTC-USD","updates":[]}`),
		advanced(1, `{"type":"update","product_id":"nonsense","updates":[]}`),
		`{"channel":"l2_data","sequence_num":"x","events":[]}`,
		`{"channel":"l2_data","sequence_num":1,"events":[`,
	} {
		if _, err := dec.Decode(nil, []byte(msg), recv); err == nil {
			t.Errorf("no error for %s", msg)
		}
	}
}

// krakenV2 builds a v2 book message; levels are "side price qty" with the numbers
// written as JSON numbers, as Kraken sends them.
func krakenV2(typ string, checksum uint32, levels ...string) string {
	var bids, asks []string
	for _, l := range levels {
		f := strings.Fields(l)
		x := fmt.Sprintf(`{"price":%s,"qty":%s}`, f[1], f[2])
		if f[0] == "bid" {
			bids = append(bids, x)
		} else {
			asks = append(asks, x)
		}
	}
	return fmt.Sprintf(`{"channel":"book","type":%q,"data":[{"symbol":"BTC/USD","bids":[%s],"asks":[%s],"checksum":%d,"timestamp":"2023-10-06T17:35:55.440295Z"}]}`,
		typ, strings.Join(bids, ","), strings.Join(asks, ","), checksum)
}

// recipe computes Kraken's checksum from level text, independently of package book.
func recipe(asks, bids [][2]string) uint32 {
	var sb strings.Builder
	for _, side := range [][][2]string{asks, bids} {
		for _, l := range side[:min(10, len(side))] {
			sb.WriteString(strings.TrimLeft(strings.ReplaceAll(l[0], ".", ""), "0"))
			sb.WriteString(strings.TrimLeft(strings.ReplaceAll(l[1], ".", ""), "0"))
		}
	}
	return crc32.ChecksumIEEE([]byte(sb.String()))
}

func TestKrakenV2(t *testing.T) {
	f := newFeed(t, kraken.NewDepthDecoder(10), market.Kraken, book.RulesKraken)
	var asks, bids [][2]string
	var levels []string
	for i := range 10 {
		av, bv := 452852+i, 452839-i // tenths
		a := [2]string{fmt.Sprintf("%d.%d", av/10, av%10), fmt.Sprintf("0.%08d", 100000+i)}
		b := [2]string{fmt.Sprintf("%d.%d", bv/10, bv%10), fmt.Sprintf("%d.50000000", i+1)}
		asks, bids = append(asks, a), append(bids, b)
		levels = append(levels, "ask "+a[0]+" "+a[1], "bid "+b[0]+" "+b[1])
	}
	f.send(`{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,"symbol":"BTC/USD"},"success":true,"time_in":"2023-10-06T17:35:55.440295Z","time_out":"2023-10-06T17:35:55.440295Z"}`)
	f.send(krakenV2("snapshot", recipe(asks, bids), levels...))
	if st := f.state("BTC-USD"); st.State != book.StateLive {
		t.Fatalf("snapshot: %+v", st)
	}
	// A better bid pushes the 10th bid out of the subscribed depth: truncated, as
	// Kraken sends no delete for it, and the checksum covers the truncated book.
	nb := [2]string{"45284.0", "0.00100000"}
	bids = append([][2]string{nb}, bids[:9]...)
	f.send(krakenV2("update", recipe(asks, bids), "bid "+nb[0]+" "+nb[1]))
	b := f.s.Book("BTC-USD")
	if st := b.Status(); st.State != book.StateLive || st.Sequence != 1 || b.Len(book.Bid) != 10 {
		t.Fatalf("update: %+v, %d bids", st, b.Len(book.Bid))
	}
	if got := topString(t, b, 1); got != "bid: 45284x0.001;ask: 45285.2x0.001;" {
		t.Fatalf("top %s", got)
	}
	// A deleted ask, and an update whose checksum is wrong.
	asks = asks[1:]
	f.send(krakenV2("update", recipe(asks, bids), "ask 45285.2 0"))
	if st := b.Status(); st.State != book.StateLive {
		t.Fatalf("delete: %+v", st)
	}
	f.send(krakenV2("update", recipe(asks, bids)+1, "ask 45285.3 0.5"))
	if st := b.Status(); st.State != book.StateStale || !strings.Contains(st.Reason, "checksum mismatch") {
		t.Fatalf("bad checksum: %+v", st)
	}
	if f.s.Stats().Checksums != 4 {
		t.Fatalf("stats %+v", f.s.Stats())
	}
	// Exponent forms (JSON numbers may use them) are read exactly.
	f2 := newFeed(t, kraken.NewDepthDecoder(0), market.Kraken, book.RulesKraken)
	f2.send(`{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD","bids":[{"price":1.5e-5,"qty":2E3}],"asks":[{"price":0.000016,"qty":1000.5}]}]}`)
	if got := topString(t, f2.s.Book("BTC-USD"), 1); got != "bid: 0.000015x2000;ask: 0.000016x1000.5;" {
		t.Fatalf("exponents: %s", got)
	}
}

func TestKrakenRejects(t *testing.T) {
	dec := kraken.NewDepthDecoder(0)
	for _, msg := range []string{
		`[1,{"a":[["1.0","2.0"]]},"book-10","XBT/USD"]`,                         // no timestamp
		`[1,{"a":[["1.0","2.0","1.1"]],"c":"99999999999"},"book-10","XBT/USD"]`, // checksum > 32 bits
		`[1,{"as":[["1.0","2.0","1.1"]]},{"b":[["1.0","2.0","1.1"]]},"book-10","XBT/USD"]`,
		`[1,{"a":[["1.0","2.0","1.1"]]},"book-x","XBT/USD"]`,
		`{"channel":"book","type":"weird","data":[]}`,
		`{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":1}]}]}`,
	} {
		if _, err := dec.Decode(nil, []byte(msg), recv); err == nil {
			t.Errorf("no error for %s", msg)
		}
	}
	recs, err := dec.Decode(nil, []byte(`[1,[["1.0","2.0","1.1","s","l",""]],"trade","XBT/USD"]`), recv)
	if err != nil || len(recs) != 0 {
		t.Fatalf("a trade message gave %v, %v", recs, err)
	}
}
