package wsfeedtest

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tickstash/tickstash/ingest"
)

// Collect runs src until done reports true for a received event (or timeout passes,
// which fails the test) and returns the events received, in order. It checks that Run
// returns nil once its context is cancelled.
func Collect(tb testing.TB, src ingest.Source, timeout time.Duration, done func(ingest.Event) bool) []ingest.Event {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan ingest.Event, 16)
	errc := make(chan error, 1)
	go func() { errc <- src.Run(ctx, out) }()
	var evs []ingest.Event
	deadline := time.After(timeout)
loop:
	for {
		select {
		case ev := <-out:
			evs = append(evs, ev)
			if done(ev) {
				break loop
			}
		case err := <-errc:
			tb.Fatalf("%s: Run returned early: %v (events so far: %d)", src.Name(), err, len(evs))
		case <-deadline:
			tb.Fatalf("%s: timed out after %d events", src.Name(), len(evs))
		}
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			tb.Errorf("%s: Run after cancel = %v, want nil", src.Name(), err)
		}
	case <-time.After(5 * time.Second):
		tb.Errorf("%s: Run did not return after cancel", src.Name())
	}
	return evs
}

// Metric returns the value of the counter or gauge name with the given labels in reg,
// or -1 if there is none.
func Metric(tb testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}

// TradeID returns the id of ev's trade, or "" when ev carries no trade.
func TradeID(ev ingest.Event) string {
	if t := ev.Trade(); t != nil {
		return t.ID
	}
	return ""
}

// Records returns the record each event carries, as a value (market.Trade,
// market.Quote, market.Candle or ingest.Gap), for comparing events with cmp.
func Records(evs []ingest.Event) []any {
	out := make([]any, len(evs))
	for i, ev := range evs {
		switch ev.Kind() {
		case ingest.KindTrade:
			out[i] = *ev.Trade()
		case ingest.KindQuote:
			out[i] = *ev.Quote()
		case ingest.KindCandle:
			out[i] = *ev.Candle()
		case ingest.KindGap:
			out[i] = *ev.Gap()
		}
	}
	return out
}
