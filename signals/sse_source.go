package signals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/pipeline"
)

// StreamEvent is one signal as read from the stream, with its place in it.
type StreamEvent struct {
	// Seq is the JetStream stream sequence of the signal's message: it orders the
	// stream, and a reader resumes after it (an SSE event id, for instance).
	Seq      uint64          `json:"seq"`
	ID       string          `json:"id"`
	Strategy string          `json:"strategy"`
	Exchange market.Exchange `json:"exchange"`
	Symbol   market.Symbol   `json:"symbol"`
	// Data is the signal's JSON document, as published.
	Data json.RawMessage `json:"data"`
}

// StreamFilter narrows a StreamSource's stream; empty fields match everything.
type StreamFilter struct {
	Strategies []string
	Symbols    []market.Symbol
}

// StreamSource reads signals from the JetStream stream in stream order, for readers that
// keep their own position, such as Server-Sent Events clients reconnecting with
// Last-Event-ID. Each Stream call is one ordered consumer: no acks, and no server-side
// state beyond the call: Stream deletes its consumer when it returns, and the server
// drops one whose reader vanished without doing so (a crashed process) after
// StreamSourceConfig.InactiveThreshold. It is safe for concurrent use.
type StreamSource struct {
	js  jetstream.JetStream
	cfg StreamSourceConfig
	// retry is how long Stream waits before looking for a stream that does not exist
	// yet (a gateway may start before the signals role creates it).
	retry time.Duration
}

// StreamSourceConfig configures a StreamSource.
type StreamSourceConfig struct {
	// StreamConfig names the stream and its subjects; zero fields mean the defaults.
	StreamConfig
	// InactiveThreshold is how long the server keeps a Stream call's consumer once its
	// reader stops pulling without deleting it (the process crashed or lost NATS). A
	// reader pulls at least every few seconds, so it must exceed 10s; 0 means 30s.
	InactiveThreshold time.Duration
}

// minInactiveThreshold covers a reader's pull expiry (5s) with a margin: below it the
// server could drop the consumer of a reader that is alive but idle.
const minInactiveThreshold = 10 * time.Second

// NewStreamSource returns a source over nc reading the stream cfg names. It returns an
// error for an InactiveThreshold below 10s.
func NewStreamSource(nc *nats.Conn, cfg StreamSourceConfig) (*StreamSource, error) {
	if cfg.InactiveThreshold == 0 {
		cfg.InactiveThreshold = 30 * time.Second
	}
	if cfg.InactiveThreshold < minInactiveThreshold {
		return nil, fmt.Errorf("signals: InactiveThreshold %v: want at least %v (readers pull every 5s)", cfg.InactiveThreshold, minInactiveThreshold)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("signals: jetstream: %w", err)
	}
	cfg.StreamConfig = cfg.StreamConfig.withDefaults()
	return &StreamSource{js: js, cfg: cfg, retry: time.Second}, nil
}

// Stream calls fn with every signal matching f whose Seq is greater than after, in Seq
// order, until ctx ends (it then returns nil) or fn returns an error (returned as is).
// With after 0 it starts with the last stored signal of every subject f covers
// (a late joiner's catch-up), then new ones. While the stream does not exist it waits
// for it. Other errors are those of creating the consumer or reading from it. Before it
// returns, Stream deletes its consumer on the server; when that fails (NATS is gone) it
// returns an error wrapping ErrConsumerLeft, and the server drops the consumer after
// InactiveThreshold.
func (s *StreamSource) Stream(ctx context.Context, f StreamFilter, after uint64, fn func(StreamEvent) error) (err error) {
	cc := jetstream.OrderedConsumerConfig{
		// One filter subject keeps one consumer, hence one order, and works on
		// nats-server 2.9; several strategies or symbols are filtered here.
		FilterSubjects:    []string{s.filterSubject(f)},
		DeliverPolicy:     jetstream.DeliverLastPerSubjectPolicy,
		InactiveThreshold: s.cfg.InactiveThreshold,
	}
	if after > 0 {
		cc.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cc.OptStartSeq = after + 1
	}
	var cons jetstream.Consumer
	for {
		var err error
		cons, err = s.js.OrderedConsumer(ctx, s.cfg.Stream, cc)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("signals: stream %s: %w", s.cfg.Stream, err)
		}
		sleepCtx(ctx, s.retry)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(256), jetstream.PullHeartbeat(time.Second),
		jetstream.PullExpiry(5*time.Second))
	if err != nil {
		return errors.Join(fmt.Errorf("signals: stream %s: %w", s.cfg.Stream, err), s.deleteConsumer(cons))
	}
	defer func() {
		it.Stop()
		if derr := s.deleteConsumer(cons); derr != nil {
			err = errors.Join(err, derr)
		}
	}()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("signals: stream %s: %w", s.cfg.Stream, err)
		}
		e, ok := eventOf(m)
		if !ok || e.Seq <= after || !f.matches(e) {
			continue
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}

// ErrConsumerLeft is wrapped by Stream's error when it could not delete its consumer.
var ErrConsumerLeft = errors.New("signals: stream consumer left on the server")

// deleteConsumer deletes the server-side consumer of an ordered consumer, whose Stop
// leaves it to the server's inactivity timer. The ordered consumer deletes the ones it
// replaces itself; a reset racing with this leaves one to that timer.
func (s *StreamSource) deleteConsumer(cons jetstream.Consumer) error {
	info := cons.CachedInfo()
	if info == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.js.DeleteConsumer(ctx, s.cfg.Stream, info.Name)
	if err == nil || errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	}
	return fmt.Errorf("%w: %s on %s (the server drops it after %v): %w", ErrConsumerLeft, info.Name, s.cfg.Stream, s.cfg.InactiveThreshold, err)
}

// filterSubject returns the one subject pattern that covers f: exact where f names a
// single strategy or symbol, a wildcard elsewhere.
func (s *StreamSource) filterSubject(f StreamFilter) string {
	strategy, symbol := "*", "*"
	if len(f.Strategies) == 1 {
		strategy = f.Strategies[0]
	}
	if len(f.Symbols) == 1 {
		symbol = string(f.Symbols[0])
	}
	if strategy == "*" && symbol == "*" {
		return s.cfg.SubjectPrefix + ".>"
	}
	return pipeline.SignalSubject(s.cfg.SubjectPrefix, strategy, "*", market.Symbol(symbol))
}

func (f StreamFilter) matches(e StreamEvent) bool {
	return (len(f.Strategies) == 0 || slices.Contains(f.Strategies, e.Strategy)) &&
		(len(f.Symbols) == 0 || slices.Contains(f.Symbols, e.Symbol))
}

// eventOf decodes a stream message; messages that are not signals are skipped.
func eventOf(m jetstream.Msg) (StreamEvent, bool) {
	md, err := m.Metadata()
	if err != nil {
		return StreamEvent{}, false
	}
	var head struct {
		ID       string          `json:"id"`
		Strategy string          `json:"strategy"`
		Exchange market.Exchange `json:"exchange"`
		Symbol   market.Symbol   `json:"symbol"`
	}
	if err := json.Unmarshal(m.Data(), &head); err != nil || head.Strategy == "" {
		return StreamEvent{}, false
	}
	return StreamEvent{Seq: md.Sequence.Stream, ID: head.ID, Strategy: head.Strategy, Exchange: head.Exchange,
		Symbol: head.Symbol, Data: json.RawMessage(m.Data())}, true
}
