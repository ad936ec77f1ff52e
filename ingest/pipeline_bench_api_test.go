package ingest_test

import (
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/market"
)

func benchTradeEvent(t market.Trade) ingest.Event {
	return ingest.Event{Kind: ingest.KindTrade, Trade: t}
}

func benchQuoteEvent(q market.Quote) ingest.Event {
	return ingest.Event{Kind: ingest.KindQuote, Quote: q}
}

func benchIsTrade(ev ingest.Event) bool { return ev.Kind == ingest.KindTrade }
