package main

import (
	"context"
	"io"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/analysis"
	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/internal/testenv"
	"github.com/tickstash/tickstash/market"
)

// TestKilledWorkersJobCompletesElsewhere runs an `analyze` process with the default lease
// and heartbeat, holds one of its jobs mid-run (its NATS connection goes through a proxy
// the test cuts, so the result's publish cannot complete), kills
// the process with SIGKILL and starts a second one: the job must complete there, exactly
// once.
func TestKilledWorkersJobCompletesElsewhere(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	analysisArgs, as := testAnalysisStream(t, "rec"+prefix[3:])

	store := cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: prefix}, prometheus.NewRegistry())
	t0 := time.Now().Add(-time.Hour).Truncate(time.Minute)
	var cs []market.Candle
	for i := range 20 {
		p := decimal.NewFromInt(int64(100 + i%5))
		cs = append(cs, market.Candle{Exchange: market.Kraken, Symbol: "REC-USD", Interval: market.Interval1m,
			OpenTime: t0.Add(time.Duration(i) * time.Minute), Open: p, High: p, Low: p, Close: p,
			Volume: decimal.NewFromInt(1), QuoteVolume: p, Trades: 1, Closed: true})
	}
	if _, err := store.Write(ctx, &cache.Batch{Candles: cs}); err != nil {
		t.Fatal(err)
	}

	u, err := url.Parse(testenv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := startCutProxy(t, u.Host)
	common := append([]string{"analyze", "--redis-url", redistest.URL(), "--key-prefix", prefix, "--log-format", "json",
		"--indicators", "rsi:2"}, analysisArgs...)
	doomed := startProcess(t, append(common, "--nats-url", "nats://"+proxy.addr())...)
	// The role logs its start once its analysis stream exists and its worker runs.
	testenv.WaitFor(t, "the first worker started", func() bool { return countMsg(doomed, "analyze started") == 1 })
	proxy.cut()

	q := analysis.NewQueue(rdb, analysis.QueueConfig{Prefix: prefix}, nil)
	id, err := q.Enqueue(ctx, analysis.JobSpec{Exchange: market.Kraken, Symbol: "REC-USD", Interval: market.Interval1m})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("first worker's stderr:\n%.4000s", doomed.stderr())
		}
	}()
	// Running, and it cannot finish: its result's publish waits for NATS.
	testenv.WaitFor(t, "the first worker to run the job", func() bool {
		st, err := q.Status(ctx, id)
		return err == nil && st.State == analysis.JobRunning && st.Attempts == 1
	})
	doomed.kill()

	rescuer := startProcess(t, append(common, "--nats-url", testenv.NATSURL())...)
	admin := "http://" + findIn(t, rescuer, `Admin  http://(\S+)/metrics`)
	var st analysis.JobStatus
	testenv.WaitFor(t, "the job to complete in the second worker", func() bool {
		st, err = q.Status(ctx, id)
		return err == nil && st.State == analysis.JobDone
	})
	if st.Attempts != 2 {
		t.Errorf("job done after %d deliveries, want 2 (the killed worker's, then the rescuer's)", st.Attempts)
	}
	// The counter moves when the rescuer has read its settle call's reply, which may be
	// just after the job shows done in Redis.
	doneRe := regexp.MustCompile(`(?m)^tickstash_analysis_jobs_completed_total\{outcome="done"\} (\d+)$`)
	var done []string
	testenv.WaitFor(t, "the rescuer to count its completed job", func() bool {
		_, body := httpGet(t, admin+"/metrics")
		done = doneRe.FindStringSubmatch(body)
		return done != nil
	})
	if done[1] != "1" {
		t.Errorf("the rescuer's completed jobs: %v, want exactly 1 done", done)
	}

	nc, err := nats.Connect(testenv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(ctx, as.Name)
	if err != nil {
		t.Fatalf("analysis stream %s: %v", as.Name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("analysis stream holds %d updates, want 1", info.State.Msgs)
	}
	if code := rescuer.stop(t); code != 0 {
		t.Errorf("rescuer exit %d:\n%.2000s", code, rescuer.stderr())
	}
}

// cutProxy forwards TCP connections to a server until cut, which closes them all and
// refuses new ones: a network failure for one client only.
type cutProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go func() { _, _ = io.Copy(c, s); c.Close() }()
		}
	}()
	t.Cleanup(p.cut)
	return p
}

func (p *cutProxy) addr() string {
	a := p.ln.Addr().(*net.TCPAddr)
	return "127.0.0.1:" + strconv.Itoa(a.Port)
}

func (p *cutProxy) cut() {
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}
