package coinbase

import (
	"time"

	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/wsfeed"
	"github.com/tickstash/tickstash/ingest/wsfeed/wire"
	"github.com/tickstash/tickstash/market"
)

// ExchangeDecoder decodes the Coinbase Exchange ws-feed. It is not safe for concurrent
// use.
type ExchangeDecoder struct {
	sc      wire.Scanner
	symbols symbols
}

var _ wsfeed.Decoder = (*ExchangeDecoder)(nil)

// exchangeTrade: ids are integers, and side is the maker's: a resting buy order was
// hit, so the taker sold.
var exchangeTrade = tradeFormat{
	validID: func(id []byte) bool { _, ok := wire.ParseInt(id); return ok },
	taker: func(side []byte) (market.Side, bool) {
		switch string(side) {
		case "buy":
			return market.Sell, true
		case "sell":
			return market.Buy, true
		}
		return market.SideUnknown, false
	},
}

// NewExchangeDecoder returns a decoder for the Coinbase Exchange ws-feed.
func NewExchangeDecoder() *ExchangeDecoder { return &ExchangeDecoder{symbols: make(symbols)} }

// Exchange returns market.Coinbase.
func (d *ExchangeDecoder) Exchange() market.Exchange { return market.Coinbase }

// Decode implements wsfeed.Decoder.
func (d *ExchangeDecoder) Decode(dst []ingest.Draft, msg []byte, recv time.Time) ([]ingest.Draft, error) {
	sc := &d.sc
	sc.Reset(msg)
	if !sc.Object() {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "%v", sc.Err())
	}
	var typ, tradeID, side, size, price, product, ts, bid, ask, bidSize, askSize, message []byte
	for key, ok := sc.Key(); ok; key, ok = sc.Key() {
		switch string(key) {
		case "type":
			typ = sc.Str()
		case "trade_id":
			tradeID = sc.NumOrStr()
		case "side":
			side = sc.Str()
		case "size":
			size = sc.Str()
		case "price":
			price = sc.Str()
		case "product_id":
			product = sc.Str()
		case "time":
			ts = sc.Str()
		case "best_bid":
			bid = sc.Str()
		case "best_ask":
			ask = sc.Str()
		case "best_bid_size":
			bidSize = sc.Str()
		case "best_ask_size":
			askSize = sc.Str()
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
	switch string(typ) {
	case "match", "last_match":
		return d.match(dst, recv, tradeID, side, size, price, product, ts)
	case "ticker":
		return d.ticker(dst, recv, product, ts, bid, bidSize, ask, askSize)
	case "subscriptions", "heartbeat", "l2update", "snapshot", "status",
		"received", "open", "done", "change", "activate":
		return dst, nil
	case "error":
		return dst, wsfeed.Errorf(wsfeed.ReasonType, "error message: %.100q", message)
	}
	return dst, wsfeed.Errorf(wsfeed.ReasonType, "type %.32q", typ)
}

func (d *ExchangeDecoder) match(dst []ingest.Draft, recv time.Time, tradeID, side, size, price, product, ts []byte) ([]ingest.Draft, error) {
	ev, err := d.symbols.trade(exchangeTrade, product, tradeID, price, size, ts, side, recv)
	if err != nil {
		return dst, err
	}
	return append(dst, ev), nil
}

func (d *ExchangeDecoder) ticker(dst []ingest.Draft, recv time.Time, product, ts, bid, bidSize, ask, askSize []byte) ([]ingest.Draft, error) {
	sym, err := d.symbols.lookup(product)
	if err != nil {
		return dst, err
	}
	at := recv
	if ts != nil {
		if at, err = wire.RFC3339(ts); err != nil {
			return dst, wsfeed.Errorf(wsfeed.ReasonTime, "time %.40q", ts)
		}
	}
	// Sizes arrived in the feed in 2022; older tickers (and captures) have none, and
	// their quotes carry zero sizes.
	ev, err := quote(sym, at, recv, bid, ask, bidSize, askSize, [2]string{"best_bid_size", "best_ask_size"})
	if err != nil {
		return dst, err
	}
	return append(dst, ev), nil
}
