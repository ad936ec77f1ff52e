package gateway

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/tickstash/tickstash/analysis"
	"github.com/tickstash/tickstash/book/bookstore"
	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/featureflag"
	"github.com/tickstash/tickstash/leaderboard"
)

// Errors that backends wired to the gateway may wrap so that the gateway answers with
// the right status: ErrNotFound 404, ErrInvalid 400, ErrConflict 409, ErrUnavailable 503.
// The errors of the real backends (cache, analysis, leaderboard, flags) are mapped too.
var (
	ErrNotFound    = errors.New("gateway: not found")
	ErrInvalid     = errors.New("gateway: invalid request")
	ErrConflict    = errors.New("gateway: conflict")
	ErrUnavailable = errors.New("gateway: backend unavailable")
)

// Problem is an RFC 9457 problem details object, the body of every error response
// outside /redis (Content-Type application/problem+json).
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

func writeProblem(w http.ResponseWriter, r *http.Request, status int, detail string) {
	p := Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail}
	if r != nil {
		p.Instance = r.URL.Path
		p.RequestID = w.Header().Get("X-Request-Id")
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Length")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

// statusOf maps a backend error to an HTTP status and whether its message may be shown.
func statusOf(err error) (int, bool) {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe), errors.Is(err, cache.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, true
	case errors.Is(err, ErrNotFound), errors.Is(err, cache.ErrNotFound),
		errors.Is(err, analysis.ErrJobNotFound), errors.Is(err, analysis.ErrNoResult),
		errors.Is(err, leaderboard.ErrUnknownBoard), errors.Is(err, leaderboard.ErrNotRanked),
		errors.Is(err, featureflag.ErrNotFound), errors.Is(err, bookstore.ErrNotFound):
		return http.StatusNotFound, true
	case errors.Is(err, ErrInvalid), errors.Is(err, analysis.ErrInvalidJob), errors.Is(err, cache.ErrInvalid),
		errors.Is(err, leaderboard.ErrInvalidBoard), errors.Is(err, leaderboard.ErrInvalidMember),
		errors.Is(err, leaderboard.ErrInvalidValue), errors.Is(err, leaderboard.ErrNoWindow),
		errors.Is(err, featureflag.ErrInvalid):
		return http.StatusBadRequest, true
	case errors.Is(err, ErrConflict), errors.Is(err, cache.ErrConflict):
		return http.StatusConflict, true
	case errors.Is(err, analysis.ErrQueueFull), errors.Is(err, ErrUnavailable), errors.Is(err, leaderboard.ErrContended):
		return http.StatusServiceUnavailable, true
	}
	return http.StatusInternalServerError, false
}

// writeError answers err as a problem; internal errors are logged, not shown.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, show := statusOf(err)
	detail := "internal error; see the server log for request " + w.Header().Get("X-Request-Id")
	if show {
		detail = err.Error()
	} else {
		s.log.ErrorContext(r.Context(), "request failed", "err", err, "path", r.URL.Path,
			"request_id", w.Header().Get("X-Request-Id"))
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeProblem(w, r, status, detail)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
