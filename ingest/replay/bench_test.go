package replay

import (
	"context"
	"testing"

	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/capture/capturetest"
)

// BenchmarkReplay measures capture file → events (read, unescape, decode, validate,
// dedup) on the Coinbase capture, 9,946 messages, mostly level2 updates.
func BenchmarkReplay(b *testing.B) {
	path := capturetest.Path(b, "coinbase-exchange-2021.jsonl")
	b.ReportAllocs()
	for b.Loop() {
		out := make(chan ingest.Event, 1024)
		done := make(chan struct{})
		go func() {
			for range out {
			}
			close(done)
		}()
		if err := New(Config{Files: []string{path}}, nil, nil).Run(context.Background(), out); err != nil {
			b.Fatal(err)
		}
		close(out)
		<-done
	}
	b.ReportMetric(float64(9946*b.N)/b.Elapsed().Seconds(), "msgs/s")
}
