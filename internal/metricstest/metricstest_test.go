package metricstest_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/internal/metricstest"
)

func TestCounter(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "things_total", Help: "Things."}, []string{"kind", "zone"})
	reg.MustRegister(c)
	c.WithLabelValues("a", "x").Add(2)
	c.WithLabelValues("b", "x").Add(3)
	for _, tc := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"kind", "a"}, 2},
		{[]string{"kind", "b", "zone", "x"}, 3},
		{[]string{"kind", "b", "zone", "y"}, 0},
		{[]string{"kind", "c"}, 0},
	} {
		if got := metricstest.Counter(t, reg, "things_total", tc.labels...); got != tc.want {
			t.Errorf("Counter(%v) = %v, want %v", tc.labels, got, tc.want)
		}
	}
	if got := metricstest.Counter(t, reg, "absent_total"); got != 0 {
		t.Errorf("absent counter %v, want 0", got)
	}
}
