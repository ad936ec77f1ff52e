package ingest_test

import (
	"strconv"

	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/market"
)

// tradeEvent returns the Event of a trade the test knows to be valid.
func tradeEvent(t market.Trade) ingest.Event {
	ev, err := ingest.NewTradeEvent(t)
	if err != nil {
		panic(err)
	}
	return ev
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func itoa(i int) string { return strconv.Itoa(i) }
