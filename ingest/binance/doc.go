// Package binance connects to Binance spot (and Binance.US) combined streams and
// decodes their messages: trade, aggTrade, bookTicker and kline_<interval>.
//
// Binance sends prices and quantities as strings and times as milliseconds since the
// epoch. A trade's "m" flag says the buyer was the maker, so the taker sold:
// m=true gives market.Sell. bookTicker carries no event time; its quotes are stamped
// with the receive time. depthUpdate messages are recognised and ignored (tickstash
// keeps no order books). serverShutdown makes the connection reconnect at once.
//
// Symbols: Binance writes "BTCUSDT". With a symbol list from the exchange (FetchSymbols,
// GET /api/v3/exchangeInfo) the split into base and quote is exact; without one, the
// longest known quote asset that ends the name is taken (QuoteAssets), which is right
// for every spot market listed today but can be fooled by a new quote asset.
//
//	src := binance.New(binance.Config{Symbols: []string{"BTCUSDT", "ETHUSDT"}}, log, reg)
//	err := src.Run(ctx, out)
package binance
