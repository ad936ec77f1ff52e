package binance

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tickstash/tickstash/book"
	"github.com/tickstash/tickstash/ingest/wsfeed"
	"github.com/tickstash/tickstash/ingest/wsfeed/wire"
	"github.com/tickstash/tickstash/market"
)

// DepthDecoder decodes Binance's diff-depth stream (<symbol>@depth@100ms, events
// "depthUpdate") and its REST depth snapshots (GET /api/v3/depth) into book.Depth
// records for a book.Syncer with book.RulesBinance. It is not safe for concurrent use.
type DepthDecoder struct {
	dec    *Decoder // for its symbol cache
	sc     wire.Scanner
	levels []book.RawLevel
	bad    error  // a level error met while reading levels
	body   []byte // the last fetched snapshot
}

// NewDepthDecoder returns a depth decoder for ex (market.Binance or
// market.BinanceUS); symbols as for NewDecoder.
func NewDepthDecoder(ex market.Exchange, symbols map[string]market.Symbol) *DepthDecoder {
	return &DepthDecoder{dec: NewDecoder(ex, symbols)}
}

// Decode appends the depth record of a websocket message (combined-stream or bare) to
// dst. Messages of other streams add nothing and return nil; a depthUpdate that does
// not decode returns a *wsfeed.DecodeError. The record's levels alias msg.
func (d *DepthDecoder) Decode(dst []book.Depth, msg []byte, recv time.Time) ([]book.Depth, error) {
	sc := &d.sc
	sc.Reset(msg)
	if !sc.Object() {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "%v", sc.Err())
	}
	var data []byte
	bare := false
	start := sc.Pos()
	for key, ok := sc.Key(); ok; key, ok = sc.Key() {
		switch string(key) {
		case "data":
			data = sc.Raw()
		case "stream", "result", "id":
			sc.Skip()
		default:
			bare = true
			sc.Skip()
		}
	}
	sc.End()
	if err := sc.Err(); err != nil {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "%v", err)
	}
	if bare {
		data = msg[start-1:]
	}
	if data == nil {
		return dst, nil
	}
	return d.update(dst, data, recv)
}

func (d *DepthDecoder) update(dst []book.Depth, data []byte, recv time.Time) ([]book.Depth, error) {
	sc := &d.sc
	sc.Reset(data)
	if !sc.Object() {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "data: %v", sc.Err())
	}
	d.levels, d.bad = d.levels[:0], nil
	var e, s, first, last, et []byte
	for key, ok := sc.Key(); ok; key, ok = sc.Key() {
		switch string(key) {
		case "e":
			e = sc.Str()
		case "s":
			s = sc.Str()
		case "U":
			first = sc.Number()
		case "u":
			last = sc.Number()
		case "E":
			et = sc.Number()
		case "b", "a":
			if sc.Peek() != '[' {
				sc.Skip() // bookTicker's best bid and ask
				continue
			}
			side := book.Bid
			if key[0] == 'a' {
				side = book.Ask
			}
			d.readLevels(side)
		default:
			sc.Skip()
		}
		if string(e) != "" && string(e) != "depthUpdate" {
			return dst, nil // another stream's event
		}
	}
	if d.bad != nil {
		return dst, d.bad
	}
	if err := sc.Err(); err != nil {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "data: %v", err)
	}
	if string(e) != "depthUpdate" {
		return dst, nil // bookTicker has no "e"
	}
	sym, err := d.dec.symbol(s)
	if err != nil {
		return dst, err
	}
	u0, ok1 := wire.ParseInt(first)
	u1, ok2 := wire.ParseInt(last)
	if !ok1 || !ok2 || u0 > u1 {
		return dst, wsfeed.Errorf(wsfeed.ReasonField, "update ids U=%.24q u=%.24q", first, last)
	}
	t := recv
	if et != nil {
		ms, ok := wire.ParseInt(et)
		if !ok {
			return dst, wsfeed.Errorf(wsfeed.ReasonTime, "event time %.24q", et)
		}
		t = wire.UnixMilli(ms)
	}
	return append(dst, book.Depth{Kind: book.Update, Symbol: sym, Time: t, First: u0, Last: u1, Levels: d.levels}), nil
}

// readLevels reads [["price","qty"],...] into d.levels.
func (d *DepthDecoder) readLevels(side book.Side) {
	sc := &d.sc
	if !sc.Array() {
		return
	}
	for sc.Next() {
		if !sc.Array() {
			return
		}
		var v [2][]byte
		i := 0
		for sc.Next() {
			if i < 2 {
				v[i] = sc.NumOrStr()
			} else {
				sc.Skip()
			}
			i++
		}
		if sc.Err() != nil {
			return
		}
		if i < 2 {
			d.bad = wsfeed.Errorf(wsfeed.ReasonField, "level of %d fields, want price and quantity", i)
			return
		}
		d.levels = append(d.levels, book.RawLevel{Side: side, Price: v[0], Qty: v[1]})
	}
}

// DecodeSnapshot decodes the body of GET <rest>/api/v3/depth?symbol=X&limit=N, the
// snapshot a diff-depth stream is synced to; the symbol comes from the request URL.
// The record's levels alias body.
func (d *DepthDecoder) DecodeSnapshot(rawURL string, body []byte, recv time.Time) (book.Depth, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return book.Depth{}, wsfeed.Errorf(wsfeed.ReasonField, "snapshot url %.80q: %v", rawURL, err)
	}
	sym, err := d.dec.symbol([]byte(u.Query().Get("symbol")))
	if err != nil {
		return book.Depth{}, err
	}
	sc := &d.sc
	sc.Reset(body)
	if !sc.Object() {
		return book.Depth{}, wsfeed.Errorf(wsfeed.ReasonJSON, "snapshot: %v", sc.Err())
	}
	d.levels, d.bad = d.levels[:0], nil
	var last []byte
	for key, ok := sc.Key(); ok; key, ok = sc.Key() {
		switch string(key) {
		case "lastUpdateId":
			last = sc.Number()
		case "bids":
			d.readLevels(book.Bid)
		case "asks":
			d.readLevels(book.Ask)
		default:
			sc.Skip()
		}
	}
	sc.End()
	if d.bad != nil {
		return book.Depth{}, d.bad
	}
	if err := sc.Err(); err != nil {
		return book.Depth{}, wsfeed.Errorf(wsfeed.ReasonJSON, "snapshot: %v", err)
	}
	id, ok := wire.ParseInt(last)
	if !ok {
		return book.Depth{}, wsfeed.Errorf(wsfeed.ReasonField, "snapshot lastUpdateId %.24q", last)
	}
	return book.Depth{Kind: book.Snapshot, Symbol: sym, Time: recv, Last: id, Levels: d.levels}, nil
}

// IsDepthSnapshotURL reports whether a recorded REST URL is a depth snapshot.
func IsDepthSnapshotURL(rawURL string) bool {
	u, err := url.Parse(rawURL)
	return err == nil && (u.Path == "/api/v3/depth" || u.Path == "/api/v1/depth")
}

func snapshotURL(restURL, native string, limit int) string {
	return strings.TrimSuffix(restURL, "/") + "/api/v3/depth?symbol=" + url.QueryEscape(native) + "&limit=" + strconv.Itoa(limit)
}

// RateLimitError is FetchSnapshot's error for HTTP 429 (the request weight limit was
// hit) and 418 (the IP is banned for ignoring 429s): nothing may be requested before
// Wait has passed.
type RateLimitError struct {
	Status int
	// Wait is the response's Retry-After; zero when it sent none.
	Wait time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("binance: depth snapshot: HTTP %d (request weight limit); retry after %s", e.Status, e.Wait)
}

// RetryAfter returns how long to wait before the next request.
func (e *RateLimitError) RetryAfter() time.Duration { return e.Wait }

// retryAfter parses a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// FetchSnapshot fetches the REST depth snapshot of a market (native name, e.g.
// "BTCUSDT") from restURL + "/api/v3/depth" with limit levels a side (zero means 1000,
// the most Binance sends) and decodes it, for a Syncer whose book went stale or has
// not synced yet. client nil means http.DefaultClient. The record's levels alias a
// body kept until the next call. Errors: the request, a status other than 200, or a
// body that does not decode; for HTTP 429 and 418 a *RateLimitError carrying the
// Retry-After.
func (d *DepthDecoder) FetchSnapshot(ctx context.Context, client *http.Client, restURL, native string, limit int) (book.Depth, error) {
	if client == nil {
		client = http.DefaultClient
	}
	if limit <= 0 {
		limit = 1000
	}
	u := snapshotURL(restURL, native, limit)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return book.Depth{}, fmt.Errorf("binance: depth snapshot %s: %w", native, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return book.Depth{}, fmt.Errorf("binance: depth snapshot %s: %w", native, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusTeapot {
		return book.Depth{}, &RateLimitError{Status: resp.StatusCode, Wait: retryAfter(resp.Header.Get("Retry-After"))}
	}
	if resp.StatusCode != http.StatusOK {
		return book.Depth{}, fmt.Errorf("binance: depth snapshot %s: HTTP %s; retry later", native, resp.Status)
	}
	d.body, err = io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return book.Depth{}, fmt.Errorf("binance: depth snapshot %s: %w", native, err)
	}
	dep, err := d.DecodeSnapshot(u, d.body, time.Now())
	if err != nil {
		return book.Depth{}, fmt.Errorf("binance: depth snapshot %s: %w", native, err)
	}
	return dep, nil
}
