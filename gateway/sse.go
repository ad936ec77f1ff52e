package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/signals"
)

// handleSignals streams signals as Server-Sent Events:
//
//	id: <seq>
//	event: signal
//	data: {"seq":..,"id":..,"strategy":..,"exchange":..,"symbol":..,"data":{...}}
//
// A client that reconnects with Last-Event-ID: <seq> (or ?last_event_id=) resumes after
// that signal. Signals the token's subject is not entitled to are skipped. Idle streams
// get a comment line every Config.SSEHeartbeat; the stream ends when the server shuts down.
//
// A token holds at most Config.SSEMaxPerToken streams at once and the server at most
// Config.SSEMaxStreams; beyond either the answer is 429 with Retry-After. Each stream's
// JetStream consumer ends with it (see signals.StreamSource).
func (s *Server) handleSignals(w http.ResponseWriter, r *http.Request) {
	if s.deps.Signals == nil {
		s.writeError(w, r, errNotConfigured)
		return
	}
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = r.URL.Query().Get("last_event_id")
	}
	var after uint64
	if lastID != "" {
		var err error
		if after, err = strconv.ParseUint(lastID, 10, 64); err != nil {
			s.writeError(w, r, fmt.Errorf("%w: Last-Event-ID %q: want the id of an event of this stream", ErrInvalid, lastID))
			return
		}
	}
	var f SignalFilter
	for _, v := range splitList(r.URL.Query().Get("strategy")) {
		if !strategyName.MatchString(v) {
			s.writeError(w, r, fmt.Errorf("%w: strategy %q: want 1 to 64 of a-z, 0-9, '_' and '-'", ErrInvalid, v))
			return
		}
		f.Strategies = append(f.Strategies, v)
	}
	for _, v := range splitList(r.URL.Query().Get("symbol")) {
		sym := market.Symbol(v)
		if err := sym.Validate(); err != nil {
			s.writeError(w, r, fmt.Errorf("%w: %v", ErrInvalid, err))
			return
		}
		f.Symbols = append(f.Symbols, sym)
	}
	st := stateOf(r)
	subject := st.token.Subject
	release, refusal := s.streams.acquire(st.token.ID, s.cfg.SSEMaxPerToken, s.cfg.SSEMaxStreams)
	if refusal != "" {
		s.m.sseRefused.WithLabelValues(refusal).Inc()
		st.denial = "sse cap " + refusal
		w.Header().Set("Retry-After", strconv.FormatInt(int64((s.cfg.SSERetryAfter+time.Second-1)/time.Second), 10))
		detail := fmt.Sprintf("token %s already holds %d signal streams on this server, its limit: close one or retry later", st.token.ID, s.cfg.SSEMaxPerToken)
		if refusal == "total" {
			detail = fmt.Sprintf("this server already serves %d signal streams, its limit: retry later", s.cfg.SSEMaxStreams)
		}
		writeProblem(w, r, http.StatusTooManyRequests, detail)
		return
	}
	defer release()

	ctx, cancel := context.WithCancel(r.Context())
	events := make(chan SignalEvent, 64)
	errc := make(chan error, 1)
	streamDone := false
	// The stream's consumer is deleted before the handler returns, so that a gateway
	// shutting down has cleaned up before NATS drains.
	defer func() {
		cancel()
		if !streamDone {
			if err := <-errc; errors.Is(err, signals.ErrConsumerLeft) {
				s.m.sseLeft.Inc()
				s.log.Warn("signal stream ended", "err", err, "request_id", st.id)
			}
		}
	}()
	go func() {
		errc <- s.deps.Signals.Stream(ctx, f, after, func(e SignalEvent) error {
			select {
			case events <- e:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()

	write := s.startEventStream(w)
	if !write([]byte(": stream of signals; resume with Last-Event-ID\nretry: 2000\n\n")) {
		return
	}
	s.m.sseClients.Inc()
	defer s.m.sseClients.Dec()
	beat := time.NewTicker(s.cfg.SSEHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.shutdown:
			return
		case err := <-errc:
			streamDone = true
			if errors.Is(err, signals.ErrConsumerLeft) {
				s.m.sseLeft.Inc()
			}
			if err != nil && ctx.Err() == nil {
				s.log.Warn("signal stream ended", "err", err, "request_id", st.id)
				write([]byte("event: error\ndata: {\"error\":\"signal source failed; reconnect with Last-Event-ID\"}\n\n"))
			}
			return
		case <-beat.C:
			if !write([]byte(": keep-alive\n\n")) {
				return
			}
		case e := <-events:
			if s.deps.Entitlements != nil {
				ok, err := s.deps.Entitlements.Allowed(ctx, subject, e.Strategy, e.Symbol)
				if err != nil {
					s.log.Warn("entitlement check failed; signal withheld", "err", err)
					continue
				}
				if !ok {
					continue
				}
			}
			data, err := json.Marshal(e)
			if err != nil {
				continue
			}
			if !write([]byte("id: " + strconv.FormatUint(e.Seq, 10) + "\nevent: signal\ndata: " + string(data) + "\n\n")) {
				return
			}
		}
	}
}

// streamCaps counts the open signal streams, per token and in all.
type streamCaps struct {
	mu       sync.Mutex
	total    int
	perToken map[string]int
}

// acquire takes a place for a stream of token, or names the cap that refuses it
// ("token" or "total"); a negative cap is no cap. release gives the place back.
func (c *streamCaps) acquire(token string, perToken, total int) (release func(), refusal string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case perToken >= 0 && c.perToken[token] >= perToken:
		return nil, "token"
	case total >= 0 && c.total >= total:
		return nil, "total"
	}
	c.total++
	c.perToken[token]++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.total--
			if c.perToken[token]--; c.perToken[token] <= 0 {
				delete(c.perToken, token)
			}
		})
	}, ""
}

var strategyName = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// startEventStream answers 200 with the headers of a Server-Sent Events stream and
// returns the function that writes to it: each write is bounded by the write timeout
// and flushed, and false means the client is gone.
func (s *Server) startEventStream(w http.ResponseWriter) (write func([]byte) bool) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	return func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
}
