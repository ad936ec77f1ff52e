package capture

import (
	"strings"

	"github.com/tickstash/tickstash/market"
)

var headerNames = map[market.Exchange]string{
	market.Binance:   "BINANCE",
	market.BinanceUS: "BINANCE_US",
	market.Coinbase:  "COINBASE",
	market.Kraken:    "KRAKEN",
}

// HeaderName returns the name a capture header uses for ex: cryptofeed's upper-case
// name for the exchanges it knows, ex in upper case otherwise.
func HeaderName(ex market.Exchange) string {
	if n, ok := headerNames[ex]; ok {
		return n
	}
	return strings.ToUpper(string(ex))
}

// ExchangeOf returns the tickstash exchange of a header name ("BINANCE_US" →
// market.BinanceUS). Unknown names are lower-cased with '_' removed; the result may
// fail market.Exchange.Validate.
func ExchangeOf(name string) market.Exchange {
	for ex, n := range headerNames {
		if strings.EqualFold(n, name) || strings.EqualFold(string(ex), name) {
			return ex
		}
	}
	return market.Exchange(strings.ToLower(strings.ReplaceAll(name, "_", "")))
}
