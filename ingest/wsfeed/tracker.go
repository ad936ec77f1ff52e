package wsfeed

import (
	"strconv"
	"time"

	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/wsfeed/wire"
	"github.com/tickstash/tickstash/market"
)

// Tracker remembers the last numeric trade id of each symbol to drop duplicates and
// report gaps. Exchanges number trades per instrument with consecutive integers
// (Binance trade and aggTrade ids, Coinbase trade_id, Kraken v2 trade_id); trades with
// empty or non-numeric ids (Kraken v1) pass through unchecked. The zero value is ready
// to use; a Tracker is not safe for concurrent use.
type Tracker struct {
	last map[market.Symbol]lastTrade
}

// lastTrade is the newest trade of a symbol the Tracker has let through.
type lastTrade struct {
	id int64
	t  time.Time
}

// Verdict is what Tracker.Check decided about a trade.
type Verdict uint8

// Verdicts of Tracker.Check.
const (
	Fresh     Verdict = iota // the next id, or an id that cannot be checked
	Duplicate                // an id at or below the last one seen: drop it
	Gapped                   // ids between the last one and this one are missing
)

// Check records t's id and says whether t is fresh, a duplicate, or follows a gap,
// which it then describes. The first trade of a symbol is always fresh.
func (k *Tracker) Check(t *market.Trade) (Verdict, ingest.Gap) {
	id, ok := wire.ParseInt([]byte(t.ID))
	if !ok || id < 0 {
		return Fresh, ingest.Gap{}
	}
	if k.last == nil {
		k.last = make(map[market.Symbol]lastTrade)
	}
	last, seen := k.last[t.Symbol]
	switch {
	case !seen || id == last.id+1:
		k.last[t.Symbol] = lastTrade{id, t.Time}
		return Fresh, ingest.Gap{}
	case id <= last.id:
		return Duplicate, ingest.Gap{}
	}
	k.last[t.Symbol] = lastTrade{id, t.Time}
	return Gapped, ingest.Gap{
		Exchange: t.Exchange, Symbol: t.Symbol,
		FromID: strconv.FormatInt(last.id+1, 10), ToID: strconv.FormatInt(id-1, 10),
		Missing: id - last.id - 1, Time: t.Time, LastTime: last.t,
	}
}
