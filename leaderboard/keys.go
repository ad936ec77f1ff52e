package leaderboard

// Keys. Every key of one board carries the board's name as its hash tag, so that one
// script writes all of a board's windows on Redis Cluster:
//
//	<prefix>:lb:{<board>}:seq                       arrival counter (ties go to the earlier)
//	<prefix>:lb:{<board>}:<window>[:<period>]:z      sorted set: score float64(value),
//	                                                 member <value enc><arrival><name>
//	<prefix>:lb:{<board>}:<window>[:<period>]:h      hash: name → "<value enc><arrival> <decimal>"
//	<prefix>:lb:{<board>}:<window>[:<period>]:d      Dense boards: sorted set of distinct values
//	<prefix>:lb:{<board>}:<window>[:<period>]:c      Dense boards: hash value enc → member count
//	<prefix>:lb:{<board>}:dedup:<report id>          a report already applied (ReportPnL)
//	<prefix>:lb:{strat:<strategy>}:pos              hash: "exchange:SYMBOL" → open paper position
//	<prefix>:lb:{strat:<strategy>}:stats            hash: closed trades, wins, equity
//
// <period> is 2006-01-02 for a day, the Monday 2006-01-02 for a week, 2006-01 for a
// month; the all-time window has none. Board names cannot contain ':', so a strategy's
// tag never equals a board's.

// DefaultPrefix starts every key when Config.Prefix is empty; it is the same as
// cache.DefaultPrefix.
const DefaultPrefix = "ts"

type keyspace struct{ prefix string }

func (k keyspace) board(board string) string { return k.prefix + ":lb:{" + board + "}:" }

func (k keyspace) seq(board string) string { return k.board(board) + "seq" }

func (k keyspace) dedup(board, id string) string { return k.board(board) + "dedup:" + id }

// windowKeys are the keys of one period of one window of a board.
type windowKeys struct{ z, h, d, c string }

func (k keyspace) window(board string, w Window, period string) windowKeys {
	base := k.board(board) + w.String() + ":"
	if period != "" {
		base += period + ":"
	}
	return windowKeys{z: base + "z", h: base + "h", d: base + "d", c: base + "c"}
}

func (k keyspace) strategy(name string) string { return k.prefix + ":lb:{strat:" + name + "}:" }

func (k keyspace) positions(strategy string) string { return k.strategy(strategy) + "pos" }

func (k keyspace) stats(strategy string) string { return k.strategy(strategy) + "stats" }
