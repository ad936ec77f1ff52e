package history

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/market"
)

// Test access to single metric series.

func (m *Metrics) RequestsCounter(venue, status string) prometheus.Counter {
	return m.requests.WithLabelValues(venue, status)
}

func (m *Metrics) CandlesCounter(ex market.Exchange, iv market.Interval) prometheus.Counter {
	return m.candlesStored.WithLabelValues(string(ex), iv.String())
}

func (m *Metrics) RepairedCounter(ex market.Exchange) prometheus.Counter {
	return m.tradesRepaired.WithLabelValues(string(ex))
}

func (m *Metrics) UnrepairableCounter(ex market.Exchange, reason string) prometheus.Counter {
	return m.gapsUnrepairable.WithLabelValues(string(ex), reason)
}
