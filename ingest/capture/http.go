package capture

// TypeHTTP is the type of a REST response the recorder fetched:
//
//	{"t":"http","conn":"BINANCE.http.0","ts":...,"url":"https://...","data":"<body>"}
//
// Binance captures record the order-book depth snapshots their diff-depth streams are
// synced to this way. The record's Addr is the url and Data the body.
const TypeHTTP = "http"

// SetHTTP makes Next return http records too (it skips them by default, so that
// readers that know only websocket traffic need not).
func (r *Reader) SetHTTP(on bool) { r.http = on }
