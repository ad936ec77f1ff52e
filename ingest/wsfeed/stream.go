package wsfeed

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/wsfeed/wire"
)

// excerptLen is how much of an undecodable message is logged.
const excerptLen = 200

// Stream is the path from raw messages to events shared by live feeds and replay:
// decode, validate, drop duplicate trades, report gaps, count, and send. It is where
// exchange data enters tickstash, so it is where records are validated, once: a draft
// becomes an ingest.Event only if it validates, and nothing downstream checks again.
// It is not safe for concurrent use.
type Stream struct {
	dec     Decoder
	metrics *Metrics
	log     *slog.Logger
	tracker Tracker
	buf     []ingest.Draft
}

// NewStream returns a Stream decoding with dec. A nil log discards.
func NewStream(dec Decoder, m *Metrics, log *slog.Logger) *Stream {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Stream{dec: dec, metrics: m, log: log}
}

// Handle decodes msg, received at recv, and sends its events to out. Undecodable
// messages and invalid events are counted, logged at debug level and skipped. It
// returns ctx's error if ctx ends while it waits on out, and an error wrapping
// ErrReconnect if the message announced a server shutdown; nil otherwise.
func (s *Stream) Handle(ctx context.Context, msg []byte, recv time.Time, out chan<- ingest.Event) error {
	s.metrics.Messages.Inc()
	s.metrics.LastMessage.Set(float64(recv.UnixNano()) / 1e9)
	evs, err := s.dec.Decode(s.buf[:0], msg, recv)
	s.buf = evs[:0]
	if err != nil {
		if errors.Is(err, ErrReconnect) {
			return err
		}
		s.skip(Reason(err), err, msg)
		return nil
	}
	sortTrades(evs)
	for i := range evs {
		d := &evs[i]
		ev, err := d.Event()
		if err != nil {
			s.metrics.Invalid(d.Kind)
			s.skip(ReasonInvalid, err, msg)
			continue
		}
		switch d.Kind {
		case ingest.KindTrade:
			v, gap := s.tracker.Check(ev.Trade())
			switch v {
			case Duplicate:
				s.metrics.Duplicates.Inc()
				continue
			case Gapped:
				s.metrics.Gaps.Inc()
				s.log.Warn("wsfeed: trade id gap", "exchange", gap.Exchange, "symbol", gap.Symbol,
					"from", gap.FromID, "to", gap.ToID, "missing", gap.Missing)
				if err := send(ctx, out, ingest.NewGapEvent(gap)); err != nil {
					return err
				}
			}
			if t := ev.Trade().Time; !t.Equal(recv) {
				s.metrics.Lag.Observe(recv.Sub(t).Seconds())
			}
		case ingest.KindQuote:
			if t := ev.Quote().Time; !t.Equal(recv) {
				s.metrics.Lag.Observe(recv.Sub(t).Seconds())
			}
		}
		if err := send(ctx, out, ev); err != nil {
			return err
		}
	}
	return nil
}

func (s *Stream) skip(reason string, err error, msg []byte) {
	s.metrics.DecodeError(reason)
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		ex := msg
		if len(ex) > excerptLen {
			ex = ex[:excerptLen]
		}
		s.log.Debug("wsfeed: skipped message", "exchange", s.metrics.exchange, "reason", reason,
			"err", err, "excerpt", string(ex))
	}
}

func send(ctx context.Context, out chan<- ingest.Event, ev ingest.Event) error {
	select {
	case out <- ev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sortTrades puts the trades of a message in ascending id order when every event is a
// trade with a numeric id: snapshots (Coinbase market_trades) list the newest first,
// and the Tracker would take the older ones for duplicates.
func sortTrades(evs []ingest.Draft) {
	if len(evs) < 2 {
		return
	}
	sorted := true
	for i := range evs {
		if evs[i].Kind != ingest.KindTrade {
			return
		}
		if _, ok := wire.ParseInt([]byte(evs[i].Trade.ID)); !ok {
			return
		}
		if i > 0 && tradeID(&evs[i-1]) > tradeID(&evs[i]) {
			sorted = false
		}
	}
	if sorted {
		return
	}
	slices.SortStableFunc(evs, func(a, b ingest.Draft) int {
		x, y := tradeID(&a), tradeID(&b)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	})
}

func tradeID(ev *ingest.Draft) int64 {
	v, _ := wire.ParseInt([]byte(ev.Trade.ID))
	return v
}
