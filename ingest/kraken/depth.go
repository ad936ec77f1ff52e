package kraken

import (
	"strings"
	"time"

	"github.com/tickstash/tickstash/book"
	"github.com/tickstash/tickstash/ingest/wsfeed"
	"github.com/tickstash/tickstash/ingest/wsfeed/wire"
	"github.com/tickstash/tickstash/market"
)

// DepthDecoder decodes Kraken's book channel, v1 ([channelID, {"as","bs"} |
// {"a"},{"b","c"}, "book-N", pair]) and v2 ({"channel":"book","type":"snapshot"|
// "update","data":[...]}), into book.Depth records for a book.Syncer with
// book.RulesKraken. Each update carries Kraken's checksum of the top 10 levels and
// the depth the book must be truncated to. It is not safe for concurrent use.
type DepthDecoder struct {
	sc      wire.Scanner
	symbols map[string]market.Symbol
	elems   [8][]byte
	levels  []book.RawLevel
	spans   []depthSpan
	v2Depth int
	bad     error
}

type depthSpan struct {
	kind       book.Kind
	sym        []byte
	start, end int
	sum        uint32
	hasSum     bool
	t          time.Time
}

// NewDepthDecoder returns a Kraken depth decoder. v2Depth is the depth the v2 book
// subscription asked for (v2 messages do not repeat it; v1 names it in the channel);
// zero means Kraken's default, 10.
func NewDepthDecoder(v2Depth int) *DepthDecoder {
	if v2Depth <= 0 {
		v2Depth = 10
	}
	return &DepthDecoder{symbols: make(map[string]market.Symbol), v2Depth: v2Depth}
}

func (d *DepthDecoder) symbol(pair []byte) (market.Symbol, error) {
	if s, ok := d.symbols[string(pair)]; ok {
		return s, nil
	}
	s, err := Symbol(string(pair))
	if err != nil {
		return "", err
	}
	if len(d.symbols) < maxCachedSymbols {
		d.symbols[string(pair)] = s
	}
	return s, nil
}

// Decode appends the depth records of msg to dst; messages of other channels add
// nothing. A book message that does not decode returns a *wsfeed.DecodeError. The
// records' levels alias msg.
func (d *DepthDecoder) Decode(dst []book.Depth, msg []byte, recv time.Time) ([]book.Depth, error) {
	d.sc.Reset(msg)
	d.levels, d.spans, d.bad = d.levels[:0], d.spans[:0], nil
	switch d.sc.Peek() {
	case '[':
		return d.v1(dst, recv)
	case '{':
		return d.v2(dst, recv)
	}
	return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "want an object or an array")
}

func (d *DepthDecoder) v1(dst []book.Depth, recv time.Time) ([]book.Depth, error) {
	sc := &d.sc
	sc.Array()
	n := 0
	for sc.Next() {
		if n >= len(d.elems) {
			sc.Skip()
			n++
			continue
		}
		d.elems[n] = sc.Raw()
		n++
	}
	sc.End()
	if err := sc.Err(); err != nil {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "%v", err)
	}
	if n < 4 || n > len(d.elems) {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "v1 array of %d elements", n)
	}
	name, ok1 := unquote(d.elems[n-2])
	pair, ok2 := unquote(d.elems[n-1])
	if !ok1 || !ok2 {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "v1 channel name and pair must be strings")
	}
	depthText, isBook := strings.CutPrefix(string(name), "book-")
	if !isBook {
		return dst, nil
	}
	depth, ok := wire.ParseInt([]byte(depthText))
	if !ok || depth <= 0 {
		return dst, wsfeed.Errorf(wsfeed.ReasonField, "channel %.32q", name)
	}
	sym, err := d.symbol(pair)
	if err != nil {
		return dst, err
	}
	rec := book.Depth{Kind: book.Update, Symbol: sym, Time: recv, MaxDepth: int(depth)}
	snap, upd := false, false
	for _, payload := range d.elems[1 : n-2] {
		sc.Reset(payload)
		if !sc.Object() {
			return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "book payload: %v", sc.Err())
		}
		for key, ok := sc.Key(); ok; key, ok = sc.Key() {
			switch string(key) {
			case "as", "bs":
				snap = true
				d.v1Levels(sideOf(key[0]))
			case "a", "b":
				upd = true
				d.v1Levels(sideOf(key[0]))
			case "c":
				c, ok := wire.ParseInt(sc.Str())
				if !ok || c < 0 || c > 1<<32-1 {
					return dst, wsfeed.Errorf(wsfeed.ReasonField, "checksum")
				}
				rec.Checksum, rec.HasChecksum = uint32(c), true
			default:
				sc.Skip()
			}
		}
		if d.bad != nil {
			return dst, d.bad
		}
		if err := sc.Err(); err != nil {
			return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "book payload: %v", err)
		}
	}
	if snap == upd {
		return dst, wsfeed.Errorf(wsfeed.ReasonField, "book message is neither a snapshot nor an update")
	}
	if snap {
		rec.Kind = book.Snapshot
	}
	rec.Levels = d.levels
	return append(dst, rec), nil
}

func sideOf(c byte) book.Side {
	if c == 'a' {
		return book.Ask
	}
	return book.Bid
}

// v1Levels reads [[price, volume, timestamp(, "r")], ...].
func (d *DepthDecoder) v1Levels(side book.Side) {
	sc := &d.sc
	if !sc.Array() {
		return
	}
	for sc.Next() {
		if !sc.Array() {
			return
		}
		var v [2][]byte
		i := 0
		for sc.Next() {
			if i < 2 {
				v[i] = sc.Str()
			} else {
				sc.Skip()
			}
			i++
		}
		if sc.Err() != nil {
			return
		}
		if i < 3 {
			d.bad = wsfeed.Errorf(wsfeed.ReasonField, "book level of %d fields", i)
			return
		}
		d.levels = append(d.levels, book.RawLevel{Side: side, Price: v[0], Qty: v[1]})
	}
}

func (d *DepthDecoder) v2(dst []book.Depth, recv time.Time) ([]book.Depth, error) {
	sc := &d.sc
	sc.Object()
	var channel, typ, data []byte
	for key, ok := sc.Key(); ok; key, ok = sc.Key() {
		switch string(key) {
		case "channel":
			channel = sc.Str()
		case "type":
			typ = sc.Str()
		case "data":
			data = sc.Raw()
		default:
			sc.Skip()
		}
	}
	sc.End()
	if err := sc.Err(); err != nil {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "%v", err)
	}
	if string(channel) != "book" {
		return dst, nil
	}
	kind := book.Update
	switch string(typ) {
	case "snapshot":
		kind = book.Snapshot
	case "update":
	default:
		return dst, wsfeed.Errorf(wsfeed.ReasonType, "book type %.16q", typ)
	}
	sc.Reset(data)
	if !sc.Array() {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "data: %v", sc.Err())
	}
	for sc.Next() {
		if !sc.Object() {
			break
		}
		sp := depthSpan{kind: kind, start: len(d.levels), t: recv}
		var ts []byte
		for key, ok := sc.Key(); ok; key, ok = sc.Key() {
			switch string(key) {
			case "symbol":
				sp.sym = sc.Str()
			case "bids", "asks":
				d.v2Levels(sideOf(key[0]))
			case "checksum":
				c, ok := wire.ParseInt(sc.Number())
				if !ok || c < 0 || c > 1<<32-1 {
					return dst, wsfeed.Errorf(wsfeed.ReasonField, "checksum")
				}
				sp.sum, sp.hasSum = uint32(c), true
			case "timestamp":
				ts = sc.Str()
			default:
				sc.Skip()
			}
		}
		if d.bad != nil {
			return dst, d.bad
		}
		if sc.Err() != nil {
			break
		}
		if ts != nil {
			t, err := wire.RFC3339(ts)
			if err != nil {
				return dst, wsfeed.Errorf(wsfeed.ReasonTime, "timestamp %.40q", ts)
			}
			sp.t = t
		}
		sp.end = len(d.levels)
		d.spans = append(d.spans, sp)
	}
	if err := sc.Err(); err != nil {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "data: %v", err)
	}
	start := len(dst)
	for _, sp := range d.spans {
		sym, err := d.symbol(sp.sym)
		if err != nil {
			return dst[:start], err
		}
		dst = append(dst, book.Depth{Kind: sp.kind, Symbol: sym, Time: sp.t, Checksum: sp.sum,
			HasChecksum: sp.hasSum, MaxDepth: d.v2Depth, Levels: d.levels[sp.start:sp.end:sp.end]})
	}
	return dst, nil
}

// v2Levels reads [{"price":45285.2,"qty":0.001},...], the numbers as their text.
func (d *DepthDecoder) v2Levels(side book.Side) {
	sc := &d.sc
	if !sc.Array() {
		return
	}
	for sc.Next() {
		if !sc.Object() {
			return
		}
		var price, qty []byte
		for key, ok := sc.Key(); ok; key, ok = sc.Key() {
			switch string(key) {
			case "price":
				price = sc.NumOrStr()
			case "qty":
				qty = sc.NumOrStr()
			default:
				sc.Skip()
			}
		}
		if sc.Err() != nil {
			return
		}
		if price == nil || qty == nil {
			d.bad = wsfeed.Errorf(wsfeed.ReasonField, "book level without price or qty")
			return
		}
		d.levels = append(d.levels, book.RawLevel{Side: side, Price: price, Qty: qty})
	}
}
