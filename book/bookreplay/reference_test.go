package bookreplay_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/tickstash/tickstash/ingest/binance"
	"github.com/tickstash/tickstash/ingest/capture"
	"github.com/tickstash/tickstash/ingest/kraken"
)

// refLevel keeps a level's wire text beside its value, for Kraken's checksum.
type refLevel struct {
	price, qty         decimal.Decimal
	priceText, qtyText string
}

// refBook is the independent reconstruction: maps keyed by the price's canonical
// decimal string, decoded with encoding/json, nothing shared with package book.
type refBook struct {
	bids, asks map[string]refLevel
	live       bool
	lastID     int64 // Binance
	needFirst  bool
	pending    []binanceDiff
}

type binanceDiff struct {
	first, last int64
	bids, asks  [][]string
}

func newRef() *refBook {
	return &refBook{bids: map[string]refLevel{}, asks: map[string]refLevel{}}
}

func (b *refBook) set(bid bool, p, q string) {
	m := b.asks
	if bid {
		m = b.bids
	}
	pd, qd := decimal.RequireFromString(p), decimal.RequireFromString(q)
	if qd.IsZero() {
		delete(m, pd.String())
		return
	}
	m[pd.String()] = refLevel{price: pd, qty: qd, priceText: p, qtyText: q}
}

// sorted returns a side best first.
func (b *refBook) sorted(bid bool) []refLevel {
	m := b.asks
	if bid {
		m = b.bids
	}
	out := make([]refLevel, 0, len(m))
	for _, l := range m {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool {
		if bid {
			return out[i].price.GreaterThan(out[j].price)
		}
		return out[i].price.LessThan(out[j].price)
	})
	return out
}

func (b *refBook) truncate(depth int) {
	for _, bid := range []bool{true, false} {
		if (bid && len(b.bids) <= depth) || (!bid && len(b.asks) <= depth) {
			continue
		}
		s := b.sorted(bid)
		for _, l := range s[min(depth, len(s)):] {
			if bid {
				delete(b.bids, l.price.String())
			} else {
				delete(b.asks, l.price.String())
			}
		}
	}
}

// top10 returns the best ten levels of a side, best first, by selection.
func (b *refBook) top10(bid bool) []refLevel {
	m := b.asks
	if bid {
		m = b.bids
	}
	better := func(x, y refLevel) bool {
		if bid {
			return x.price.GreaterThan(y.price)
		}
		return x.price.LessThan(y.price)
	}
	var top []refLevel
	for _, l := range m {
		i := len(top)
		for i > 0 && better(l, top[i-1]) {
			i--
		}
		if i >= 10 {
			continue
		}
		top = append(top[:i], append([]refLevel{l}, top[i:]...)...)
		if len(top) > 10 {
			top = top[:10]
		}
	}
	return top
}

// checksum follows Kraken's documented recipe on the wire text.
func (b *refBook) checksum() uint32 {
	var sb strings.Builder
	for _, bid := range []bool{false, true} {
		for _, l := range b.top10(bid) {
			sb.WriteString(strings.TrimLeft(strings.ReplaceAll(l.priceText, ".", ""), "0"))
			sb.WriteString(strings.TrimLeft(strings.ReplaceAll(l.qtyText, ".", ""), "0"))
		}
	}
	return crc32.ChecksumIEEE([]byte(sb.String()))
}

// reference rebuilds every book of a capture and returns them by symbol, with the
// number of checksums verified (Kraken). It fails the test on any inconsistency.
func reference(t *testing.T, path string) (map[string]*refBook, int) {
	t.Helper()
	if c, ok := refCache[path]; ok {
		return c.books, c.checksums
	}
	books, sums := buildReference(t, path)
	refCache[path] = refEntry{books, sums}
	return books, sums
}

// refCache keeps the references of the unmodified captures (tests only read them).
var refCache = map[string]refEntry{}

type refEntry struct {
	books     map[string]*refBook
	checksums int
}

func buildReference(t *testing.T, path string) (map[string]*refBook, int) {
	t.Helper()
	r, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.SetHTTP(true)
	books := map[string]*refBook{}
	get := func(sym string) *refBook {
		if books[sym] == nil {
			books[sym] = newRef()
		}
		return books[sym]
	}
	ex := capture.ExchangeOf(r.Header().Exchange)
	checksums := 0
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case rec.Type == capture.TypeHTTP && strings.Contains(rec.Addr, "/api/v3/depth"):
			u, _ := url.Parse(rec.Addr)
			sym, err := binance.SplitSymbol(u.Query().Get("symbol"))
			if err != nil {
				t.Fatal(err)
			}
			var snap struct {
				LastUpdateID int64      `json:"lastUpdateId"`
				Bids         [][]string `json:"bids"`
				Asks         [][]string `json:"asks"`
			}
			mustJSON(t, rec.Data, &snap)
			b := get(string(sym))
			b.bids, b.asks = map[string]refLevel{}, map[string]refLevel{}
			for _, l := range snap.Bids {
				b.set(true, l[0], l[1])
			}
			for _, l := range snap.Asks {
				b.set(false, l[0], l[1])
			}
			b.live, b.lastID, b.needFirst = true, snap.LastUpdateID, true
			for _, d := range b.pending {
				b.binanceApply(t, d)
			}
			b.pending = nil
		case rec.Type != capture.TypeRecv:
		case ex == "binance" || ex == "binanceus":
			var m struct {
				Data struct {
					E    string     `json:"e"`
					ET   int64      `json:"E"`
					S    string     `json:"s"`
					U0   int64      `json:"U"`
					U1   int64      `json:"u"`
					Bids [][]string `json:"b"`
					Asks [][]string `json:"a"`
				} `json:"data"`
			}
			if !strings.Contains(string(rec.Data), `"depthUpdate"`) {
				continue
			}
			mustJSON(t, rec.Data, &m)
			sym, err := binance.SplitSymbol(m.Data.S)
			if err != nil {
				t.Fatal(err)
			}
			b := get(string(sym))
			d := binanceDiff{first: m.Data.U0, last: m.Data.U1, bids: m.Data.Bids, asks: m.Data.Asks}
			if !b.live {
				b.pending = append(b.pending, d)
				continue
			}
			b.binanceApply(t, d)
		case ex == "coinbase":
			var m struct {
				Type    string     `json:"type"`
				Product string     `json:"product_id"`
				Bids    [][]string `json:"bids"`
				Asks    [][]string `json:"asks"`
				Changes [][]string `json:"changes"`
			}
			mustJSON(t, rec.Data, &m)
			switch m.Type {
			case "snapshot":
				b := newRef()
				books[m.Product] = b
				for _, l := range m.Bids {
					b.set(true, l[0], l[1])
				}
				for _, l := range m.Asks {
					b.set(false, l[0], l[1])
				}
				b.live = true
			case "l2update":
				b := get(m.Product)
				if !b.live {
					t.Fatalf("update before snapshot for %s", m.Product)
				}
				for _, c := range m.Changes {
					b.set(c[0] == "buy", c[1], c[2])
				}
			}
		case ex == "kraken":
			if len(rec.Data) == 0 || rec.Data[0] != '[' {
				continue
			}
			var arr []json.RawMessage
			mustJSON(t, rec.Data, &arr)
			var name, pair string
			mustJSON(t, arr[len(arr)-2], &name)
			mustJSON(t, arr[len(arr)-1], &pair)
			if !strings.HasPrefix(name, "book-") {
				continue
			}
			var depth int
			fmt.Sscanf(name, "book-%d", &depth)
			sym, err := kraken.Symbol(pair)
			if err != nil {
				t.Fatal(err)
			}
			b := get(string(sym))
			sum := ""
			for _, p := range arr[1 : len(arr)-2] {
				var o map[string]json.RawMessage
				mustJSON(t, p, &o)
				if _, ok := o["as"]; ok {
					b = newRef()
					books[string(sym)] = b
					b.live = true
				}
				for key, raw := range o {
					if key == "c" {
						mustJSON(t, raw, &sum)
					}
				}
				for _, key := range []string{"as", "bs", "a", "b"} {
					raw, ok := o[key]
					if !ok {
						continue
					}
					var levels [][]string
					mustJSON(t, raw, &levels)
					for _, l := range levels {
						b.set(key[0] == 'b', l[0], l[1])
					}
				}
			}
			b.truncate(depth)
			if sum != "" {
				if got := fmt.Sprint(b.checksum()); got != sum {
					t.Fatalf("reference: %s checksum %s, want %s", sym, got, sum)
				}
				checksums++
			}
		}
	}
	return books, checksums
}

// binanceApply applies a diff by Binance's documented rules; the capture is known
// good, so any violation fails the test.
func (b *refBook) binanceApply(t *testing.T, d binanceDiff) {
	t.Helper()
	if d.last <= b.lastID {
		return
	}
	if b.needFirst {
		if !(d.first <= b.lastID+1 && b.lastID+1 <= d.last) {
			t.Fatalf("reference: first diff %d..%d does not cover %d", d.first, d.last, b.lastID+1)
		}
		b.needFirst = false
	} else if d.first != b.lastID+1 {
		t.Fatalf("reference: gap: %d after %d", d.first, b.lastID)
	}
	for _, l := range d.bids {
		b.set(true, l[0], l[1])
	}
	for _, l := range d.asks {
		b.set(false, l[0], l[1])
	}
	b.lastID = d.last
}

func mustJSON(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%v: %.200s", err, data)
	}
}
