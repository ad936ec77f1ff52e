package history

import (
	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/market"
)

// checkpointKey is the string holding a backfill's progress for one market and
// interval: ts:{exchange:SYMBOL}:backfill:<interval>. It shares the market's hash tag and
// always has a TTL (BackfillConfig.CheckpointTTL).
func checkpointKey(k cache.Keyspace, ex market.Exchange, sym market.Symbol, iv market.Interval) string {
	return k.Prefix() + ":" + cache.Tag(ex, sym) + ":backfill:" + iv.String()
}
