package history

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the package's Prometheus metrics. Make one per registry with NewMetrics and
// hand it to every Venue, Backfiller and Repairer of the process.
type Metrics struct {
	requests         *prometheus.CounterVec
	candlesStored    *prometheus.CounterVec
	tradesRepaired   *prometheus.CounterVec
	gapsUnrepairable *prometheus.CounterVec
	repairLag        *prometheus.HistogramVec
}

// NewMetrics registers the history metrics with reg:
//
//	tickstash_history_requests_total{exchange,status}            REST requests by venue and HTTP status ("error" for no answer)
//	tickstash_history_candles_backfilled_total{exchange,interval} candles stored by a backfill
//	tickstash_history_trades_repaired_total{exchange}             missing trades fetched for a gap
//	tickstash_history_gaps_unrepairable_total{exchange,reason}    gaps that could not be filled
//	tickstash_history_repair_lag_seconds{exchange}                from a gap's detection to its trades fetched
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_history_requests_total",
			Help: "REST history requests by venue and HTTP status (\"error\" when no answer came).",
		}, []string{"exchange", "status"}),
		candlesStored: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_history_candles_backfilled_total",
			Help: "Candles stored by backfills from exchange REST history.",
		}, []string{"exchange", "interval"}),
		tradesRepaired: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_history_trades_repaired_total",
			Help: "Missing trades fetched over REST to fill a gap in a trade feed.",
		}, []string{"exchange"}),
		gapsUnrepairable: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tickstash_history_gaps_unrepairable_total",
			Help: "Trade gaps that could not be filled, by reason.",
		}, []string{"exchange", "reason"}),
		repairLag: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tickstash_history_repair_lag_seconds",
			Help:    "Time from a gap's detection to its missing trades fetched.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14),
		}, []string{"exchange"}),
	}
}
