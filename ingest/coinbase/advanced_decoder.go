package coinbase

import (
	"time"

	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/wsfeed"
	"github.com/tickstash/tickstash/ingest/wsfeed/wire"
	"github.com/tickstash/tickstash/market"
)

// AdvancedDecoder decodes the Coinbase Advanced Trade market data feed. It is not safe
// for concurrent use.
type AdvancedDecoder struct {
	sc      wire.Scanner
	symbols symbols
}

var _ wsfeed.Decoder = (*AdvancedDecoder)(nil)

// advancedTrade: ids are opaque (up to 64 bytes), and side is the taker's, upper case.
var advancedTrade = tradeFormat{
	validID: func(id []byte) bool { return len(id) > 0 && len(id) <= 64 },
	taker: func(side []byte) (market.Side, bool) {
		switch string(side) {
		case "BUY":
			return market.Buy, true
		case "SELL":
			return market.Sell, true
		}
		return market.SideUnknown, false
	},
}

// NewAdvancedDecoder returns a decoder for the Coinbase Advanced Trade feed.
func NewAdvancedDecoder() *AdvancedDecoder { return &AdvancedDecoder{symbols: make(symbols)} }

// Exchange returns market.Coinbase.
func (d *AdvancedDecoder) Exchange() market.Exchange { return market.Coinbase }

// Decode implements wsfeed.Decoder.
func (d *AdvancedDecoder) Decode(dst []ingest.Draft, msg []byte, recv time.Time) ([]ingest.Draft, error) {
	sc := &d.sc
	sc.Reset(msg)
	if !sc.Object() {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "%v", sc.Err())
	}
	var channel, ts, events, typ, message []byte
	for key, ok := sc.Key(); ok; key, ok = sc.Key() {
		switch string(key) {
		case "channel":
			channel = sc.Str()
		case "timestamp":
			ts = sc.Str()
		case "events":
			events = sc.Raw()
		case "type":
			typ = sc.Str()
		case "message":
			message, _ = sc.StrOrNull()
		default:
			sc.Skip()
		}
	}
	sc.End()
	if err := sc.Err(); err != nil {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "%v", err)
	}
	switch string(channel) {
	case "market_trades":
		return d.events(dst, recv, events, nil, true)
	case "ticker", "ticker_batch":
		msgTime := recv
		if ts != nil {
			t, err := wire.RFC3339(ts)
			if err != nil {
				return dst, wsfeed.Errorf(wsfeed.ReasonTime, "timestamp %.40q", ts)
			}
			msgTime = t
		}
		return d.events(dst, recv, events, &msgTime, false)
	case "heartbeats", "subscriptions", "status", "l2_data", "candles", "level2":
		return dst, nil
	case "":
		if string(typ) == "error" {
			return dst, wsfeed.Errorf(wsfeed.ReasonType, "error message: %.100q", message)
		}
	}
	return dst, wsfeed.Errorf(wsfeed.ReasonType, "channel %.32q", channel)
}

// events walks "events":[{"type":..,"trades":[..]}] or [{"type":..,"tickers":[..]}].
func (d *AdvancedDecoder) events(dst []ingest.Draft, recv time.Time, events []byte, msgTime *time.Time, trades bool) ([]ingest.Draft, error) {
	if events == nil {
		return dst, wsfeed.Errorf(wsfeed.ReasonField, "no events")
	}
	sc := &d.sc
	sc.Reset(events)
	start := len(dst)
	var err error
	if !sc.Array() {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "events: %v", sc.Err())
	}
	for sc.Next() {
		if !sc.Object() {
			break
		}
		for key, ok := sc.Key(); ok; key, ok = sc.Key() {
			switch {
			case trades && string(key) == "trades":
				dst, err = d.trades(dst, recv)
			case !trades && string(key) == "tickers":
				dst, err = d.tickers(dst, recv, *msgTime)
			default:
				sc.Skip()
			}
			if err != nil {
				return dst[:start], err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return dst[:start], wsfeed.Errorf(wsfeed.ReasonJSON, "events: %v", err)
	}
	return dst, nil
}

func (d *AdvancedDecoder) trades(dst []ingest.Draft, recv time.Time) ([]ingest.Draft, error) {
	sc := &d.sc
	if !sc.Array() {
		return dst, nil // the scanner error is reported by the caller
	}
	for sc.Next() {
		var id, product, price, size, side, ts []byte
		if !sc.Object() {
			return dst, nil
		}
		for key, ok := sc.Key(); ok; key, ok = sc.Key() {
			switch string(key) {
			case "trade_id":
				id = sc.NumOrStr()
			case "product_id":
				product = sc.Str()
			case "price":
				price = sc.Str()
			case "size":
				size = sc.Str()
			case "side":
				side = sc.Str()
			case "time":
				ts = sc.Str()
			default:
				sc.Skip()
			}
		}
		if sc.Err() != nil {
			return dst, nil
		}
		ev, err := d.symbols.trade(advancedTrade, product, id, price, size, ts, side, recv)
		if err != nil {
			return dst, err
		}
		dst = append(dst, ev)
	}
	return dst, nil
}

func (d *AdvancedDecoder) tickers(dst []ingest.Draft, recv, msgTime time.Time) ([]ingest.Draft, error) {
	sc := &d.sc
	if !sc.Array() {
		return dst, nil
	}
	for sc.Next() {
		var product, bid, bidQty, ask, askQty []byte
		if !sc.Object() {
			return dst, nil
		}
		for key, ok := sc.Key(); ok; key, ok = sc.Key() {
			switch string(key) {
			case "product_id":
				product = sc.Str()
			case "best_bid":
				bid = sc.Str()
			case "best_bid_quantity":
				bidQty = sc.Str()
			case "best_ask":
				ask = sc.Str()
			case "best_ask_quantity":
				askQty = sc.Str()
			default:
				sc.Skip()
			}
		}
		if sc.Err() != nil {
			return dst, nil
		}
		sym, err := d.symbols.lookup(product)
		if err != nil {
			return dst, err
		}
		ev, err := quote(sym, msgTime, recv, bid, ask, bidQty, askQty, [2]string{"best_bid_quantity", "best_ask_quantity"})
		if err != nil {
			return dst, err
		}
		dst = append(dst, ev)
	}
	return dst, nil
}
