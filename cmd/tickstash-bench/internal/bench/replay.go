package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/capture"
	"github.com/tickstash/tickstash/ingest/replay"
	"github.com/tickstash/tickstash/internal/redisconn"
	"github.com/tickstash/tickstash/market"
)

// ReplayReport is the outcome of Replay.
type ReplayReport struct {
	Machine  Machine
	Files    []string
	Messages int64 // websocket messages (recv lines) in the files
	Records  int64 // trades, quotes and candles written to Redis
	Elapsed  time.Duration
}

// MessagesPerS returns the replay rate in captured messages per second.
func (r ReplayReport) MessagesPerS() float64 { return float64(r.Messages) / r.Elapsed.Seconds() }

// Markdown renders the report.
func (r ReplayReport) Markdown() string {
	names := make([]string, len(r.Files))
	for i, f := range r.Files {
		names[i] = filepath.Base(f)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### bench replay\n\n%s\n\n", r.Machine.Markdown())
	fmt.Fprintf(&b, "| capture | messages | records written | time | messages/s |\n|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| %s | %d | %d | %s | %.0f |\n", strings.Join(names, ", "), r.Messages, r.Records,
		r.Elapsed.Round(time.Millisecond), r.MessagesPerS())
	return b.String()
}

// Replay feeds capture files at full speed through the decoders, the aggregator (1m,
// 5m, 1h) and the writers into Redis, under a key prefix of its own that is deleted
// afterwards.
func Replay(ctx context.Context, rdb redis.UniversalClient, files []string, progress io.Writer) (ReplayReport, error) {
	rep := ReplayReport{Machine: DescribeMachine(ctx, rdb), Files: files}
	if len(files) == 0 {
		return rep, errors.New("bench: replay needs capture files")
	}
	for _, f := range files {
		n, err := countMessages(f)
		if err != nil {
			return rep, err
		}
		rep.Messages += n
	}
	prefix := randomPrefix("tsbench")
	defer func() { _ = redisconn.DeleteKeys(context.WithoutCancel(ctx), rdb, prefix+"*") }()
	log := slog.New(slog.DiscardHandler)
	src := replay.New(replay.Config{Files: files}, log, prometheus.NewRegistry())
	counting := &countingStore{store: cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: prefix}, prometheus.NewRegistry())}
	g := ingest.NewIngester(counting, nil, []ingest.Source{src}, ingest.IngesterConfig{
		Aggregator:         ingest.AggregatorConfig{Intervals: []market.Interval{market.Interval1m, market.Interval5m, market.Interval1h}},
		EventTimeWatermark: true,
	}, log, prometheus.NewRegistry())
	stop := reportProgress(progress, "replay (records written)", 0, counting.records.Load)
	start := time.Now()
	err := g.Run(ctx)
	rep.Elapsed = time.Since(start)
	stop()
	rep.Records = counting.records.Load()
	if err == nil {
		err = ctx.Err()
	}
	return rep, err
}

func countMessages(path string) (int64, error) {
	r, err := capture.Open(path)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	var n int64
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("bench: %s: %w", path, err)
		}
		if rec.Type == capture.TypeRecv {
			n++
		}
	}
}
