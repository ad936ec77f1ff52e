// Package wsfeed is what every exchange connector shares: a websocket connection kept
// alive (Feed), and the path from a raw message to ingest events (Stream) that live
// feeds and capture replay both take.
//
// A connector supplies a Decoder for its exchange's messages and the URL and subscribe
// messages; wsfeed does the rest:
//
//   - reconnects with exponential backoff, full jitter and a cap, and at once (no
//     backoff) for a planned reconnect: before a maximum connection age (Binance cuts
//     connections at 24 h) or when the decoder reports that the server is going away
//     (ErrReconnect, e.g. Binance's serverShutdown);
//
//   - a silence watchdog: a connection that delivers neither data nor pings for
//     Config.Silence is dropped and redialled;
//
//   - websocket pings are answered by github.com/coder/websocket while a read is
//     pending, and reads are always pending except while events are handed over;
//     application-level pings (Kraken) are sent every Config.PingEvery;
//
//   - subscribe messages are re-sent after every reconnect;
//
//   - trades are checked against the last numeric trade id of their symbol: a repeated
//     or older id is a duplicate (dropped, e.g. the overlap a reconnect causes), a jump
//     is a gap (counted, logged and emitted as an ingest.KindGap event);
//
//   - every event is validated before it is emitted; anything that does not decode is
//     counted by reason, logged at debug level with an excerpt, and skipped;
//
//   - every raw message can be written to a Recorder (a capture file).
//
//     feed := wsfeed.New(wsfeed.Config{URL: url, Decoder: dec, Subscribe: subs}, log, reg)
//     err := feed.Run(ctx, out)
package wsfeed
