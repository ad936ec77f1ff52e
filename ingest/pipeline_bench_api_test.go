package ingest_test

import (
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/market"
)

func benchTradeEvent(t market.Trade) ingest.Event {
	ev, err := ingest.NewTradeEvent(t)
	if err != nil {
		panic(err)
	}
	return ev
}

func benchQuoteEvent(q market.Quote) ingest.Event {
	ev, err := ingest.NewQuoteEvent(q)
	if err != nil {
		panic(err)
	}
	return ev
}

func benchIsTrade(ev ingest.Event) bool { return ev.Kind() == ingest.KindTrade }
