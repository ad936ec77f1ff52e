package book

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/tickstash/tickstash/market"
)

// Rules are an exchange's rules for syncing books to its depth messages.
type Rules uint8

// The rules of each feed; the package doc describes them.
const (
	// RulesBinance: diffs (U..u) synced to a REST snapshot (lastUpdateId).
	RulesBinance Rules = iota + 1
	// RulesCoinbase: Coinbase Exchange level2, a snapshot then l2update; no sequence.
	RulesCoinbase
	// RulesCoinbaseAdvanced: Advanced Trade l2_data, with sequence_num counting every
	// message of the connection.
	RulesCoinbaseAdvanced
	// RulesKraken: Kraken v1 and v2 book, a snapshot then updates, each update
	// carrying a CRC32 of the top 10 levels.
	RulesKraken
)

func (r Rules) String() string {
	switch r {
	case RulesBinance:
		return "binance"
	case RulesCoinbase:
		return "coinbase"
	case RulesCoinbaseAdvanced:
		return "coinbase-advanced"
	case RulesKraken:
		return "kraken"
	}
	return fmt.Sprintf("rules(%d)", uint8(r))
}

// NoticeKind says what a Notice reports.
type NoticeKind uint8

// Notice kinds.
const (
	// NoticeSynced: a book went live on its first snapshot.
	NoticeSynced NoticeKind = iota + 1
	// NoticeResynced: a book went live on a later snapshot (after being stale, or
	// because the exchange sent a new one).
	NoticeResynced
	// NoticeStale: a verification failed; the book is stale until its next
	// snapshot. For Binance the owner must fetch a new REST snapshot; for Coinbase
	// and Kraken, resubscribe.
	NoticeStale
)

func (k NoticeKind) String() string {
	switch k {
	case NoticeSynced:
		return "synced"
	case NoticeResynced:
		return "resynced"
	case NoticeStale:
		return "stale"
	}
	return "notice"
}

// Notice reports a change of a book's integrity state.
type Notice struct {
	Kind     NoticeKind
	Exchange market.Exchange
	Symbol   market.Symbol
	Reason   string // why it went stale
	Sequence int64
	Time     time.Time
}

func (n Notice) String() string {
	s := fmt.Sprintf("%s %s %s at sequence %d", n.Exchange, n.Symbol, n.Kind, n.Sequence)
	if n.Reason != "" {
		s += ": " + n.Reason
	}
	return s
}

// SyncConfig configures a Syncer.
type SyncConfig struct {
	// MaxBuffered bounds the Binance diffs kept per market while its snapshot is
	// awaited; the oldest go first (a later snapshot makes them useless anyway).
	// Zero means 1000.
	MaxBuffered int
	// Notify, if not nil, is called with every Notice, synchronously.
	Notify func(Notice)
}

// Stats counts what a Syncer did.
type Stats struct {
	Messages   int64 // Apply calls
	Updates    int64 // update records applied to live books
	Levels     int64 // level changes applied (snapshots included)
	Buffered   int64 // Binance diffs buffered while a snapshot was awaited
	Dropped    int64 // records not applied: older than the snapshot, overflowing the buffer, or for a book not synced
	Duplicates int64 // Coinbase Advanced messages whose sequence_num was already seen
	Checksums  int64 // checksums verified
	Synced     int64
	Resynced   int64
	Stale      int64 // verification failures
}

// Syncer keeps the books of one feed connection in sync with its depth messages and
// verifies them by the exchange's rules. It is not safe for concurrent use.
type Syncer struct {
	exchange market.Exchange
	rules    Rules
	cfg      SyncConfig
	books    map[market.Symbol]*entry
	stats    Stats
	// Coinbase Advanced: the connection's last sequence_num.
	seq     int64
	haveSeq bool
}

type entry struct {
	book      *Book
	wasLive   bool
	needFirst bool         // Binance: the next diff is the first after the snapshot
	buf       []ownedDepth // Binance: diffs waiting for a snapshot
}

// NewSyncer returns a Syncer for the books of one connection of exchange ex.
func NewSyncer(ex market.Exchange, rules Rules, cfg SyncConfig) *Syncer {
	if cfg.MaxBuffered <= 0 {
		cfg.MaxBuffered = 1000
	}
	return &Syncer{exchange: ex, rules: rules, cfg: cfg, books: make(map[market.Symbol]*entry)}
}

// Book returns the book of sym, nil if no message named it.
func (s *Syncer) Book(sym market.Symbol) *Book {
	if e := s.books[sym]; e != nil {
		return e.book
	}
	return nil
}

// Books returns every book, sorted by symbol.
func (s *Syncer) Books() []*Book {
	out := make([]*Book, 0, len(s.books))
	for _, e := range s.books {
		out = append(out, e.book)
	}
	slices.SortFunc(out, func(a, b *Book) int { return cmp.Compare(a.symbol, b.symbol) })
	return out
}

// Stats returns the counts so far.
func (s *Syncer) Stats() Stats { return s.stats }

func (s *Syncer) entry(sym market.Symbol) *entry {
	e := s.books[sym]
	if e == nil {
		e = &entry{book: New(s.exchange, sym)}
		s.books[sym] = e
	}
	return e
}

// Apply applies the depth records decoded from one message, in order. Integrity
// problems are not errors: they make books stale and are reported through Notify,
// Stats and each book's Status.
func (s *Syncer) Apply(msg []Depth) {
	if len(msg) == 0 {
		return
	}
	s.stats.Messages++
	if s.rules == RulesCoinbaseAdvanced && !s.connSeq(msg[0].Last, msg[0].Time) {
		return
	}
	for i := range msg {
		d := &msg[i]
		if d.Kind == Sequence {
			continue
		}
		e := s.entry(d.Symbol)
		switch {
		case d.Kind == Snapshot:
			s.snapshot(e, d)
		case s.rules == RulesBinance:
			s.binanceDiff(e, d)
		default:
			s.update(e, d)
		}
	}
}

// connSeq checks Coinbase Advanced's connection-wide sequence; false drops the
// message as a duplicate.
func (s *Syncer) connSeq(n int64, t time.Time) bool {
	if s.haveSeq {
		if n <= s.seq {
			s.stats.Duplicates++
			return false
		}
		if n != s.seq+1 {
			reason := fmt.Sprintf("connection sequence gap: sequence_num %d after %d, %d messages lost; resubscribe for new snapshots", n, s.seq, n-s.seq-1)
			for _, b := range s.Books() {
				s.stale(s.books[b.symbol], reason)
			}
		}
	}
	s.seq, s.haveSeq = n, true
	return true
}

func (s *Syncer) snapshot(e *entry, d *Depth) {
	b := e.book
	b.Clear()
	if err := s.load(e, d); err != nil {
		// A fresh snapshot replaces any earlier stale reason.
		b.status.State = StateEmpty
		s.stale(e, "snapshot: "+err.Error())
		return
	}
	seq := d.Last
	b.MarkLive(seq, d.Time)
	kind := NoticeSynced
	if e.wasLive {
		kind = NoticeResynced
		s.stats.Resynced++
	} else {
		s.stats.Synced++
	}
	e.wasLive = true
	s.notify(Notice{Kind: kind, Exchange: s.exchange, Symbol: b.symbol, Sequence: seq, Time: d.Time})
	if !s.verify(e, d) {
		return
	}
	if s.rules == RulesBinance {
		e.needFirst = true
		pending := e.buf
		e.buf = nil
		for i := range pending {
			s.binanceDiff(e, &pending[i].Depth)
		}
	}
}

// binanceDiff applies a diff by Binance's rules, or buffers it while the book waits
// for a snapshot.
func (s *Syncer) binanceDiff(e *entry, d *Depth) {
	b := e.book
	if b.status.State != StateLive {
		s.buffer(e, d)
		return
	}
	seq := b.status.Sequence
	if e.needFirst {
		if d.Last <= seq {
			s.stats.Dropped++ // covered by the snapshot
			return
		}
		if d.First > seq+1 {
			s.stale(e, fmt.Sprintf("gap: the snapshot (lastUpdateId %d) is older than the first diff after it (U=%d); fetch a new snapshot", seq, d.First))
			s.buffer(e, d)
			return
		}
		e.needFirst = false
	} else if d.First != seq+1 {
		s.stale(e, fmt.Sprintf("gap: diff U=%d u=%d after u=%d (want U=%d); fetch a new snapshot", d.First, d.Last, seq, seq+1))
		s.buffer(e, d)
		return
	}
	s.applyUpdate(e, d, d.Last)
}

func (s *Syncer) buffer(e *entry, d *Depth) {
	if len(e.buf) >= s.cfg.MaxBuffered {
		n := copy(e.buf, e.buf[1:])
		e.buf = e.buf[:n]
		s.stats.Dropped++
	}
	e.buf = append(e.buf, own(d))
	s.stats.Buffered++
}

// update applies an update by the Coinbase and Kraken rules.
func (s *Syncer) update(e *entry, d *Depth) {
	b := e.book
	if b.status.State != StateLive {
		s.stats.Dropped++
		return
	}
	seq := b.status.Sequence + 1
	if s.rules == RulesCoinbaseAdvanced {
		seq = d.Last
	}
	s.applyUpdate(e, d, seq)
}

func (s *Syncer) applyUpdate(e *entry, d *Depth, seq int64) {
	if err := s.load(e, d); err != nil {
		s.stale(e, err.Error())
		return
	}
	s.stats.Updates++
	e.book.Advance(seq, d.Time)
	s.verify(e, d)
}

func (s *Syncer) load(e *entry, d *Depth) error {
	b := e.book
	for _, l := range d.Levels {
		if err := b.Set(l.Side, l.Price, l.Qty); err != nil {
			return fmt.Errorf("%s level %q %q: %w", l.Side, l.Price, l.Qty, err)
		}
	}
	s.stats.Levels += int64(len(d.Levels))
	if d.MaxDepth > 0 {
		b.Truncate(d.MaxDepth)
	}
	return nil
}

// verify checks the checksum and the crossing after a message; false means the book
// went stale.
func (s *Syncer) verify(e *entry, d *Depth) bool {
	b := e.book
	if d.HasChecksum {
		s.stats.Checksums++
		if got := b.KrakenChecksum(); got != d.Checksum {
			s.stale(e, fmt.Sprintf("checksum mismatch: the book hashes to %d, the exchange sent %d; resubscribe", got, d.Checksum))
			return false
		}
	}
	if b.Crossed() {
		bid, ask := b.bids.nodes[b.bids.best], b.asks.nodes[b.asks.best]
		s.stale(e, fmt.Sprintf("crossed book: best bid %s ≥ best ask %s; resync",
			appendFixed(nil, -bid.key, b.pscale), appendFixed(nil, ask.key, b.pscale)))
		return false
	}
	return true
}

func (s *Syncer) stale(e *entry, reason string) {
	b := e.book
	if b.status.State == StateStale {
		return
	}
	b.MarkStale(reason)
	s.stats.Stale++
	s.notify(Notice{Kind: NoticeStale, Exchange: s.exchange, Symbol: b.symbol, Reason: reason,
		Sequence: b.status.Sequence, Time: b.status.Time})
}

func (s *Syncer) notify(n Notice) {
	if s.cfg.Notify != nil {
		s.cfg.Notify(n)
	}
}

// ApplyVisit is Apply, then calls fn with every book the message named, and — when the
// message made books stale — with every stale book (a Coinbase Advanced gap stales
// books the message does not name). Writers of books (book/bookstore) hook in here.
func (s *Syncer) ApplyVisit(msg []Depth, fn func(*Book)) {
	staleBefore := s.stats.Stale
	s.Apply(msg)
	var last market.Symbol
	for i := range msg {
		if msg[i].Kind == Sequence || msg[i].Symbol == last {
			continue
		}
		last = msg[i].Symbol
		if e := s.books[last]; e != nil {
			fn(e.book)
		}
	}
	if s.stats.Stale != staleBefore {
		for _, e := range s.books {
			if e.book.status.State == StateStale {
				fn(e.book)
			}
		}
	}
}
