package pipeline

import "github.com/tickstash/tickstash/market"

// Defaults of the signal stream: its name and the prefix of its subjects.
const (
	DefaultSignalStream = "TS_SIGNALS"
	DefaultSignalPrefix = "ts.signals"
)

// SignalSubject returns the subject of a signal: <prefix>.<strategy>.<exchange>.<symbol>;
// prefix "" means DefaultSignalPrefix. The message is the signal's JSON (market.Signal)
// with Nats-Msg-Id set to its ID.
func SignalSubject(prefix, strategy string, ex market.Exchange, sym market.Symbol) string {
	if prefix == "" {
		prefix = DefaultSignalPrefix
	}
	return prefix + "." + strategy + "." + string(ex) + "." + string(sym)
}
