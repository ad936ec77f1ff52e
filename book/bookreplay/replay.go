// Package bookreplay replays capture files through the exchanges' depth decoders and
// book syncers, and writes the final, verified book of every market: the offline
// command `tickstash books [--depth N] FILE...` (cmd/tickstash wires its flags and exit
// status). Run is the replay itself:
//
//	sum, err := bookreplay.Run(ctx, files, bookreplay.Config{Depth: 10, Out: os.Stdout, Log: os.Stderr})
//	if errors.Is(err, bookreplay.ErrNotLive) { ... } // a book ended stale or never synced
package bookreplay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/tickstash/tickstash/book"
	"github.com/tickstash/tickstash/ingest/binance"
	"github.com/tickstash/tickstash/ingest/capture"
	"github.com/tickstash/tickstash/ingest/coinbase"
	"github.com/tickstash/tickstash/ingest/kraken"
	"github.com/tickstash/tickstash/market"
)

// ErrNotLive is wrapped by Run's error when a book ended stale or never synced; the
// books that did sync were still written.
var ErrNotLive = errors.New("bookreplay: some books are not live")

// ErrUnknownFeed is wrapped by Run's error for a capture of an exchange without depth
// decoding.
var ErrUnknownFeed = errors.New("bookreplay: no depth decoder for this feed")

// Config configures Run.
type Config struct {
	// Depth is the number of levels written per side; zero means all.
	Depth int
	// Out receives one JSON line per book. Nil means io.Discard.
	Out io.Writer
	// Log receives a line per verification failure and resync, per message that does
	// not decode, and the summary. Nil means io.Discard.
	Log io.Writer
	// MaxDecodeErrorLines bounds the decode-error lines written to Log per file (all
	// are counted); zero means 20.
	MaxDecodeErrorLines int
	// Offer, if not nil, is called with every book a message changed, after the
	// message is applied (replay --books hands them to a bookstore.Writer). The book
	// is valid only during the call.
	Offer func(*book.Book)
}

// Summary counts what Run saw, over all files.
type Summary struct {
	Files        int
	Books        int // books written
	NotLive      int // books that ended stale or never synced
	Messages     int64
	DecodeErrors int64
	Sync         book.Stats // summed over every syncer
}

// decoder is what every exchange's depth decoder offers.
type decoder interface {
	Decode(dst []book.Depth, msg []byte, recv time.Time) ([]book.Depth, error)
}

// Run replays the capture files (plain or .zst) in order. Per market it writes the
// final book to cfg.Out as one JSON line, best level first, decimals exact without
// trailing zeros:
//
//	{"type":"book","exchange":"coinbase","symbol":"BTC-USD","time":"2021-04-17T16:43:37.075687Z","sequence":123,"bids":[["65083.66","0.23929087"]],"asks":[["65083.67","0.29040961"]]}
//
// A book that is not live is written without levels, with its state and reason:
//
//	{"type":"book","exchange":"binance.us","symbol":"CRV-USDT","time":"...","sequence":0,"state":"empty","reason":"waiting for a snapshot"}
//
// Verification failures (gaps, checksum mismatches, crossed books) and resyncs go to
// cfg.Log as they happen, with a count at the end. Errors: a file that cannot be read
// or is not a capture (wrapping capture.ErrFormat), a feed without depth decoding
// (ErrUnknownFeed), ctx's error, or — after every book is written — ErrNotLive when a
// book ended stale or never synced.
func Run(ctx context.Context, files []string, cfg Config) (Summary, error) {
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.MaxDecodeErrorLines <= 0 {
		cfg.MaxDecodeErrorLines = 20
	}
	var sum Summary
	if len(files) == 0 {
		return sum, errors.New("bookreplay: no capture files given")
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		if err := runFile(ctx, f, cfg, &sum); err != nil {
			return sum, err
		}
		sum.Files++
	}
	fmt.Fprintf(cfg.Log, "books: %d written, %d not live; %d verification failures, %d resyncs, %d checksums verified, %d messages, %d decode errors\n",
		sum.Books, sum.NotLive, sum.Sync.Stale, sum.Sync.Resynced, sum.Sync.Checksums, sum.Messages, sum.DecodeErrors)
	if sum.NotLive > 0 {
		return sum, fmt.Errorf("%w: %d of %d books ended stale or never synced (see the log)", ErrNotLive, sum.NotLive, sum.Books)
	}
	return sum, nil
}

// feed is the decoding state of one connection (Binance: of the whole file, since its
// snapshots arrive over REST and its update ids are per market, not per connection).
type feed struct {
	dec    decoder
	syncer *book.Syncer
	order  int
}

func runFile(ctx context.Context, path string, cfg Config, sum *Summary) error {
	r, err := capture.Open(path)
	if err != nil {
		return fmt.Errorf("bookreplay: %w", err)
	}
	defer r.Close()
	r.SetHTTP(true)
	ex := capture.ExchangeOf(r.Header().Exchange)
	name := path
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		name = path[i+1:]
	}
	notify := func(n book.Notice) {
		if n.Kind != book.NoticeSynced {
			fmt.Fprintf(cfg.Log, "%s: %s\n", name, n)
		}
	}
	newFeed := func(addr string, order int) (*feed, error) {
		sc := book.SyncConfig{Notify: notify}
		switch ex {
		case market.Binance, market.BinanceUS:
			return &feed{dec: binance.NewDepthDecoder(ex, nil), syncer: book.NewSyncer(ex, book.RulesBinance, sc), order: order}, nil
		case market.Coinbase:
			if strings.Contains(addr, "advanced-trade") {
				return &feed{dec: coinbase.NewAdvancedDepthDecoder(), syncer: book.NewSyncer(ex, book.RulesCoinbaseAdvanced, sc), order: order}, nil
			}
			return &feed{dec: coinbase.NewExchangeDepthDecoder(), syncer: book.NewSyncer(ex, book.RulesCoinbase, sc), order: order}, nil
		case market.Kraken:
			return &feed{dec: kraken.NewDepthDecoder(0), syncer: book.NewSyncer(ex, book.RulesKraken, sc), order: order}, nil
		}
		return nil, fmt.Errorf("%w: %s (exchange %q)", ErrUnknownFeed, path, r.Header().Exchange)
	}
	var binanceFeed *feed
	var binanceDec *binance.DepthDecoder
	if ex == market.Binance || ex == market.BinanceUS {
		if binanceFeed, err = newFeed("", 0); err != nil {
			return err
		}
		binanceDec = binanceFeed.dec.(*binance.DepthDecoder)
	}
	addrs := map[string]string{}
	conns := map[string]*feed{}
	var all []*feed
	if binanceFeed != nil {
		all = append(all, binanceFeed)
	}
	var recs []book.Depth
	decodeErrors := int64(0)
	report := func(err error) {
		if decodeErrors++; decodeErrors <= int64(cfg.MaxDecodeErrorLines) {
			fmt.Fprintf(cfg.Log, "%s: %v\n", name, err)
		}
	}
	for n := 0; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("bookreplay: %s: %w", path, err)
		}
		switch rec.Type {
		case capture.TypeConnect:
			addrs[rec.Conn] = rec.Addr
			delete(conns, rec.Conn) // a reused name is a new connection
			continue
		case capture.TypeSend:
			continue
		case capture.TypeHTTP:
			if binanceDec == nil || !binance.IsDepthSnapshotURL(rec.Addr) {
				continue
			}
			sum.Messages++
			d, err := binanceDec.DecodeSnapshot(rec.Addr, rec.Data, rec.Time)
			if err != nil {
				report(fmt.Errorf("depth snapshot %s: %w", rec.Addr, err))
				continue
			}
			recs = append(recs[:0], d)
			apply(binanceFeed.syncer, recs, cfg.Offer)
			continue
		}
		f := binanceFeed
		if f == nil {
			if f = conns[rec.Conn]; f == nil {
				addr := rec.Addr
				if addr == "" {
					addr = addrs[rec.Conn]
				}
				if f, err = newFeed(addr, len(all)); err != nil {
					return err
				}
				conns[rec.Conn] = f
				all = append(all, f)
			}
		}
		sum.Messages++
		recs, err = f.dec.Decode(recs[:0], rec.Data, rec.Time)
		if err != nil {
			report(err)
			continue
		}
		apply(f.syncer, recs, cfg.Offer)
	}
	sum.DecodeErrors += decodeErrors
	// The last connection that kept a market's book has the final one.
	final := map[market.Symbol]*book.Book{}
	var order []market.Symbol
	for _, f := range all {
		st := f.syncer.Stats()
		addStats(&sum.Sync, st)
		for _, b := range f.syncer.Books() {
			if _, seen := final[b.Symbol()]; !seen {
				order = append(order, b.Symbol())
			}
			final[b.Symbol()] = b
		}
	}
	slices.Sort(order)
	var line []byte
	for _, sym := range order {
		b := final[sym]
		line = AppendJSON(line[:0], b, cfg.Depth)
		line = append(line, '\n')
		if _, err := cfg.Out.Write(line); err != nil {
			return fmt.Errorf("bookreplay: write: %w", err)
		}
		sum.Books++
		if st := b.Status(); st.State != book.StateLive {
			sum.NotLive++
			fmt.Fprintf(cfg.Log, "%s: %s %s ended %s: %s\n", name, b.Exchange(), sym, st.State, st.Reason)
		}
	}
	return nil
}

func apply(s *book.Syncer, recs []book.Depth, offer func(*book.Book)) {
	if offer == nil {
		s.Apply(recs)
		return
	}
	s.ApplyVisit(recs, offer)
}

func addStats(dst *book.Stats, s book.Stats) {
	dst.Messages += s.Messages
	dst.Updates += s.Updates
	dst.Levels += s.Levels
	dst.Buffered += s.Buffered
	dst.Dropped += s.Dropped
	dst.Duplicates += s.Duplicates
	dst.Checksums += s.Checksums
	dst.Synced += s.Synced
	dst.Resynced += s.Resynced
	dst.Stale += s.Stale
}
