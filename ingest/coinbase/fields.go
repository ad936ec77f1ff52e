package coinbase

import (
	"time"

	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/wsfeed"
	"github.com/tickstash/tickstash/ingest/wsfeed/wire"
	"github.com/tickstash/tickstash/market"
)

// tradeFormat is what differs between the two feeds' trade messages.
type tradeFormat struct {
	// validID reports whether a trade id is acceptable.
	validID func(id []byte) bool
	// taker turns the message's side into the taker's side; false if it is not a side.
	taker func(side []byte) (market.Side, bool)
}

// trade decodes a trade's raw fields into an event, checking them in a fixed order
// (symbol, id, price, size, time, side) so that an error names the first bad field.
func (m symbols) trade(f tradeFormat, product, id, price, size, ts, side []byte, recv time.Time) (ingest.Draft, error) {
	sym, err := m.lookup(product)
	if err != nil {
		return ingest.Draft{}, err
	}
	if !f.validID(id) {
		return ingest.Draft{}, wsfeed.Errorf(wsfeed.ReasonField, "trade_id %.32q", id)
	}
	p, err := wire.Decimal(price)
	if err != nil {
		return ingest.Draft{}, wsfeed.Errorf(wsfeed.ReasonNumber, "price %.32q", price)
	}
	q, err := wire.Decimal(size)
	if err != nil {
		return ingest.Draft{}, wsfeed.Errorf(wsfeed.ReasonNumber, "size %.32q", size)
	}
	t, err := wire.RFC3339(ts)
	if err != nil {
		return ingest.Draft{}, wsfeed.Errorf(wsfeed.ReasonTime, "time %.40q", ts)
	}
	taker, ok := f.taker(side)
	if !ok {
		return ingest.Draft{}, wsfeed.Errorf(wsfeed.ReasonField, "side %.16q", side)
	}
	return ingest.Draft{Kind: ingest.KindTrade, Trade: market.Trade{
		Exchange: market.Coinbase, Symbol: sym, ID: string(id), Price: p, Qty: q,
		Side: taker, Time: t, ReceivedAt: recv,
	}}, nil
}

// quote decodes a ticker's best bid and ask, and their sizes when the message has them
// (nil: the feed sent none, and the sizes stay zero). sizeNames are the two size
// fields' names in this feed, for errors.
func quote(sym market.Symbol, at, recv time.Time, bid, ask, bidSize, askSize []byte, sizeNames [2]string) (ingest.Draft, error) {
	q := market.Quote{Exchange: market.Coinbase, Symbol: sym, Time: at, ReceivedAt: recv}
	var err error
	if q.Bid, err = wire.Decimal(bid); err != nil {
		return ingest.Draft{}, wsfeed.Errorf(wsfeed.ReasonNumber, "best_bid %.32q", bid)
	}
	if q.Ask, err = wire.Decimal(ask); err != nil {
		return ingest.Draft{}, wsfeed.Errorf(wsfeed.ReasonNumber, "best_ask %.32q", ask)
	}
	if bidSize != nil {
		if q.BidQty, err = wire.Decimal(bidSize); err != nil {
			return ingest.Draft{}, wsfeed.Errorf(wsfeed.ReasonNumber, "%s %.32q", sizeNames[0], bidSize)
		}
	}
	if askSize != nil {
		if q.AskQty, err = wire.Decimal(askSize); err != nil {
			return ingest.Draft{}, wsfeed.Errorf(wsfeed.ReasonNumber, "%s %.32q", sizeNames[1], askSize)
		}
	}
	return ingest.Draft{Kind: ingest.KindQuote, Quote: q}, nil
}
