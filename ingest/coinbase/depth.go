package coinbase

import (
	"time"

	"github.com/tickstash/tickstash/book"
	"github.com/tickstash/tickstash/ingest/wsfeed"
	"github.com/tickstash/tickstash/ingest/wsfeed/wire"
)

// ExchangeDepthDecoder decodes the Coinbase Exchange level2 channel ("snapshot" and
// "l2update"; "level2_batch" sends the same messages) into book.Depth records for a
// book.Syncer with book.RulesCoinbase. It is not safe for concurrent use.
type ExchangeDepthDecoder struct {
	sc      wire.Scanner
	symbols symbols
	levels  []book.RawLevel
	bad     error // a field error met while reading levels
}

// NewExchangeDepthDecoder returns a level2 decoder for the Coinbase Exchange feed.
func NewExchangeDepthDecoder() *ExchangeDepthDecoder {
	return &ExchangeDepthDecoder{symbols: make(symbols)}
}

// Decode appends the depth record of msg to dst. Messages of other types add nothing;
// a level2 message that does not decode returns a *wsfeed.DecodeError. The record's
// levels alias msg.
func (d *ExchangeDepthDecoder) Decode(dst []book.Depth, msg []byte, recv time.Time) ([]book.Depth, error) {
	sc := &d.sc
	sc.Reset(msg)
	if !sc.Object() {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "%v", sc.Err())
	}
	d.levels, d.bad = d.levels[:0], nil
	var typ, product, ts []byte
	for key, ok := sc.Key(); ok; key, ok = sc.Key() {
		switch string(key) {
		case "type":
			typ = sc.Str()
			if string(typ) != "snapshot" && string(typ) != "l2update" {
				return dst, nil
			}
		case "product_id":
			product = sc.Str()
		case "time":
			ts = sc.Str()
		case "bids", "asks":
			side := book.Bid
			if key[0] == 'a' {
				side = book.Ask
			}
			d.pairs(side)
		case "changes":
			d.changes()
		default:
			sc.Skip()
		}
	}
	sc.End()
	if d.bad != nil {
		return dst, d.bad
	}
	if err := sc.Err(); err != nil {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "%v", err)
	}
	kind := book.Update
	switch string(typ) {
	case "snapshot":
		kind = book.Snapshot
	case "l2update":
	default:
		return dst, nil
	}
	sym, err := d.symbols.lookup(product)
	if err != nil {
		return dst, err
	}
	t := recv
	if ts != nil {
		if t, err = wire.RFC3339(ts); err != nil {
			return dst, wsfeed.Errorf(wsfeed.ReasonTime, "time %.40q", ts)
		}
	}
	return append(dst, book.Depth{Kind: kind, Symbol: sym, Time: t, Levels: d.levels}), nil
}

// pairs reads a snapshot side: [["price","size"],...].
func (d *ExchangeDepthDecoder) pairs(side book.Side) {
	sc := &d.sc
	if !sc.Array() {
		return
	}
	for sc.Next() {
		var v [2][]byte
		if !d.readStrings(v[:]) {
			return
		}
		d.levels = append(d.levels, book.RawLevel{Side: side, Price: v[0], Qty: v[1]})
	}
}

// changes reads l2update changes: [["buy"|"sell","price","size"],...].
func (d *ExchangeDepthDecoder) changes() {
	sc := &d.sc
	if !sc.Array() {
		return
	}
	for sc.Next() {
		var v [3][]byte
		if !d.readStrings(v[:]) {
			return
		}
		var side book.Side
		switch string(v[0]) {
		case "buy":
			side = book.Bid
		case "sell":
			side = book.Ask
		default:
			d.bad = wsfeed.Errorf(wsfeed.ReasonField, "change side %.16q", v[0])
			return
		}
		d.levels = append(d.levels, book.RawLevel{Side: side, Price: v[1], Qty: v[2]})
	}
}

// readStrings reads an array of at least len(v) strings or numbers into v, skipping
// any more; false (with an error recorded) when it is not one.
func (d *ExchangeDepthDecoder) readStrings(v [][]byte) bool {
	sc := &d.sc
	if !sc.Array() {
		return false
	}
	i := 0
	for sc.Next() {
		if i < len(v) {
			v[i] = sc.NumOrStr()
		} else {
			sc.Skip()
		}
		i++
	}
	if sc.Err() != nil {
		return false
	}
	if i < len(v) {
		d.bad = wsfeed.Errorf(wsfeed.ReasonField, "level of %d fields, want %d", i, len(v))
		return false
	}
	return true
}

// AdvancedDepthDecoder decodes the Coinbase Advanced Trade level2 channel (channel
// "l2_data", events "snapshot" and "update") into book.Depth records for a
// book.Syncer with book.RulesCoinbaseAdvanced. Every message of the connection must
// pass through it: sequence_num counts the messages of all channels, so messages of
// other channels yield a book.Sequence record carrying only that number. It is not
// safe for concurrent use.
type AdvancedDepthDecoder struct {
	sc      wire.Scanner
	symbols symbols
	levels  []book.RawLevel
	spans   []span
	bad     error
}

type span struct {
	kind       book.Kind
	product    []byte
	start, end int
	t          time.Time
}

// NewAdvancedDepthDecoder returns a level2 decoder for Coinbase Advanced Trade.
func NewAdvancedDepthDecoder() *AdvancedDepthDecoder {
	return &AdvancedDepthDecoder{symbols: make(symbols)}
}

// Decode appends the records of msg to dst: one per l2_data event, or one
// book.Sequence record for a message of another channel. All carry the message's
// sequence_num in First and Last; a message without one adds nothing. The records'
// levels alias msg.
func (d *AdvancedDepthDecoder) Decode(dst []book.Depth, msg []byte, recv time.Time) ([]book.Depth, error) {
	sc := &d.sc
	sc.Reset(msg)
	if !sc.Object() {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "%v", sc.Err())
	}
	var channel, ts, seq, events []byte
	for key, ok := sc.Key(); ok; key, ok = sc.Key() {
		switch string(key) {
		case "channel":
			channel = sc.Str()
		case "timestamp":
			ts = sc.Str()
		case "sequence_num":
			seq = sc.Number()
		case "events":
			events = sc.Raw()
		default:
			sc.Skip()
		}
	}
	sc.End()
	if err := sc.Err(); err != nil {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "%v", err)
	}
	if seq == nil {
		return dst, nil // an error reply or a message outside the sequence
	}
	n, ok := wire.ParseInt(seq)
	if !ok || n < 0 {
		return dst, wsfeed.Errorf(wsfeed.ReasonField, "sequence_num %.24q", seq)
	}
	t := recv
	if ts != nil {
		var err error
		if t, err = wire.RFC3339(ts); err != nil {
			return dst, wsfeed.Errorf(wsfeed.ReasonTime, "timestamp %.40q", ts)
		}
	}
	if string(channel) != "l2_data" {
		return append(dst, book.Depth{Kind: book.Sequence, Time: t, First: n, Last: n}), nil
	}
	if err := d.events(events, t); err != nil {
		return dst, err
	}
	start := len(dst)
	for _, sp := range d.spans {
		sym, err := d.symbols.lookup(sp.product)
		if err != nil {
			return dst[:start], err
		}
		dst = append(dst, book.Depth{Kind: sp.kind, Symbol: sym, Time: sp.t, First: n, Last: n,
			Levels: d.levels[sp.start:sp.end:sp.end]})
	}
	if len(d.spans) == 0 {
		dst = append(dst, book.Depth{Kind: book.Sequence, Time: t, First: n, Last: n})
	}
	return dst, nil
}

func (d *AdvancedDepthDecoder) events(events []byte, t time.Time) error {
	sc := &d.sc
	sc.Reset(events)
	d.levels, d.spans, d.bad = d.levels[:0], d.spans[:0], nil
	if !sc.Array() {
		return wsfeed.Errorf(wsfeed.ReasonJSON, "events: %v", sc.Err())
	}
	for sc.Next() {
		if !sc.Object() {
			break
		}
		sp := span{start: len(d.levels), t: t}
		var typ []byte
		for key, ok := sc.Key(); ok; key, ok = sc.Key() {
			switch string(key) {
			case "type":
				typ = sc.Str()
			case "product_id":
				sp.product = sc.Str()
			case "updates":
				d.updates()
			default:
				sc.Skip()
			}
		}
		if d.bad != nil {
			return d.bad
		}
		if sc.Err() != nil {
			break
		}
		switch string(typ) {
		case "snapshot":
			sp.kind = book.Snapshot
		case "update":
			sp.kind = book.Update
		default:
			return wsfeed.Errorf(wsfeed.ReasonType, "l2_data event type %.32q", typ)
		}
		sp.end = len(d.levels)
		d.spans = append(d.spans, sp)
	}
	if err := sc.Err(); err != nil {
		return wsfeed.Errorf(wsfeed.ReasonJSON, "events: %v", err)
	}
	return nil
}

// updates reads [{"side":"bid"|"offer","price_level":"..","new_quantity":".."},...].
func (d *AdvancedDepthDecoder) updates() {
	sc := &d.sc
	if !sc.Array() {
		return
	}
	for sc.Next() {
		if !sc.Object() {
			return
		}
		var side, price, qty []byte
		for key, ok := sc.Key(); ok; key, ok = sc.Key() {
			switch string(key) {
			case "side":
				side = sc.Str()
			case "price_level":
				price = sc.NumOrStr()
			case "new_quantity":
				qty = sc.NumOrStr()
			default:
				sc.Skip()
			}
		}
		if sc.Err() != nil {
			return
		}
		if price == nil || qty == nil {
			d.bad = wsfeed.Errorf(wsfeed.ReasonField, "update without price_level or new_quantity")
			return
		}
		l := book.RawLevel{Price: price, Qty: qty}
		switch string(side) {
		case "bid":
			l.Side = book.Bid
		case "offer", "ask":
			l.Side = book.Ask
		default:
			d.bad = wsfeed.Errorf(wsfeed.ReasonField, "update side %.16q", side)
			return
		}
		d.levels = append(d.levels, l)
	}
}
