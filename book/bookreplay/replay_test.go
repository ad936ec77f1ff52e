package bookreplay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/tickstash/tickstash/book/bookreplay"
)

const captures = "../../../shared/testdata/captures/"

type outBook struct {
	Type     string     `json:"type"`
	Exchange string     `json:"exchange"`
	Symbol   string     `json:"symbol"`
	Time     string     `json:"time"`
	Sequence int64      `json:"sequence"`
	Bids     [][]string `json:"bids"`
	Asks     [][]string `json:"asks"`
	State    string     `json:"state"`
	Reason   string     `json:"reason"`
}

type result struct {
	books map[string]outBook
	log   string
	sum   bookreplay.Summary
	err   error
}

func run(t *testing.T, depth int, files ...string) result {
	t.Helper()
	var out, log bytes.Buffer
	sum, err := bookreplay.Run(context.Background(), files, bookreplay.Config{Depth: depth, Out: &out, Log: &log})
	res := result{books: map[string]outBook{}, log: log.String(), sum: sum, err: err}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if line == "" {
			continue
		}
		var b outBook
		if err := json.Unmarshal([]byte(line), &b); err != nil {
			t.Fatalf("output line %q: %v", line, err)
		}
		if b.Type != "book" {
			t.Fatalf("type %q", b.Type)
		}
		res.books[b.Symbol] = b
	}
	return res
}

// compare checks every written book against the reference, level by level, and that
// the decimals are written exactly and without trailing zeros.
func compare(t *testing.T, got map[string]outBook, want map[string]*refBook) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d books written, reference has %d", len(got), len(want))
	}
	for sym, ref := range want {
		b, ok := got[sym]
		if !ok {
			t.Fatalf("no book for %s", sym)
		}
		if b.State != "" {
			t.Fatalf("%s is %s: %s", sym, b.State, b.Reason)
		}
		for _, side := range []struct {
			name string
			got  [][]string
			want []refLevel
		}{{"bids", b.Bids, ref.sorted(true)}, {"asks", b.Asks, ref.sorted(false)}} {
			if len(side.got) != len(side.want) {
				t.Fatalf("%s %s: %d levels, reference %d", sym, side.name, len(side.got), len(side.want))
			}
			for i, l := range side.got {
				w := side.want[i]
				if l[0] != w.price.String() || l[1] != w.qty.String() {
					t.Fatalf("%s %s[%d] = %v, reference %s %s", sym, side.name, i, l, w.price, w.qty)
				}
			}
		}
	}
}

func TestCapturesMatchReference(t *testing.T) {
	for _, tc := range []struct {
		file       string
		books      int
		checksums  bool
		sequenceID bool
	}{
		{"binance-spot-2021.jsonl", 4, false, true},
		{"coinbase-exchange-2021.jsonl", 10, false, false},
		{"kraken-v1-2021.jsonl", 10, true, false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			res := run(t, 0, captures+tc.file)
			if res.err != nil {
				t.Fatalf("Run: %v\n%s", res.err, res.log)
			}
			ref, sums := reference(t, captures+tc.file)
			compare(t, res.books, ref)
			s := res.sum
			if s.Books != tc.books || s.NotLive != 0 || s.Sync.Stale != 0 || s.Sync.Resynced != 0 || s.DecodeErrors != 0 || s.Sync.Synced != int64(tc.books) {
				t.Fatalf("summary %+v\n%s", s, res.log)
			}
			if tc.checksums && (s.Sync.Checksums != int64(sums) || sums < 4000) {
				t.Fatalf("%d checksums verified, reference verified %d", s.Sync.Checksums, sums)
			}
			if tc.sequenceID {
				for sym, b := range res.books {
					if b.Sequence != ref[sym].lastID {
						t.Fatalf("%s sequence %d, reference %d", sym, b.Sequence, ref[sym].lastID)
					}
				}
			}
			if !strings.Contains(res.log, "0 verification failures, 0 resyncs") {
				t.Fatalf("log: %s", res.log)
			}
		})
	}
}

func TestDepthLimitsLevels(t *testing.T) {
	res := run(t, 5, captures+"kraken-v1-2021.jsonl")
	full := run(t, 0, captures+"kraken-v1-2021.jsonl")
	for sym, b := range res.books {
		if len(b.Bids) != 5 || len(b.Asks) != 5 {
			t.Fatalf("%s: %d bids %d asks", sym, len(b.Bids), len(b.Asks))
		}
		for i := range 5 {
			if b.Bids[i][0] != full.books[sym].Bids[i][0] || b.Asks[i][1] != full.books[sym].Asks[i][1] {
				t.Fatalf("%s: top 5 differ from the full book", sym)
			}
		}
	}
}

// Binance.US was recorded without depth snapshots: no book can be verified, and none
// may be presented as good.
func TestBinanceUSWithoutSnapshotsIsNotLive(t *testing.T) {
	res := run(t, 0, captures+"binance-us-2021.jsonl")
	if !errors.Is(res.err, bookreplay.ErrNotLive) {
		t.Fatalf("err %v", res.err)
	}
	if len(res.books) != 4 {
		t.Fatalf("%d books", len(res.books))
	}
	for sym, b := range res.books {
		if b.State != "empty" || b.Bids != nil || b.Asks != nil || !strings.Contains(b.Reason, "snapshot") {
			t.Fatalf("%s: %+v", sym, b)
		}
	}
	if res.sum.NotLive != 4 {
		t.Fatalf("summary %+v", res.sum)
	}
}

// lines reads a capture as lines.
func lines(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(captures + file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

func write(t *testing.T, ls []string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "capture.jsonl")
	if err := os.WriteFile(p, []byte(strings.Join(ls, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// find returns the indexes of the lines containing every one of subs.
func find(ls []string, subs ...string) []int {
	var out []int
next:
	for i, l := range ls {
		for _, s := range subs {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		out = append(out, i)
	}
	return out
}

func without(ls []string, i int) []string {
	return append(append([]string(nil), ls[:i]...), ls[i+1:]...)
}

func insert(ls []string, i int, l string) []string {
	out := append([]string(nil), ls[:i]...)
	out = append(out, l)
	return append(out, ls[i:]...)
}

// expectStale checks that exactly the named book went stale for the given reason and
// every other one stayed live.
func expectStale(t *testing.T, res result, sym, reason string) {
	t.Helper()
	if !errors.Is(res.err, bookreplay.ErrNotLive) {
		t.Fatalf("err %v, want ErrNotLive\n%s", res.err, res.log)
	}
	for s, b := range res.books {
		if s == sym {
			if b.State != "stale" || !strings.Contains(b.Reason, reason) || b.Bids != nil {
				t.Fatalf("%s: %+v, want stale for %q", s, b, reason)
			}
			continue
		}
		if b.State != "" {
			t.Fatalf("%s: %s: %s", s, b.State, b.Reason)
		}
	}
	if res.sum.NotLive != 1 || res.sum.Sync.Stale != 1 {
		t.Fatalf("summary %+v", res.sum)
	}
	if !strings.Contains(res.log, sym+" stale") || !strings.Contains(res.log, "1 verification failures") {
		t.Fatalf("log does not report it:\n%s", res.log)
	}
}

func TestBinanceFaults(t *testing.T) {
	ls := lines(t, "binance-spot-2021.jsonl")
	nkn := find(ls, `nknusdt@depth`)
	if len(nkn) < 30 {
		t.Fatalf("%d NKNUSDT diffs", len(nkn))
	}
	t.Run("dropped diff", func(t *testing.T) {
		expectStale(t, run(t, 0, write(t, without(ls, nkn[20]))), "NKN-USDT", "gap: diff U=")
	})
	t.Run("duplicated diff", func(t *testing.T) {
		expectStale(t, run(t, 0, write(t, insert(ls, nkn[20], ls[nkn[20]]))), "NKN-USDT", "gap: diff U=")
	})
	t.Run("snapshot older than the first diff", func(t *testing.T) {
		snap := find(ls, `"t":"http"`, "symbol=NKNUSDT")
		if len(snap) != 1 {
			t.Fatal("no NKNUSDT snapshot")
		}
		old := append([]string(nil), ls...)
		old[snap[0]] = strings.Replace(old[snap[0]], `lastUpdateId\":499869752`, `lastUpdateId\":499869700`, 1)
		if old[snap[0]] == ls[snap[0]] {
			t.Fatal("lastUpdateId not found")
		}
		expectStale(t, run(t, 0, write(t, old)), "NKN-USDT", "older than the first diff")
	})
	t.Run("snapshots after the first diffs are synced from the buffer", func(t *testing.T) {
		// As live: diffs buffered while the snapshots are fetched.
		snaps := find(ls, `"t":"http"`, "/api/v3/depth")
		var moved, rest []string
		for i, l := range ls {
			if len(find([]string{l}, `"t":"http"`, "/api/v3/depth")) == 1 {
				moved = append(moved, l)
				continue
			}
			rest = append(rest, l)
			_ = i
		}
		if len(snaps) != 4 {
			t.Fatalf("%d snapshots", len(snaps))
		}
		at := find(rest, `runeeur@depth`)[1] // after several diffs of every market
		out := append(append(append([]string(nil), rest[:at]...), moved...), rest[at:]...)
		p := write(t, out)
		res := run(t, 0, p)
		if res.err != nil {
			t.Fatalf("%v\n%s", res.err, res.log)
		}
		if res.sum.Sync.Buffered < 10 {
			t.Fatalf("only %d diffs were buffered", res.sum.Sync.Buffered)
		}
		ref, _ := reference(t, p)
		compare(t, res.books, ref)
		orig := run(t, 0, captures+"binance-spot-2021.jsonl")
		for sym := range orig.books {
			if orig.books[sym].Sequence != res.books[sym].Sequence {
				t.Fatalf("%s: sequence %d, %d without reordering", sym, res.books[sym].Sequence, orig.books[sym].Sequence)
			}
		}
	})
}

func TestKrakenFaults(t *testing.T) {
	ls := lines(t, "kraken-v1-2021.jsonl")
	xmr := find(ls, `book-1000`, `XMR/USD`, `\"c\":`)
	if len(xmr) < 10 {
		t.Fatalf("%d XMR/USD updates", len(xmr))
	}
	t.Run("dropped update", func(t *testing.T) {
		expectStale(t, run(t, 0, write(t, without(ls, xmr[0]))), "XMR-USD", "checksum mismatch")
	})
	t.Run("checksum mismatch", func(t *testing.T) {
		bad := append([]string(nil), ls...)
		i := xmr[5]
		j := strings.Index(bad[i], `\"c\":\"`) + len(`\"c\":\"`)
		k := j + strings.Index(bad[i][j:], `\"`)
		if bad[i][j:k] == "12345" {
			t.Fatal("the checksum is already 12345")
		}
		bad[i] = bad[i][:j] + "12345" + bad[i][k:]
		expectStale(t, run(t, 0, write(t, bad)), "XMR-USD", "checksum mismatch")
	})
	t.Run("duplicated update", func(t *testing.T) {
		// Levels carry absolute quantities: a repeated message changes nothing, and
		// every checksum still verifies.
		res := run(t, 0, write(t, insert(ls, xmr[3], ls[xmr[3]])))
		if res.err != nil || res.sum.Sync.Stale != 0 {
			t.Fatalf("%v %+v\n%s", res.err, res.sum, res.log)
		}
		ref, _ := reference(t, captures+"kraken-v1-2021.jsonl")
		compare(t, res.books, ref)
	})
}

func TestCoinbaseFaults(t *testing.T) {
	ls := lines(t, "coinbase-exchange-2021.jsonl")
	skl := find(ls, `l2update`, `SKL-USD`)
	snap := find(ls, `\"type\":\"snapshot\"`, `SKL-USD`)
	if len(skl) < 100 || len(snap) != 1 {
		t.Fatalf("%d SKL-USD updates, %d snapshots", len(skl), len(snap))
	}
	crossing := strings.Replace(ls[skl[50]], ls[skl[50]][strings.Index(ls[skl[50]], `changes`):strings.Index(ls[skl[50]], `]]`)+2],
		`changes\":[[\"buy\",\"5.0000\",\"1.5\"]]`, 1)
	t.Run("crossed book", func(t *testing.T) {
		expectStale(t, run(t, 0, write(t, insert(ls, skl[50], crossing))), "SKL-USD", "crossed book: best bid 5 ≥ best ask")
	})
	t.Run("crossed then resynced", func(t *testing.T) {
		// The exchange's new snapshot right after the bad message.
		out := insert(insert(ls, skl[1], ls[snap[0]]), skl[1], crossing)
		res := run(t, 0, write(t, out))
		if res.err != nil || res.sum.Sync.Stale != 1 || res.sum.Sync.Resynced != 1 {
			t.Fatalf("%v %+v\n%s", res.err, res.sum, res.log)
		}
		if !strings.Contains(res.log, "SKL-USD resynced") || !strings.Contains(res.log, "1 verification failures, 1 resyncs") {
			t.Fatalf("log:\n%s", res.log)
		}
		ref, _ := reference(t, write(t, out))
		compare(t, res.books, ref)
	})
	t.Run("duplicated update", func(t *testing.T) {
		res := run(t, 0, write(t, insert(ls, skl[70], ls[skl[70]])))
		if res.err != nil {
			t.Fatal(res.err)
		}
		ref, _ := reference(t, captures+"coinbase-exchange-2021.jsonl")
		compare(t, res.books, ref)
	})
}

func TestRunErrors(t *testing.T) {
	if _, err := bookreplay.Run(context.Background(), nil, bookreplay.Config{}); err == nil {
		t.Fatal("no files: no error")
	}
	if _, err := bookreplay.Run(context.Background(), []string{"/nonexistent.jsonl"}, bookreplay.Config{}); err == nil {
		t.Fatal("missing file: no error")
	}
	p := write(t, []string{`{"t":"header","format":2,"exchange":"BITMEX"}`, `{"t":"recv","conn":"x","ts":1,"data":"{}"}`})
	if _, err := bookreplay.Run(context.Background(), []string{p}, bookreplay.Config{}); !errors.Is(err, bookreplay.ErrUnknownFeed) {
		t.Fatalf("unknown feed: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := bookreplay.Run(ctx, []string{captures + "kraken-v1-2021.jsonl"}, bookreplay.Config{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

var _ = decimal.Zero
