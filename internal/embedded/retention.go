package embedded

import "time"

// Market-data retention on the embedded Redis. It keeps every key in the process's heap
// (a stored trade costs about 460 bytes of heap, twice that in resident memory with
// Go's default GC target: see BENCHMARKS.md), so the defaults of a real server — a day
// of trades, months of candles — would grow `tickstash run` by gigabytes on a busy
// feed. These bound it whatever the trade rate; a real server (--redis-url) keeps the
// full defaults.
const (
	// TradeRetention is how far back each trade stream reaches.
	TradeRetention = 15 * time.Minute
	// TradeMaxLen caps each trade stream's length, so a fast market stays within
	// about 25 MB of heap.
	TradeMaxLen = 50_000
	// CandlesPerKey is how many candles of each interval are kept per market: a day of
	// 1m candles, 60 days of 1h ones — more than an analysis job reads (500).
	CandlesPerKey = 1440
)

// CandleRetention returns how long candles of an interval of length step are kept on
// the embedded Redis: CandlesPerKey of them.
func CandleRetention(step time.Duration) time.Duration { return CandlesPerKey * step }
