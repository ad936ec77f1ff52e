package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/analysis"
	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/internal/jsonerr"
	"github.com/tickstash/tickstash/market"
)

func (s *Server) buildRoutes() []route {
	mp := []param{}
	ivParam := param{"interval", "string", "candle interval: 1s 1m 3m 5m 15m 30m 1h 4h 1d", true}
	limit := func(def, max int) param {
		return param{"limit", "integer", fmt.Sprintf("how many, 1 to %d (default %d)", max, def), false}
	}
	window := param{"window", "string", "day, week, month or all (default all)", false}
	rs := []route{
		{method: "GET", path: "/openapi.json", summary: "This OpenAPI 3.1 document", tag: "meta", h: s.handleOpenAPI},
		{method: "GET", path: "/v1/markets", scope: ScopeMarketRead, tag: "market", summary: "Markets with recent data, most recently updated first", h: s.handleMarkets},
		{method: "GET", path: "/v1/markets/{exchange}/{symbol}/ticker", scope: ScopeMarketRead, tag: "market", params: mp, summary: "Latest trade and best bid/ask", h: s.handleTicker},
		{method: "GET", path: "/v1/markets/{exchange}/{symbol}/quote", scope: ScopeMarketRead, tag: "market", summary: "Best bid and ask", h: s.handleQuote},
		{method: "GET", path: "/v1/markets/{exchange}/{symbol}/candles", scope: ScopeMarketRead, tag: "market", summary: "Candles: the last limit, or those opening in [from, to)",
			params: []param{ivParam, limit(100, 1000), {"from", "string", "RFC 3339 time or Unix milliseconds; with to, a range", false}, {"to", "string", "RFC 3339 time or Unix milliseconds", false}}, h: s.handleCandles},
		{method: "GET", path: "/v1/markets/{exchange}/{symbol}/trades", scope: ScopeMarketRead, tag: "market", summary: "Recent trades, newest first", params: []param{limit(100, 1000)}, h: s.handleTrades},
		{method: "GET", path: "/v1/markets/{exchange}/{symbol}/indicators", scope: ScopeMarketRead, tag: "market", summary: "Latest indicator values of an analyzer",
			params: []param{ivParam, {"analyzer", "string", "analyzer name (default: the queue's default)", false}}, h: s.handleIndicators},
		{method: "GET", path: "/v1/markets/{exchange}/{symbol}/book", scope: ScopeMarketRead, tag: "market", errs: []int{503},
			summary: "The order book: top levels (best first, exact decimal strings), spread, mid, microprice, imbalance of the top k levels, depth within ±bps of the mid; 503 with the reason when the book is stale",
			params: []param{{"depth", "integer", "levels per side, 1 to 5000 (default 20; at most what ingest stores, --book-depth)", false},
				{"k", "integer", "levels per side the imbalance counts (default 10)", false},
				{"bps", "string", "half-width of the depth band around the mid in basis points, a decimal (default 10)", false}}, h: s.handleBook},
		{method: "GET", path: "/v1/markets/{exchange}/{symbol}/book/impact", scope: ScopeMarketRead, tag: "market", errs: []int{503},
			summary: "Fill price and slippage of buying or selling qty at market, walking the stored book (complete is false when the stored levels run out); 503 with the reason when the book is stale",
			params:  []param{{"side", "string", "buy (takes the asks) or sell (takes the bids)", true}, {"qty", "string", "quantity in the base asset, a positive decimal", true}}, h: s.handleBookImpact},
		{method: "GET", path: "/v1/markets/{exchange}/{symbol}/book/stream", scope: ScopeMarketRead, stream: true, tag: "market",
			summary: "The order book as Server-Sent Events: a \"book\" event with the stored snapshot, then one per snapshot published (at most one per book interval); a stale book arrives with state and reason and no levels", h: s.handleBookStream},
		{method: "POST", path: "/v1/jobs", scope: ScopeJobsWrite, mutating: true, tag: "jobs", body: "JobSpec", status: http.StatusAccepted, summary: "Submit an analysis job (coalesced per target)", h: s.handleSubmitJob},
		{method: "GET", path: "/v1/jobs/{id}", scope: ScopeJobsRead, tag: "jobs", summary: "A job's status", h: s.handleJobStatus},
		{method: "GET", path: "/v1/jobs/{id}/result", scope: ScopeJobsRead, tag: "jobs", summary: "The latest result of a job's target (404 until it has one)", h: s.handleJobResult},
		{method: "GET", path: "/v1/leaderboards/{board}/top", scope: ScopeLeaderboardRead, tag: "leaderboards", summary: "The top of a board", params: []param{window, limit(10, 100)}, h: s.handleBoardTop},
		{method: "GET", path: "/v1/leaderboards/{board}/members/{member}", scope: ScopeLeaderboardRead, tag: "leaderboards", summary: "A member's rank and score", params: []param{window}, h: s.handleBoardRank},
		{method: "GET", path: "/v1/leaderboards/{board}/members/{member}/around", scope: ScopeLeaderboardRead, tag: "leaderboards", summary: "A member with the members ranked just above and below", params: []param{window, limit(5, 50)}, h: s.handleBoardAround},
		{method: "POST", path: "/v1/leaderboards/{board}/scores", scope: ScopeLeaderboardWrite, mutating: true, tag: "leaderboards", body: "Score", summary: "Add to (or set) a member's score on every window of a board", h: s.handleBoardScore},
		{method: "POST", path: "/v1/leaderboards/traders.pnl/reports", scope: ScopeLeaderboardWrite, mutating: true, tag: "leaderboards", body: "PnLReport", summary: "Report a trader's realized PnL (counted once per report_id)", h: s.handlePnLReport},
		{method: "POST", path: "/v1/sessions", scope: ScopeSessionsWrite, mutating: true, tag: "sessions", body: "Session", status: http.StatusCreated, errs: []int{413}, summary: "Start a session for the token's subject (the oldest is evicted past the per-user cap)", h: s.handleSessionCreate},
		{method: "GET", path: "/v1/sessions", scope: ScopeSessionsRead, tag: "sessions", summary: "The live sessions of the token's subject, oldest first", h: s.handleSessionList},
		{method: "GET", path: "/v1/sessions/{id}", scope: ScopeSessionsRead, tag: "sessions", summary: "A session of the token's subject", h: s.handleSessionGet},
		{method: "POST", path: "/v1/sessions/{id}/touch", scope: ScopeSessionsWrite, mutating: true, tag: "sessions", status: http.StatusNoContent, summary: "Extend a session's life to the full TTL from now", h: s.handleSessionTouch},
		{method: "DELETE", path: "/v1/sessions/{id}", scope: ScopeSessionsWrite, mutating: true, tag: "sessions", status: http.StatusNoContent, summary: "End a session", h: s.handleSessionDelete},
		{method: "GET", path: "/v1/state", scope: ScopeStateRead, tag: "state", summary: "The state document of the token's subject and its version (also the ETag)", h: s.handleStateGet},
		{method: "PUT", path: "/v1/state", scope: ScopeStateWrite, mutating: true, tag: "state", body: "State", errs: []int{409, 413, 428},
			summary: "Replace the state document if it is still at the version given (If-Match or version; 0 creates it)", h: s.handleStatePut},
		{method: "GET", path: "/v1/flags/{flag}", scope: ScopeFlagsRead, tag: "flags", summary: "Evaluate a feature flag for the token's subject",
			params: []param{{"attr", "string", "subject attribute key=value (repeatable, at most 32)", false},
				{"default", "string", "variant served when the flag is not defined (without it: 404)", false}}, h: s.handleFlag},
		{method: "GET", path: "/v1/signals/stream", scope: ScopeSignalsRead, stream: true, tag: "signals", summary: "Signals as Server-Sent Events; resume with Last-Event-ID",
			params: []param{{"strategy", "string", "strategy names, comma-separated (default: all entitled)", false}, {"symbol", "string", "symbols, comma-separated", false}}, h: s.handleSignals},
		{method: "GET", path: "/v1/usage", scope: ScopeUsageRead, tag: "usage", summary: "The token's requests and bytes per UTC day", params: []param{{"days", "integer", "days back, 1 to 35 (default 7)", false}}, h: s.handleUsage},
		{method: "POST", path: "/redis", scope: ScopeRedis, upstash: true, tag: "redis", body: "RedisCommand", summary: "Run one Redis command (Upstash REST protocol)", h: s.handleRedis(restOne)},
		{method: "POST", path: "/redis/pipeline", scope: ScopeRedis, upstash: true, tag: "redis", body: "RedisCommands", summary: "Run commands in a pipeline (Upstash REST protocol)", h: s.handleRedis(restPipeline)},
		{method: "POST", path: "/redis/multi-exec", scope: ScopeRedis, upstash: true, tag: "redis", body: "RedisCommands", summary: "Run commands in MULTI/EXEC (Upstash REST protocol)", h: s.handleRedis(restMulti)},
		{method: "GET", path: "/redis/{command...}", scope: ScopeRedis, upstash: true, tag: "redis", summary: "Run a command given in the path: /redis/set/key/value?EX=60", h: s.handleRedis(restPath)},
		{method: "POST", path: "/redis/{command...}", scope: ScopeRedis, upstash: true, tag: "redis", summary: "Run a command given in the path; the body is its last argument", h: s.handleRedis(restPath)},
	}
	return rs
}

// decodeJSON decodes a request body into v: one JSON value, no unknown fields.
func decodeJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body) // bounded by the server's MaxBytesReader
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return fmt.Errorf("%w: reading the body: %v", ErrInvalid, err)
	}
	if err := checkJSONText(body); err != nil {
		return fmt.Errorf("%w: %v; binary data must be base64-encoded in a string", ErrInvalid, err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var ute *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &mbe):
			return err
		case errors.Is(err, io.ErrUnexpectedEOF):
			return fmt.Errorf("%w: malformed JSON: the body ends in the middle of a value", ErrInvalid)
		case errors.Is(err, io.EOF):
			return fmt.Errorf("%w: empty body: want a JSON object", ErrInvalid)
		case errors.As(err, &ute):
			return fmt.Errorf("%w: %s", ErrInvalid, jsonerr.Describe(ute))
		case errors.As(err, &se):
			return fmt.Errorf("%w: malformed JSON at byte %d: %v", ErrInvalid, se.Offset, err)
		}
		return fmt.Errorf("%w: %s", ErrInvalid, jsonerr.Describe(err))
	}
	if dec.More() {
		return fmt.Errorf("%w: more than one JSON value in the body", ErrInvalid)
	}
	return nil
}

func marketOf(r *http.Request) (market.Exchange, market.Symbol, error) {
	ex := market.Exchange(r.PathValue("exchange"))
	sym := market.Symbol(r.PathValue("symbol"))
	if err := ex.Validate(); err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := sym.Validate(); err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return ex, sym, nil
}

func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%w: %s=%q: want an integer from %d to %d", ErrInvalid, name, v, lo, hi)
	}
	return n, nil
}

func timeParam(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s=%q: want RFC 3339 or Unix milliseconds", ErrInvalid, name, v)
	}
	return t, nil
}

func intervalParam(r *http.Request) (market.Interval, error) {
	v := r.URL.Query().Get("interval")
	if v == "" {
		return 0, fmt.Errorf("%w: interval is required (1s 1m 3m 5m 15m 30m 1h 4h 1d)", ErrInvalid)
	}
	iv, err := market.ParseInterval(v)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return iv, nil
}

var errNotConfigured = fmt.Errorf("%w: this gateway has no backend for the route", ErrUnavailable)

func (s *Server) handleMarkets(w http.ResponseWriter, r *http.Request) {
	if s.deps.Market == nil {
		s.writeError(w, r, errNotConfigured)
		return
	}
	ms, err := s.deps.Market.Markets(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	type item struct {
		Exchange market.Exchange `json:"exchange"`
		Symbol   market.Symbol   `json:"symbol"`
	}
	out := make([]item, len(ms))
	for i, m := range ms {
		out[i] = item{m.Exchange, m.Symbol}
	}
	writeJSON(w, http.StatusOK, map[string]any{"markets": out})
}

// tickerJSON is the wire form of a ticker: decimals as strings, times RFC 3339.
type tickerJSON struct {
	Exchange    market.Exchange  `json:"exchange"`
	Symbol      market.Symbol    `json:"symbol"`
	Last        *decimal.Decimal `json:"last,omitempty"`
	LastQty     *decimal.Decimal `json:"last_qty,omitempty"`
	LastSide    string           `json:"last_side,omitempty"`
	LastTradeID string           `json:"last_trade_id,omitempty"`
	LastTime    *time.Time       `json:"last_time,omitempty"`
	Bid         *decimal.Decimal `json:"bid,omitempty"`
	BidQty      *decimal.Decimal `json:"bid_qty,omitempty"`
	Ask         *decimal.Decimal `json:"ask,omitempty"`
	AskQty      *decimal.Decimal `json:"ask_qty,omitempty"`
	QuoteTime   *time.Time       `json:"quote_time,omitempty"`
	UpdatedAt   *time.Time       `json:"updated_at,omitempty"`
}

func decOrNil(d decimal.Decimal, present bool) *decimal.Decimal {
	if !present {
		return nil
	}
	return &d
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() || t.UnixNano() == 0 {
		return nil
	}
	return &t
}

func (s *Server) ticker(w http.ResponseWriter, r *http.Request) (cache.Ticker, bool) {
	if s.deps.Market == nil {
		s.writeError(w, r, errNotConfigured)
		return cache.Ticker{}, false
	}
	ex, sym, err := marketOf(r)
	if err == nil {
		var t cache.Ticker
		if t, err = s.deps.Market.Ticker(r.Context(), ex, sym); err == nil {
			return t, true
		}
	}
	s.writeError(w, r, err)
	return cache.Ticker{}, false
}

func (s *Server) handleTicker(w http.ResponseWriter, r *http.Request) {
	t, ok := s.ticker(w, r)
	if !ok {
		return
	}
	hasLast := t.LastTradeID != "" || !t.LastTime.IsZero()
	hasQuote := !t.QuoteTime.IsZero() || !t.Bid.IsZero() || !t.Ask.IsZero()
	out := tickerJSON{Exchange: t.Exchange, Symbol: t.Symbol, Last: decOrNil(t.Last, hasLast), LastQty: decOrNil(t.LastQty, hasLast),
		LastTradeID: t.LastTradeID, LastTime: timeOrNil(t.LastTime), Bid: decOrNil(t.Bid, hasQuote), BidQty: decOrNil(t.BidQty, hasQuote),
		Ask: decOrNil(t.Ask, hasQuote), AskQty: decOrNil(t.AskQty, hasQuote), QuoteTime: timeOrNil(t.QuoteTime), UpdatedAt: timeOrNil(t.UpdatedAt)}
	if hasLast && t.LastSide != 0 {
		out.LastSide = t.LastSide.String()
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleQuote(w http.ResponseWriter, r *http.Request) {
	t, ok := s.ticker(w, r)
	if !ok {
		return
	}
	if t.QuoteTime.IsZero() && t.Bid.IsZero() && t.Ask.IsZero() {
		s.writeError(w, r, fmt.Errorf("%w: no quote for %s:%s yet", ErrNotFound, t.Exchange, t.Symbol))
		return
	}
	writeJSON(w, http.StatusOK, tickerJSON{Exchange: t.Exchange, Symbol: t.Symbol, Bid: &t.Bid, BidQty: &t.BidQty,
		Ask: &t.Ask, AskQty: &t.AskQty, QuoteTime: timeOrNil(t.QuoteTime)})
}

func (s *Server) handleCandles(w http.ResponseWriter, r *http.Request) {
	if s.deps.Market == nil {
		s.writeError(w, r, errNotConfigured)
		return
	}
	err := func() error {
		ex, sym, err := marketOf(r)
		if err != nil {
			return err
		}
		iv, err := intervalParam(r)
		if err != nil {
			return err
		}
		n, err := intParam(r, "limit", 100, 1, 1000)
		if err != nil {
			return err
		}
		from, err := timeParam(r, "from")
		if err != nil {
			return err
		}
		to, err := timeParam(r, "to")
		if err != nil {
			return err
		}
		var cs []market.Candle
		switch {
		case from.IsZero() && to.IsZero():
			cs, err = s.deps.Market.LastCandles(r.Context(), ex, sym, iv, n)
		case from.IsZero() || to.IsZero() || !from.Before(to):
			return fmt.Errorf("%w: give both from and to, with from before to", ErrInvalid)
		default:
			cs, err = s.deps.Market.CandlesBetween(r.Context(), ex, sym, iv, from, to, n)
		}
		if err != nil {
			return err
		}
		if cs == nil {
			cs = []market.Candle{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"exchange": ex, "symbol": sym, "interval": iv.String(), "candles": cs})
		return nil
	}()
	if err != nil {
		s.writeError(w, r, err)
	}
}

func (s *Server) handleTrades(w http.ResponseWriter, r *http.Request) {
	if s.deps.Market == nil {
		s.writeError(w, r, errNotConfigured)
		return
	}
	ex, sym, err := marketOf(r)
	var n int
	if err == nil {
		n, err = intParam(r, "limit", 100, 1, 1000)
	}
	var ts []market.Trade
	if err == nil {
		ts, err = s.deps.Market.RecentTrades(r.Context(), ex, sym, n)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if ts == nil {
		ts = []market.Trade{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"exchange": ex, "symbol": sym, "trades": ts})
}

func (s *Server) handleIndicators(w http.ResponseWriter, r *http.Request) {
	if s.deps.Jobs == nil {
		s.writeError(w, r, errNotConfigured)
		return
	}
	ex, sym, err := marketOf(r)
	var iv market.Interval
	if err == nil {
		iv, err = intervalParam(r)
	}
	var res analysis.Result
	if err == nil {
		if a := r.URL.Query().Get("analyzer"); a != "" {
			res, err = s.deps.Jobs.LatestResultOf(r.Context(), ex, sym, iv, a)
		} else {
			res, err = s.deps.Jobs.LatestResult(r.Context(), ex, sym, iv)
		}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) handleSubmitJob(w http.ResponseWriter, r *http.Request) {
	if s.deps.Jobs == nil {
		s.writeError(w, r, errNotConfigured)
		return
	}
	var spec analysis.JobSpec
	if err := decodeJSON(r, &spec); err != nil {
		s.writeError(w, r, err)
		return
	}
	stateOf(r).target = fmt.Sprintf("%s:%s:%s:%s", spec.Exchange, spec.Symbol, spec.Interval, spec.Analyzer)
	id, err := s.deps.Jobs.Enqueue(r.Context(), spec)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/jobs/"+id)
	writeJSON(w, http.StatusAccepted, map[string]string{"id": id, "status": "/v1/jobs/" + id, "result": "/v1/jobs/" + id + "/result"})
}

func (s *Server) handleJobStatus(w http.ResponseWriter, r *http.Request) {
	if s.deps.Jobs == nil {
		s.writeError(w, r, errNotConfigured)
		return
	}
	st, err := s.deps.Jobs.Status(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) handleJobResult(w http.ResponseWriter, r *http.Request) {
	if s.deps.Jobs == nil {
		s.writeError(w, r, errNotConfigured)
		return
	}
	st, err := s.deps.Jobs.Status(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.deps.Jobs.LatestResultOf(r.Context(), st.Spec.Exchange, st.Spec.Symbol, st.Spec.Interval, st.Spec.Analyzer)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("%w (job %s is %s)", err, st.ID, st.State))
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) handleUsage(w http.ResponseWriter, r *http.Request) {
	days, err := intParam(r, "days", 7, 1, 35)
	var us []Usage
	tok := stateOf(r).token
	if err == nil {
		us, err = s.UsageOf(r.Context(), tok.ID, days)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": tok.ID, "days": us})
}
