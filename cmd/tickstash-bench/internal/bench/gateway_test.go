package bench

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tickstash/tickstash/internal/redistest"
)

func TestGatewayBench(t *testing.T) {
	rdb := redistest.Client(t)
	rep, err := Gateway(context.Background(), rdb, GatewayConfig{Duration: 300 * time.Millisecond, Rounds: 1, Goroutines: 4}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Cases) != 4 || rep.TickerVsBare <= 0 || rep.RESTVsDirect <= 0 {
		t.Fatalf("report %+v", rep)
	}
	if md := rep.Markdown(); !strings.Contains(md, "gateway ticker ÷ bare handler") {
		t.Fatal(md)
	}
}
