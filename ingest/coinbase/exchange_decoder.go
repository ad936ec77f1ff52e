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

// NewExchangeDecoder returns a decoder for the Coinbase Exchange ws-feed.
func NewExchangeDecoder() *ExchangeDecoder { return &ExchangeDecoder{symbols: make(symbols)} }

// Exchange returns market.Coinbase.
func (d *ExchangeDecoder) Exchange() market.Exchange { return market.Coinbase }

// Decode implements wsfeed.Decoder.
func (d *ExchangeDecoder) Decode(dst []ingest.Event, msg []byte, recv time.Time) ([]ingest.Event, error) {
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

func (d *ExchangeDecoder) match(dst []ingest.Event, recv time.Time, tradeID, side, size, price, product, ts []byte) ([]ingest.Event, error) {
	sym, err := d.symbols.lookup(product)
	if err != nil {
		return dst, err
	}
	if _, ok := wire.ParseInt(tradeID); !ok {
		return dst, wsfeed.Errorf(wsfeed.ReasonField, "trade_id %.32q", tradeID)
	}
	p, err := wire.Decimal(price)
	if err != nil {
		return dst, wsfeed.Errorf(wsfeed.ReasonNumber, "price %.32q", price)
	}
	q, err := wire.Decimal(size)
	if err != nil {
		return dst, wsfeed.Errorf(wsfeed.ReasonNumber, "size %.32q", size)
	}
	t, err := wire.RFC3339(ts)
	if err != nil {
		return dst, wsfeed.Errorf(wsfeed.ReasonTime, "time %.40q", ts)
	}
	var taker market.Side
	switch string(side) {
	case "buy":
		taker = market.Sell // a resting buy order was hit: the taker sold
	case "sell":
		taker = market.Buy
	default:
		return dst, wsfeed.Errorf(wsfeed.ReasonField, "side %.16q", side)
	}
	return append(dst, ingest.Event{Kind: ingest.KindTrade, Trade: market.Trade{
		Exchange: market.Coinbase, Symbol: sym, ID: string(tradeID), Price: p, Qty: q,
		Side: taker, Time: t, ReceivedAt: recv,
	}}), nil
}

func (d *ExchangeDecoder) ticker(dst []ingest.Event, recv time.Time, product, ts, bid, bidSize, ask, askSize []byte) ([]ingest.Event, error) {
	sym, err := d.symbols.lookup(product)
	if err != nil {
		return dst, err
	}
	q := market.Quote{Exchange: market.Coinbase, Symbol: sym, Time: recv, ReceivedAt: recv}
	if ts != nil {
		if q.Time, err = wire.RFC3339(ts); err != nil {
			return dst, wsfeed.Errorf(wsfeed.ReasonTime, "time %.40q", ts)
		}
	}
	if q.Bid, err = wire.Decimal(bid); err != nil {
		return dst, wsfeed.Errorf(wsfeed.ReasonNumber, "best_bid %.32q", bid)
	}
	if q.Ask, err = wire.Decimal(ask); err != nil {
		return dst, wsfeed.Errorf(wsfeed.ReasonNumber, "best_ask %.32q", ask)
	}
	// Sizes arrived in the feed in 2022; older tickers (and captures) have none, and
	// their quotes carry zero sizes.
	if bidSize != nil {
		if q.BidQty, err = wire.Decimal(bidSize); err != nil {
			return dst, wsfeed.Errorf(wsfeed.ReasonNumber, "best_bid_size %.32q", bidSize)
		}
	}
	if askSize != nil {
		if q.AskQty, err = wire.Decimal(askSize); err != nil {
			return dst, wsfeed.Errorf(wsfeed.ReasonNumber, "best_ask_size %.32q", askSize)
		}
	}
	return append(dst, ingest.Event{Kind: ingest.KindQuote, Quote: q}), nil
}
