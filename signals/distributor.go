package signals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/internal/backoff"
	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/pipeline"
)

// Defaults of StreamConfig.
const (
	DefaultStream        = pipeline.DefaultSignalStream
	DefaultSubjectPrefix = pipeline.DefaultSignalPrefix
)

// ErrInvalidSignal is wrapped by Distributor.Publish for each signal that failed
// validation and was dropped.
var ErrInvalidSignal = errors.New("signals: invalid signal dropped")

// StreamConfig names the JetStream stream of signals and its subjects; the Distributor,
// Client and Tail must agree on it.
type StreamConfig struct {
	// Stream is the stream's name. The zero value means DefaultStream.
	Stream string
	// SubjectPrefix starts every signal subject, <prefix>.<strategy>.<exchange>.<symbol>;
	// the stream holds <prefix>.>. The zero value means DefaultSubjectPrefix.
	SubjectPrefix string
}

func (c StreamConfig) withDefaults() StreamConfig {
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = DefaultSubjectPrefix
	}
	return c
}

// Subject returns the subject of a signal: <prefix>.<strategy>.<exchange>.<symbol>.
func (c StreamConfig) Subject(strategy string, ex market.Exchange, sym market.Symbol) string {
	return pipeline.SignalSubject(c.SubjectPrefix, strategy, ex, sym)
}

// DistributorConfig configures a Distributor.
type DistributorConfig struct {
	StreamConfig
	// MaxAge is how long the stream keeps a signal. The zero value means 7 days.
	MaxAge time.Duration
	// MaxBytes bounds the stream's size; the oldest signals go first. The zero value
	// means 1 GiB; a negative value means no bound beyond MaxAge.
	MaxBytes int64
	// Duplicates is the window in which a repeated Nats-Msg-Id (signal id) is dropped
	// by the server. It must cover the longest outage a retry may span. The zero value
	// means 10 minutes; it is capped at MaxAge.
	Duplicates time.Duration
	// Replicas of the stream on a NATS cluster. The zero value means 1.
	Replicas int
	// Memory keeps the stream in memory instead of files (tests, benchmarks). A broker
	// restart then loses it. The zero value means file storage.
	Memory bool
	// AckTimeout is how long a publish waits for its ack before it is retried. The zero
	// value means 5s.
	AckTimeout time.Duration
	// MaxPending bounds the publishes awaiting an ack. The zero value means 4096.
	MaxPending int
	// RetryWait is the first pause before a retry; it doubles per attempt up to
	// MaxRetryWait, and each pause is shortened by up to half at random (equal jitter),
	// so publishers that failed together do not retry together. The zero values mean
	// 50ms and 2s.
	RetryWait, MaxRetryWait time.Duration
}

// Distributor publishes signals to JetStream, each exactly once: it publishes
// asynchronously, waits for every ack, and repeats a publish that failed or went
// unacknowledged with the same Nats-Msg-Id (the signal id), which the stream's duplicate
// window drops if the first attempt was stored after all. It is safe for concurrent use.
type Distributor struct {
	js      jetstream.JetStream
	cfg     DistributorConfig
	log     *slog.Logger
	metrics *publisherMetrics
}

// NewDistributor creates the stream, or updates it to cfg, and returns a Distributor
// publishing to it over nc. Its metrics are registered with reg; log gets retry notices
// (nil: discarded). It returns an error if the stream cannot be created or updated (for
// instance another stream already holds the subjects).
func NewDistributor(ctx context.Context, nc *nats.Conn, cfg DistributorConfig, log *slog.Logger, reg prometheus.Registerer) (*Distributor, error) {
	cfg.StreamConfig = cfg.StreamConfig.withDefaults()
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 7 * 24 * time.Hour
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = 1 << 30
	} else if cfg.MaxBytes < 0 {
		cfg.MaxBytes = -1
	}
	if cfg.Duplicates <= 0 {
		cfg.Duplicates = 10 * time.Minute
	}
	cfg.Duplicates = min(cfg.Duplicates, cfg.MaxAge)
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 5 * time.Second
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 4096
	}
	if cfg.RetryWait <= 0 {
		cfg.RetryWait = 50 * time.Millisecond
	}
	if cfg.MaxRetryWait <= 0 {
		cfg.MaxRetryWait = 2 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(cfg.MaxPending),
		jetstream.WithPublishAsyncTimeout(cfg.AckTimeout))
	if err != nil {
		return nil, fmt.Errorf("signals: jetstream: %w", err)
	}
	storage := jetstream.FileStorage
	if cfg.Memory {
		storage = jetstream.MemoryStorage
	}
	_, err = pipeline.EnsureStream(ctx, js, jetstream.StreamConfig{
		Name:        cfg.Stream,
		Description: "tickstash trading signals",
		Subjects:    []string{cfg.SubjectPrefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      cfg.MaxAge,
		MaxBytes:    cfg.MaxBytes,
		MaxMsgs:     -1,
		Duplicates:  cfg.Duplicates,
		Replicas:    cfg.Replicas,
		Storage:     storage,
	})
	if err != nil {
		return nil, fmt.Errorf("signals: %w", pipeline.StreamError(err, cfg.Stream, cfg.MaxBytes, "--signals-max-bytes"))
	}
	return &Distributor{js: js, cfg: cfg, log: log, metrics: newPublisherMetrics(reg)}, nil
}

// Config returns the configuration with defaults filled in.
func (d *Distributor) Config() DistributorConfig { return d.cfg }

// pending is one signal on its way to an ack.
type pending struct {
	strategy string
	msg      *nats.Msg
	fut      jetstream.PubAckFuture
	err      error
	start    time.Time
}

// Publish validates sigs, publishes the valid ones asynchronously and returns once every
// one of them is acknowledged by the stream, retrying failed or unacknowledged publishes
// with the same Nats-Msg-Id and a doubling pause. Signals that fail validation are
// counted in tickstash_signals_invalid_total and dropped, never published; the error
// then wraps ErrInvalidSignal (and the others are published all the same). If ctx ends
// first, Publish returns ctx's error; signals not yet acknowledged may or may not be
// stored, and publishing them again is safe.
func (d *Distributor) Publish(ctx context.Context, sigs ...market.Signal) error {
	var invalid []error
	batch := make([]*pending, 0, len(sigs))
	for i := range sigs {
		s := &sigs[i]
		if err := s.Validate(); err != nil {
			d.metrics.invalid.Inc()
			invalid = append(invalid, fmt.Errorf("%w: %s: %w", ErrInvalidSignal, s.ID, err))
			continue
		}
		data, err := json.Marshal(s)
		if err != nil {
			d.metrics.invalid.Inc()
			invalid = append(invalid, fmt.Errorf("%w: %s: %w", ErrInvalidSignal, s.ID, err))
			continue
		}
		msg := &nats.Msg{
			Subject: d.cfg.Subject(s.Strategy, s.Exchange, s.Symbol),
			Header:  nats.Header{jetstream.MsgIDHeader: []string{s.ID}},
			Data:    data,
		}
		batch = append(batch, &pending{strategy: s.Strategy, msg: msg})
	}
	if err := d.publish(ctx, batch); err != nil {
		return err
	}
	return errors.Join(invalid...)
}

// PublishRaw publishes prepared messages (subject, Nats-Msg-Id header and payload) the
// way Publish does, without validation; benchmarks use it to measure the publish path
// alone. strategy labels the metrics.
func (d *Distributor) PublishRaw(ctx context.Context, strategy string, msgs []*nats.Msg) error {
	batch := make([]*pending, len(msgs))
	for i, m := range msgs {
		batch[i] = &pending{strategy: strategy, msg: m}
	}
	return d.publish(ctx, batch)
}

func (d *Distributor) publish(ctx context.Context, batch []*pending) error {
	retry := backoff.New(backoff.Policy{Min: d.cfg.RetryWait, Max: d.cfg.MaxRetryWait, Jitter: 0.5})
	todo := batch
	for attempt := 0; len(todo) > 0; attempt++ {
		if attempt > 0 {
			d.metrics.retries.Add(float64(len(todo)))
			d.log.Warn("signals: retrying publishes", "count", len(todo), "attempt", attempt+1, "err", todo[0].err)
			if err := retry.Wait(ctx); err != nil {
				return fmt.Errorf("signals: publish: %w", err)
			}
		}
		for _, p := range todo {
			if p.start.IsZero() {
				p.start = time.Now()
			}
			p.fut, p.err = d.js.PublishMsgAsync(p.msg)
		}
		var failed []*pending
		for _, p := range todo {
			if p.err != nil {
				failed = append(failed, p)
				continue
			}
			select {
			case ack := <-p.fut.Ok():
				d.metrics.latency.Observe(time.Since(p.start).Seconds())
				d.metrics.published.WithLabelValues(p.strategy).Inc()
				if ack.Duplicate {
					d.metrics.duplicates.Inc()
				}
			case err := <-p.fut.Err():
				p.err = err
				failed = append(failed, p)
			case <-ctx.Done():
				return fmt.Errorf("signals: publish: %w", ctx.Err())
			}
		}
		todo = failed
	}
	return nil
}
