// Package replay feeds capture files (package capture) through the live decoders and
// the same wsfeed.Stream as live feeds, so a replay produces exactly the events the
// live session did: for backtests, incident analysis and tests.
//
//	src := replay.New(replay.Config{Files: files, Speed: 1, Progress: bar.Set}, log, reg)
//	err := src.Run(ctx, out) // returns nil when every file is read
//
// The decoder of each connection is chosen from the capture header's exchange and the
// connection's address: Binance and Binance.US, Coinbase Exchange (ws-feed) or
// Advanced Trade, Kraken (v1 and v2 share a decoder). WriteJSON writes the events as
// normalized JSON lines for `tickstash replay --dry-run`.
package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/binance"
	"github.com/tickstash/tickstash/ingest/capture"
	"github.com/tickstash/tickstash/ingest/coinbase"
	"github.com/tickstash/tickstash/ingest/kraken"
	"github.com/tickstash/tickstash/ingest/wsfeed"
	"github.com/tickstash/tickstash/internal/backoff"
	"github.com/tickstash/tickstash/market"
)

// ErrUnknownFeed is wrapped when no decoder fits a capture's exchange and address.
var ErrUnknownFeed = errors.New("replay: no decoder for this feed")

// Config configures a replay.
type Config struct {
	// Files are capture files (plain or .zst), replayed one after the other. Required.
	Files []string
	// Speed scales the recorded time between messages: 1 replays in real time, 2 twice
	// as fast. Zero (or negative) replays as fast as possible.
	Speed float64
	// Progress, if not nil, is called with the bytes read and the total size of all
	// files, after each file and at most every ProgressEvery messages.
	Progress func(read, total int64)
	// ProgressEvery is how many messages pass between Progress calls. Zero means 1000.
	ProgressEvery int
	// SymbolMap is passed to the Binance decoder (see binance.NewDecoder). Nil uses the
	// built-in quote assets.
	SymbolMap map[string]market.Symbol
}

// Source replays capture files; it implements ingest.Source.
type Source struct {
	cfg Config
	log *slog.Logger
	reg prometheus.Registerer
}

var _ ingest.Source = (*Source)(nil)

// New returns a replay source. Metrics are registered on reg under the captured
// exchange's name, as for a live feed.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) *Source {
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 1000
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Source{cfg: cfg, log: log, reg: reg}
}

// Name returns "replay".
func (s *Source) Name() string { return "replay" }

// DecoderFor returns a fresh decoder for a connection of a capture whose header names
// exchange (cryptofeed's name, e.g. "BINANCE_US", or tickstash's) and whose address is
// addr. It returns an error wrapping ErrUnknownFeed when none fits.
func DecoderFor(exchange, addr string, symbols map[string]market.Symbol) (wsfeed.Decoder, error) {
	switch ex := capture.ExchangeOf(exchange); ex {
	case market.Binance, market.BinanceUS:
		return binance.NewDecoder(ex, symbols), nil
	case market.Coinbase:
		if strings.Contains(addr, "advanced-trade") {
			return coinbase.NewAdvancedDecoder(), nil
		}
		return coinbase.NewExchangeDecoder(), nil
	case market.Kraken:
		return kraken.NewDecoder(), nil
	}
	return nil, fmt.Errorf("%w: exchange %q, address %q", ErrUnknownFeed, exchange, addr)
}

// Run replays every file in order and returns nil when all are read, or when ctx is
// done. Errors: a file that cannot be opened or is not a capture, a malformed line
// (wrapping capture.ErrFormat), or a feed without a decoder (ErrUnknownFeed).
// Undecodable messages are counted and skipped as in a live feed.
func (s *Source) Run(ctx context.Context, out chan<- ingest.Event) error {
	if len(s.cfg.Files) == 0 {
		return errors.New("replay: no files")
	}
	var total, done int64
	for _, f := range s.cfg.Files {
		st, err := os.Stat(f)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		total += st.Size()
	}
	p := &pacer{speed: s.cfg.Speed}
	// One stream per feed for the whole replay, so that duplicates across a recorded
	// reconnect or across rotated files are dropped as they were live.
	streams := map[string]*wsfeed.Stream{}
	for _, f := range s.cfg.Files {
		n, err := s.file(ctx, f, out, p, streams, done, total)
		done += n
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if s.cfg.Progress != nil {
			s.cfg.Progress(done, total)
		}
	}
	return nil
}

// file replays one capture and returns the bytes it read.
func (s *Source) file(ctx context.Context, path string, out chan<- ingest.Event, p *pacer,
	streams map[string]*wsfeed.Stream, done, total int64) (int64, error) {
	r, err := capture.Open(path)
	if err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	defer r.Close()
	exchange := r.Header().Exchange
	addrs := map[string]string{}
	conns := map[string]*wsfeed.Stream{}
	n := 0
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return r.BytesRead(), nil
		}
		if err != nil {
			return r.BytesRead(), fmt.Errorf("replay: %s: %w", path, err)
		}
		switch rec.Type {
		case capture.TypeConnect:
			addrs[rec.Conn] = rec.Addr
			delete(conns, rec.Conn) // a reused name is a new connection
			continue
		case capture.TypeSend:
			continue
		}
		st := conns[rec.Conn]
		if st == nil {
			addr := rec.Addr
			if addr == "" {
				addr = addrs[rec.Conn]
			}
			dec, err := DecoderFor(exchange, addr, s.cfg.SymbolMap)
			if err != nil {
				return r.BytesRead(), fmt.Errorf("replay: %s: %w", path, err)
			}
			key := fmt.Sprintf("%s/%T", dec.Exchange(), dec)
			if st = streams[key]; st == nil {
				st = wsfeed.NewStream(dec, wsfeed.NewMetrics(s.reg, dec.Exchange()), s.log)
				streams[key] = st
			}
			conns[rec.Conn] = st
		}
		if err := p.wait(ctx, rec.Time); err != nil {
			return r.BytesRead(), nil
		}
		if err := st.Handle(ctx, rec.Data, rec.Time, out); err != nil && !errors.Is(err, wsfeed.ErrReconnect) {
			return r.BytesRead(), nil // ctx is done
		}
		if n++; s.cfg.Progress != nil && n%s.cfg.ProgressEvery == 0 {
			s.cfg.Progress(done+r.BytesRead(), total)
		}
	}
}

// pacer sleeps so that messages come out spaced as recorded, divided by speed.
type pacer struct {
	speed      float64
	start      time.Time // wall clock at the first message
	first      time.Time // recorded time of the first message
	registered bool
}

func (p *pacer) wait(ctx context.Context, at time.Time) error {
	if p.speed <= 0 {
		return ctx.Err()
	}
	if !p.registered {
		p.start, p.first, p.registered = time.Now(), at, true
		return ctx.Err()
	}
	due := p.start.Add(time.Duration(float64(at.Sub(p.first)) / p.speed))
	return backoff.Sleep(ctx, time.Until(due))
}
