package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/book"
	"github.com/tickstash/tickstash/book/bookstore"
	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/pipeline"
)

// BookReader reads stored order books: *bookstore.Reader. Read returns an error
// wrapping bookstore.ErrNotFound for a market without a book.
type BookReader interface {
	Read(ctx context.Context, ex market.Exchange, sym market.Symbol) (bookstore.Entry, error)
}

var _ BookReader = (*bookstore.Reader)(nil)

// errStaleBook is wrapped for a book that must not be served: 503 with the reason.
var errStaleBook = fmt.Errorf("%w: order book is stale", ErrUnavailable)

// readBook reads the market's book and rebuilds it for the figures; a stale book is an
// error wrapping ErrUnavailable that carries the reason.
func (s *Server) readBook(r *http.Request) (bookstore.Entry, *book.Book, error) {
	if s.deps.Books == nil {
		return bookstore.Entry{}, nil, errNotConfigured
	}
	ex, sym, err := marketOf(r)
	if err != nil {
		return bookstore.Entry{}, nil, err
	}
	e, err := s.deps.Books.Read(r.Context(), ex, sym)
	if err != nil {
		if errors.Is(err, bookstore.ErrNotFound) {
			return e, nil, fmt.Errorf("%w: no order book of %s:%s (books are kept by ingest --books)", ErrNotFound, ex, sym)
		}
		return e, nil, err
	}
	if e.Stale {
		return e, nil, fmt.Errorf("%w: %s:%s: %s", errStaleBook, ex, sym, e.Reason)
	}
	b, err := e.Book()
	if err != nil {
		return e, nil, err
	}
	return e, b, nil
}

// bookJSON is the wire form of GET .../book.
type bookJSON struct {
	Exchange    market.Exchange `json:"exchange"`
	Symbol      market.Symbol   `json:"symbol"`
	Time        time.Time       `json:"time"`
	Sequence    int64           `json:"sequence"`
	Written     time.Time       `json:"written"`
	AgeMillis   int64           `json:"age_ms"`
	StoredDepth int             `json:"stored_depth"`
	Bids        [][2]string     `json:"bids"`
	Asks        [][2]string     `json:"asks"`
	Spread      *string         `json:"spread,omitempty"`
	Mid         *string         `json:"mid,omitempty"`
	Microprice  *string         `json:"microprice,omitempty"`
	Imbalance   *imbalanceJSON  `json:"imbalance,omitempty"`
	DepthWithin *bandJSON       `json:"depth_within,omitempty"`
}

type imbalanceJSON struct {
	Levels int    `json:"levels"`
	Value  string `json:"value"`
}

type bandJSON struct {
	Bps         string `json:"bps"`
	BidQty      string `json:"bid_qty"`
	AskQty      string `json:"ask_qty"`
	BidNotional string `json:"bid_notional"`
	AskNotional string `json:"ask_notional"`
}

func decString(d decimal.Decimal, err error) *string {
	if err != nil {
		return nil
	}
	v := d.String()
	return &v
}

func (s *Server) handleBook(w http.ResponseWriter, r *http.Request) {
	depth, err := intParam(r, "depth", 20, 1, 5000)
	if err == nil {
		var k int
		if k, err = intParam(r, "k", 10, 1, 5000); err == nil {
			var bps decimal.Decimal
			if bps, err = decimalParam(r, "bps", "10"); err == nil {
				s.writeBook(w, r, depth, k, bps)
				return
			}
		}
	}
	s.writeError(w, r, err)
}

func (s *Server) writeBook(w http.ResponseWriter, r *http.Request, depth, k int, bps decimal.Decimal) {
	e, b, err := s.readBook(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := bookJSON{Exchange: e.Exchange, Symbol: e.Symbol, Time: e.Time, Sequence: e.Sequence, Written: e.Written,
		AgeMillis: e.Age.Milliseconds(), StoredDepth: e.Depth, Bids: e.Bids[:min(depth, len(e.Bids))], Asks: e.Asks[:min(depth, len(e.Asks))],
		Spread: decString(b.Spread()), Mid: decString(b.Mid()), Microprice: decString(b.Microprice())}
	if v, err := b.Imbalance(k); err == nil {
		out.Imbalance = &imbalanceJSON{Levels: k, Value: v.String()}
	}
	if band, err := b.DepthWithin(bps); err == nil {
		out.DepthWithin = &bandJSON{Bps: bps.String(), BidQty: band.Bid.String(), AskQty: band.Ask.String(),
			BidNotional: band.BidNotional.String(), AskNotional: band.AskNotional.String()}
	}
	writeJSON(w, http.StatusOK, out)
}

// impactJSON is the wire form of GET .../book/impact.
type impactJSON struct {
	Exchange    market.Exchange `json:"exchange"`
	Symbol      market.Symbol   `json:"symbol"`
	Side        string          `json:"side"`
	Requested   string          `json:"requested"`
	Filled      string          `json:"filled"`
	Complete    bool            `json:"complete"`
	Cost        string          `json:"cost"`
	AvgPrice    string          `json:"avg_price"`
	Best        string          `json:"best"`
	Worst       string          `json:"worst"`
	Levels      int             `json:"levels"`
	Slippage    string          `json:"slippage"`
	SlippageBps string          `json:"slippage_bps"`
	Sequence    int64           `json:"sequence"`
	StoredDepth int             `json:"stored_depth"`
}

func (s *Server) handleBookImpact(w http.ResponseWriter, r *http.Request) {
	side := r.URL.Query().Get("side")
	if side != "buy" && side != "sell" {
		s.writeError(w, r, fmt.Errorf("%w: side=%q: want buy or sell", ErrInvalid, side))
		return
	}
	qty, err := decimalParam(r, "qty", "")
	if err == nil && qty.Sign() <= 0 {
		err = fmt.Errorf("%w: qty=%q: want a positive decimal", ErrInvalid, r.URL.Query().Get("qty"))
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	e, b, err := s.readBook(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f, err := b.Walk(side == "buy", qty)
	if errors.Is(err, book.ErrEmptySide) {
		err = fmt.Errorf("%w: the %s side of %s:%s is empty", ErrNotFound, map[bool]string{true: "ask", false: "bid"}[side == "buy"], e.Exchange, e.Symbol)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, impactJSON{Exchange: e.Exchange, Symbol: e.Symbol, Side: side, Requested: f.Requested.String(),
		Filled: f.Filled.String(), Complete: f.Complete, Cost: f.Cost.String(), AvgPrice: f.AvgPrice.String(),
		Best: f.Best.String(), Worst: f.Worst.String(), Levels: f.Levels, Slippage: f.Slippage.String(),
		SlippageBps: f.SlippageBps.String(), Sequence: e.Sequence, StoredDepth: e.Depth})
}

func decimalParam(r *http.Request, name, def string) (decimal.Decimal, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		v = def
	}
	if v == "" {
		return decimal.Zero, fmt.Errorf("%w: %s: required, a decimal", ErrInvalid, name)
	}
	// Plain digits only: an exponent ("1e9999") would turn a few bytes of query into
	// ten-thousand-digit arithmetic and replies.
	if len(v) > 40 || strings.ContainsAny(v, "eE") {
		return decimal.Zero, fmt.Errorf("%w: %s=%q: want a plain non-negative decimal of at most 40 characters, such as 2.5", ErrInvalid, name, truncate(v, 48))
	}
	d, err := decimal.NewFromString(v)
	if err != nil || d.Sign() < 0 {
		return decimal.Zero, fmt.Errorf("%w: %s=%q: want a non-negative decimal", ErrInvalid, name, v)
	}
	return d, nil
}

// handleBookStream streams a market's book snapshots as Server-Sent Events, one
// "book" event per snapshot published on NATS (at most one per book interval); a
// stale book arrives with its state and reason and no levels.
func (s *Server) handleBookStream(w http.ResponseWriter, r *http.Request) {
	if s.deps.NATS == nil || s.deps.Books == nil {
		s.writeError(w, r, errNotConfigured)
		return
	}
	ex, sym, err := marketOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	st := stateOf(r)
	release, refusal := s.streams.acquire(st.token.ID, s.cfg.SSEMaxPerToken, s.cfg.SSEMaxStreams)
	if refusal != "" {
		s.m.sseRefused.WithLabelValues(refusal).Inc()
		st.denial = "sse cap " + refusal
		w.Header().Set("Retry-After", strconv.FormatInt(int64((s.cfg.SSERetryAfter+time.Second-1)/time.Second), 10))
		writeProblem(w, r, http.StatusTooManyRequests, "the token's or the server's cap of open streams is reached: close one or retry later")
		return
	}
	defer release()
	msgs := make(chan *nats.Msg, 16)
	sub, err := s.deps.NATS.ChanSubscribe(pipeline.BookSubject(ex, sym), msgs)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("%w: subscribe to the book of %s:%s: %v", ErrUnavailable, ex, sym, err))
		return
	}
	defer sub.Unsubscribe()
	write := s.startEventStream(w)
	if !write([]byte(": order book snapshots of " + string(ex) + ":" + string(sym) + "\nretry: 2000\n\n")) {
		return
	}
	// The stored book first, so a client need not wait for the next change.
	if e, err := s.deps.Books.Read(r.Context(), ex, sym); err == nil {
		if data, err := pipeline.EncodeBookSnapshot(&e.BookSnapshot); err == nil && !write(bookEvent(data)) {
			return
		}
	}
	s.m.sseClients.Inc()
	defer s.m.sseClients.Dec()
	beat := time.NewTicker(s.cfg.SSEHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.shutdown:
			return
		case m := <-msgs:
			if !write(bookEvent(m.Data)) {
				return
			}
		case <-beat.C:
			if !write([]byte(": heartbeat\n\n")) {
				return
			}
		}
	}
}

func bookEvent(data []byte) []byte {
	out := make([]byte, 0, len(data)+20)
	out = append(out, "event: book\ndata: "...)
	out = append(out, data...)
	return append(out, "\n\n"...)
}
