package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/market"
)

// Defaults of AnalysisStream.
const (
	DefaultAnalysisStream = "TS_ANALYSIS"
	DefaultAnalysisPrefix = "ts.analysis"
)

// AnalysisUpdate is the latest analysis of one market and interval by one analyzer: what
// an analysis worker stores as a job's result and publishes on AnalysisStream.Subject,
// and what the signals role reads. Its JSON is the message body.
type AnalysisUpdate struct {
	Exchange market.Exchange `json:"exchange"`
	Symbol   market.Symbol   `json:"symbol"`
	Interval market.Interval `json:"interval"`
	Analyzer string          `json:"analyzer"`
	// CandleTime is the open time of the newest closed candle the values end at.
	CandleTime time.Time `json:"candle_time"`
	// Close is that candle's close price, exact (absent when the candle was not among
	// those loaded), so that rules comparing price with indicators need no extra read.
	Close decimal.Decimal `json:"close,omitzero"`
	// Values maps each output column (e.g. "rsi_14") to its value at CandleTime. Columns
	// not yet defined there are absent.
	Values map[string]float64 `json:"values"`
	// Candles is how many candles this run fed to the indicators (the rest of their
	// history came from the saved streaming state).
	Candles    int       `json:"candles"`
	Watermark  time.Time `json:"watermark,omitzero"`
	JobID      string    `json:"job_id"`
	ComputedAt time.Time `json:"computed_at"`
}

// MsgID is the update's idempotency key, sent as Nats-Msg-Id:
// "<analyzer>:<exchange>:<symbol>:<interval>:<unix ms of CandleTime>". Every run of a
// job (retries, takeovers, a rerun for the same candle) gives the same id.
func (u *AnalysisUpdate) MsgID() string {
	return u.Analyzer + ":" + string(u.Exchange) + ":" + string(u.Symbol) + ":" + u.Interval.String() + ":" +
		strconv.FormatInt(u.CandleTime.UnixMilli(), 10)
}

// Validate checks what a reader relies on: a valid market and interval, a candle time
// that is an open time of the interval, and a close that is absent or positive. Errors
// wrap ErrBadMessage.
func (u *AnalysisUpdate) Validate() error {
	if err := u.Exchange.Validate(); err != nil {
		return fmt.Errorf("%w: analysis update: %v", ErrBadMessage, err)
	}
	if err := u.Symbol.Validate(); err != nil {
		return fmt.Errorf("%w: analysis update: %v", ErrBadMessage, err)
	}
	if err := u.Interval.Validate(); err != nil {
		return fmt.Errorf("%w: analysis update: %v", ErrBadMessage, err)
	}
	if u.CandleTime.IsZero() || !u.Interval.Align(u.CandleTime).Equal(u.CandleTime) {
		return fmt.Errorf("%w: analysis update: candle_time %s is not a %s open time", ErrBadMessage,
			market.FormatTime(u.CandleTime), u.Interval)
	}
	if u.Close.Sign() < 0 {
		return fmt.Errorf("%w: analysis update: close %s is negative", ErrBadMessage, u.Close)
	}
	return nil
}

// EncodeAnalysisUpdate returns the message body of u.
func EncodeAnalysisUpdate(u *AnalysisUpdate) ([]byte, error) {
	b, err := json.Marshal(u)
	if err != nil {
		return nil, fmt.Errorf("pipeline: encode analysis update: %w", err)
	}
	return b, nil
}

// DecodeAnalysisUpdate decodes and validates an analysis update; CandleTime comes back
// in UTC. It returns an error wrapping ErrBadMessage if the JSON is malformed or the
// update does not validate.
func DecodeAnalysisUpdate(data []byte) (AnalysisUpdate, error) {
	var u AnalysisUpdate
	if err := json.Unmarshal(data, &u); err != nil {
		return AnalysisUpdate{}, fmt.Errorf("%w: analysis update: %v", ErrBadMessage, err)
	}
	u.CandleTime = u.CandleTime.UTC()
	if err := u.Validate(); err != nil {
		return AnalysisUpdate{}, err
	}
	return u, nil
}

// AnalysisStream is the JetStream stream carrying analysis updates. The publisher and
// every reader must be given the same Name and SubjectPrefix; both create or update the
// stream with these settings, so either may start first.
type AnalysisStream struct {
	// Name is the stream's name. The zero value means DefaultAnalysisStream.
	Name string
	// SubjectPrefix starts every update subject, <prefix>.<exchange>.<symbol>.<interval>;
	// the stream holds <prefix>.>. The zero value means DefaultAnalysisPrefix.
	SubjectPrefix string
	// MaxAge is how long the stream keeps an update: the longest signals outage that
	// loses nothing. The zero value means 24h.
	MaxAge time.Duration
	// MaxBytes bounds the stream's size; the oldest updates go first. The zero value
	// means 256 MiB.
	MaxBytes int64
	// Duplicates is the window in which a repeated Nats-Msg-Id is dropped; it must cover
	// a job's retries (lease plus backoff). The zero value means 10 minutes; it is capped
	// at MaxAge.
	Duplicates time.Duration
	// Replicas of the stream on a NATS cluster. The zero value means 1.
	Replicas int
	// Memory keeps the stream in memory (tests); a broker restart then loses it. The
	// zero value means file storage.
	Memory bool
}

func (s AnalysisStream) withDefaults() AnalysisStream {
	if s.Name == "" {
		s.Name = DefaultAnalysisStream
	}
	if s.SubjectPrefix == "" {
		s.SubjectPrefix = DefaultAnalysisPrefix
	}
	if s.MaxAge <= 0 {
		s.MaxAge = 24 * time.Hour
	}
	if s.MaxBytes <= 0 {
		s.MaxBytes = 256 << 20
	}
	if s.Duplicates <= 0 {
		s.Duplicates = 10 * time.Minute
	}
	s.Duplicates = min(s.Duplicates, s.MaxAge)
	if s.Replicas <= 0 {
		s.Replicas = 1
	}
	return s
}

// Stream returns the stream's name, the default filled in.
func (s AnalysisStream) Stream() string { return s.withDefaults().Name }

// Subject returns the subject of the updates of one market and interval:
// <prefix>.<exchange>.<symbol>.<interval>.
func (s AnalysisStream) Subject(ex market.Exchange, sym market.Symbol, iv market.Interval) string {
	return s.withDefaults().SubjectPrefix + "." + string(ex) + "." + string(sym) + "." + iv.String()
}

// Subjects returns the wildcard matching every update subject, <prefix>.>.
func (s AnalysisStream) Subjects() string { return s.withDefaults().SubjectPrefix + ".>" }

// Ensure creates the stream, or updates it to s when its settings differ, and returns it. It returns an error if
// JetStream is not enabled or another stream already holds the subjects.
func (s AnalysisStream) Ensure(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	s = s.withDefaults()
	storage := jetstream.FileStorage
	if s.Memory {
		storage = jetstream.MemoryStorage
	}
	st, err := EnsureStream(ctx, js, jetstream.StreamConfig{
		Name:        s.Name,
		Description: "tickstash analysis updates (analysis -> signals)",
		Subjects:    []string{s.SubjectPrefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      s.MaxAge,
		MaxBytes:    s.MaxBytes,
		MaxMsgs:     -1,
		Duplicates:  s.Duplicates,
		Replicas:    s.Replicas,
		Storage:     storage,
	})
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", StreamError(err, s.Name, s.MaxBytes, "--analysis-max-bytes"))
	}
	return st, nil
}

// publishTimeout bounds one attempt to publish an update.
const publishTimeout = 5 * time.Second

// AnalysisPublisher publishes analysis updates to the stream, each with its MsgID. It is
// safe for concurrent use.
type AnalysisPublisher struct {
	js     jetstream.JetStream
	stream AnalysisStream
}

// NewAnalysisPublisher creates or updates the stream and returns a publisher over nc. It
// returns the error of Ensure.
func NewAnalysisPublisher(ctx context.Context, nc *nats.Conn, s AnalysisStream) (*AnalysisPublisher, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("pipeline: jetstream: %w", err)
	}
	if _, err := s.Ensure(ctx, js); err != nil {
		return nil, err
	}
	return &AnalysisPublisher{js: js, stream: s.withDefaults()}, nil
}

// PublishUpdate publishes u and returns once the stream has stored it; duplicate reports
// that the stream already held its MsgID (an earlier run's publish got through). If the
// stream is gone, it creates it again and publishes once more. It returns an
// error if u does not encode or the stream did not acknowledge it (then publishing u
// again is safe).
func (p *AnalysisPublisher) PublishUpdate(ctx context.Context, u *AnalysisUpdate) (duplicate bool, err error) {
	data, err := EncodeAnalysisUpdate(u)
	if err != nil {
		return false, err
	}
	subject := p.stream.Subject(u.Exchange, u.Symbol, u.Interval)
	publish := func() (*jetstream.PubAck, error) {
		// A publish to a subject no stream holds waits for a reply that never comes
		// when core NATS subscribers (live readers) are there: bound each attempt.
		pctx, cancel := context.WithTimeout(ctx, publishTimeout)
		defer cancel()
		return p.js.Publish(pctx, subject, data, jetstream.WithMsgID(u.MsgID()), jetstream.WithExpectStream(p.stream.Name))
	}
	ack, err := publish()
	if err != nil && ctx.Err() == nil {
		// The stream may be gone (deleted, or lost by a broker with memory storage):
		// make it again rather than fail every job until someone does.
		if _, serr := p.js.Stream(ctx, p.stream.Name); errors.Is(serr, jetstream.ErrStreamNotFound) {
			if _, err := p.stream.Ensure(ctx, p.js); err != nil {
				return false, err
			}
			ack, err = publish()
		}
	}
	if err != nil {
		return false, fmt.Errorf("pipeline: publish analysis update on %s: %w", subject, err)
	}
	return ack.Duplicate, nil
}
