// Package capture reads and writes capture files: raw websocket traffic recorded from
// exchange feeds, one JSON object per line, in the format cryptofeed also writes (so
// captures recorded by either tool replay in the other):
//
//	{"t":"header","format":2,"exchange":"BINANCE",...}
//	{"t":"connect","conn":"BINANCE.ws.1","ts":1633998511.159679,"addr":"wss://..."}
//	{"t":"send","conn":"BINANCE.ws.1","ts":...,"addr":"wss://...","data":"<raw text sent>"}
//	{"t":"recv","conn":"BINANCE.ws.1","ts":...,"data":"<raw text received>"}
//
// ts is the local time in Unix seconds. Header exchange names are cryptofeed's
// (BINANCE, BINANCE_US, COINBASE, KRAKEN); ExchangeOf and HeaderName translate.
//
// Reading: Open (plain or .zst) or NewReader, then Next until io.EOF.
//
//	r, err := capture.Open("binance.jsonl.zst")
//	for {
//		rec, err := r.Next()
//		if err == io.EOF { break }
//		...
//	}
//
// Writing: a Writer implements wsfeed.Recorder and rotates files by size and age.
package capture
