package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/signals"
)

// SignalsRateReport is the fixed-rate case of `tickstash bench signals`: signals sent one
// per tick of a ticker, not saturating anything, and the latency from the publish call to
// the subscriber's handler, for tickstash (Distributor.Publish → signals.Client.Subscribe,
// what a bot runs) and for raw JetStream (PublishMsgAsync → an ordered consumer's
// Consume) on the same server, in alternating rounds.
type SignalsRateReport struct {
	Rate, Signals, Rounds int
	Cases                 []SignalsRateCase
}

// SignalsRateCase holds one side's rounds.
type SignalsRateCase struct {
	Name string
	// Achieved is the rate each round actually sent at (a loaded machine drops ticks).
	Achieved []float64
	// P50 and P99 are each round's publish → handler latencies.
	P50, P99 []time.Duration
}

const (
	caseRateSignals = "tickstash Distributor → Client"
	caseRateRaw     = "raw JetStream async → ordered consumer"
)

// signalsAtRate runs cfg.Rounds rounds of each side, alternating, at cfg.Rate signals/s on
// the streams sc (tickstash) and raw, which exist.
func signalsAtRate(ctx context.Context, nc *nats.Conn, dist *signals.Distributor, sc, raw signals.StreamConfig,
	cfg SignalsConfig, size int, progress io.Writer) (SignalsRateReport, error) {
	if cfg.Rate == 0 {
		cfg.Rate = 1000
	}
	if cfg.RateSignals <= 0 {
		cfg.RateSignals = 3000
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 5
	}
	rep := SignalsRateReport{Rate: cfg.Rate, Signals: cfg.RateSignals, Rounds: cfg.Rounds,
		Cases: []SignalsRateCase{{Name: caseRateSignals}, {Name: caseRateRaw}}}
	js, err := jetstream.New(nc)
	if err != nil {
		return rep, fmt.Errorf("bench: jetstream: %w", err)
	}
	for r := range cfg.Rounds {
		for i := range rep.Cases {
			c := &rep.Cases[i]
			var lat []time.Duration
			var elapsed time.Duration
			var err error
			if c.Name == caseRateSignals {
				lat, elapsed, err = rateRoundSignals(ctx, nc, dist, sc, cfg, r)
			} else {
				lat, elapsed, err = rateRoundRaw(ctx, js, raw, cfg, size, r)
			}
			if err != nil {
				return rep, fmt.Errorf("bench: %s at %d/s, round %d: %w", c.Name, cfg.Rate, r+1, err)
			}
			slices.Sort(lat)
			c.P50 = append(c.P50, percentile(lat, 0.5))
			c.P99 = append(c.P99, percentile(lat, 0.99))
			c.Achieved = append(c.Achieved, float64(len(lat))/elapsed.Seconds())
			if progress != nil {
				fmt.Fprintf(progress, "round %d/%d %-40s %6.0f/s  p50 %-10v p99 %v\n", r+1, cfg.Rounds, c.Name,
					c.Achieved[r], round(c.P50[r]), round(c.P99[r]))
			}
		}
	}
	return rep, nil
}

// paced calls send(i) for i in [0, n) at rate per second, paced by a ticker: each tick
// sends the signals due by then, so ticks a loaded machine drops are made up at the next
// one and the mean rate holds. It returns the time it took.
func paced(ctx context.Context, rate, n int, send func(i int) error) (time.Duration, error) {
	every := time.Second / time.Duration(rate)
	t := time.NewTicker(every)
	defer t.Stop()
	start := time.Now()
	for i := 0; i < n; {
		select {
		case <-t.C:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		for due := min(n, int(time.Since(start)/every)); i < due; i++ {
			if err := send(i); err != nil {
				return 0, err
			}
		}
	}
	return time.Since(start), nil
}

// warmUp calls send every 10ms until ready is closed: a subscription that starts
// asynchronously is then known to receive.
func warmUp(ctx context.Context, ready <-chan struct{}, send func() error) error {
	for deadline := time.Now().Add(10 * time.Second); ; {
		if err := send(); err != nil {
			return err
		}
		select {
		case <-ready:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("the subscriber received nothing in 10s")
		}
	}
}

// collector records latencies until it has n of them.
type collector struct {
	mu        sync.Mutex
	lat       []time.Duration
	n         int
	readyOnce sync.Once
	ready     chan struct{}
	done      chan struct{}
}

func newCollector(n int) *collector {
	return &collector{lat: make([]time.Duration, 0, n), n: n, ready: make(chan struct{}), done: make(chan struct{})}
}

func (c *collector) warm() { c.readyOnce.Do(func() { close(c.ready) }) }

func (c *collector) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.lat) < c.n {
		c.lat = append(c.lat, d)
		if len(c.lat) == c.n {
			close(c.done)
		}
	}
}

func (c *collector) wait(ctx context.Context) ([]time.Duration, error) {
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.lat) < c.n {
		return nil, fmt.Errorf("the subscriber received %d of %d signals", len(c.lat), c.n)
	}
	return slices.Clone(c.lat), nil
}

// rateRoundSignals publishes cfg.RateSignals signals one per tick through dist, each
// stamped with its publish time, and measures when a signals.Client subscription hands
// them over.
func rateRoundSignals(ctx context.Context, nc *nats.Conn, dist *signals.Distributor, sc signals.StreamConfig,
	cfg SignalsConfig, r int) ([]time.Duration, time.Duration, error) {
	// Candle times of each round (and of its warm-up) apart, so no id repeats within
	// the stream's duplicate window.
	base := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r) * 10000 * time.Hour)
	warmBase := base.Add(5000 * time.Hour)
	sigs := benchSignals(base, cfg.RateSignals)
	warms := benchSignals(warmBase, 1000)
	client, err := signals.NewClient(nc, signals.ClientConfig{StreamConfig: sc}, nil)
	if err != nil {
		return nil, 0, err
	}
	col := newCollector(cfg.RateSignals)
	sctx, stop := context.WithCancel(ctx)
	subErr := make(chan error, 1)
	go func() {
		subErr <- client.Subscribe(sctx, signals.SubscribeOptions{}, func(_ context.Context, s market.Signal) error {
			d := time.Since(s.Time)
			if !s.CandleTime.Before(warmBase) {
				col.warm()
				return nil
			}
			if !s.CandleTime.Before(base) {
				col.add(d)
			}
			return nil
		})
	}()
	defer func() { stop(); <-subErr }()
	w := 0
	if err := warmUp(ctx, col.ready, func() error {
		s := warms[w%len(warms)]
		w++
		s.Time = time.Now()
		return dist.Publish(ctx, s)
	}); err != nil {
		return nil, 0, err
	}
	elapsed, err := paced(ctx, cfg.Rate, cfg.RateSignals, func(i int) error {
		s := sigs[i]
		s.Time = time.Now()
		return dist.Publish(ctx, s)
	})
	if err != nil {
		return nil, 0, err
	}
	lat, err := col.wait(ctx)
	return lat, elapsed, err
}

// rateRoundRaw publishes cfg.RateSignals messages of size bytes one per tick with bare
// JetStream async publishes (acks awaited at the end of the round), the publish time in
// their first 8 bytes, and measures when an ordered consumer's Consume callback gets them.
func rateRoundRaw(ctx context.Context, js jetstream.JetStream, raw signals.StreamConfig, cfg SignalsConfig, size, r int) ([]time.Duration, time.Duration, error) {
	cons, err := js.OrderedConsumer(ctx, raw.Stream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return nil, 0, fmt.Errorf("consumer on %s: %w", raw.Stream, err)
	}
	col := newCollector(cfg.RateSignals)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		d := m.Data()
		lat := time.Since(time.Unix(0, int64(binary.BigEndian.Uint64(d))))
		if d[8] == 1 {
			col.warm()
			return
		}
		col.add(lat)
	})
	if err != nil {
		return nil, 0, err
	}
	defer cc.Stop()
	subject := raw.Subject("s", "binance", "BTC-USDT")
	n := 0
	publish := func(warm bool) error {
		data := make([]byte, max(size, 9))
		binary.BigEndian.PutUint64(data, uint64(time.Now().UnixNano()))
		if warm {
			data[8] = 1
		}
		n++
		_, err := js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: data,
			Header: nats.Header{jetstream.MsgIDHeader: []string{"rate-" + strconv.Itoa(r) + "-" + strconv.Itoa(n)}}})
		return err
	}
	if err := warmUp(ctx, col.ready, func() error { return publish(true) }); err != nil {
		return nil, 0, err
	}
	elapsed, err := paced(ctx, cfg.Rate, cfg.RateSignals, func(int) error { return publish(false) })
	if err != nil {
		return nil, 0, err
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		return nil, 0, errors.New("acks outstanding after 30s")
	}
	lat, err := col.wait(ctx)
	return lat, elapsed, err
}

// medianSpread returns the median, least and greatest of xs.
func medianSpread[T int64 | float64 | time.Duration](xs []T) (med, lo, hi T) {
	if len(xs) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	med = s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return med, s[0], s[len(s)-1]
}

// Markdown renders the rounds' medians and spreads and the p99 target.
func (r SignalsRateReport) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Fixed rate: %d signals/s on a ticker, %d signals per round, %d rounds per side alternating; median (least–greatest) of the rounds.\n\n",
		r.Rate, r.Signals, r.Rounds)
	b.WriteString("| case | sent/s | p50 publish→handler | p99 |\n|---|---:|---:|---:|\n")
	var tsP99 time.Duration
	for _, c := range r.Cases {
		am, al, ah := medianSpread(c.Achieved)
		pm, pl, ph := medianSpread(c.P50)
		qm, ql, qh := medianSpread(c.P99)
		if c.Name == caseRateSignals {
			tsP99 = qm
		}
		fmt.Fprintf(&b, "| %s | %.0f (%.0f–%.0f) | %v (%v–%v) | %v (%v–%v) |\n", c.Name, am, al, ah,
			round(pm), round(pl), round(ph), round(qm), round(ql), round(qh))
	}
	met := "no"
	if tsP99 > 0 && tsP99 < 2*time.Millisecond {
		met = "yes"
	}
	fmt.Fprintf(&b, "\n| target | median p99 | met |\n|---|---:|---|\n| tickstash p99 < 2ms at %d/s | %v | %s |\n", r.Rate, round(tsP99), met)
	return b.String()
}
