package ratelimit

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MiddlewareConfig configures NewMiddleware.
type MiddlewareConfig struct {
	// Identify returns the identifier a request is limited under, such as a user or
	// token id. An empty identifier with a nil error lets the request through
	// unlimited and without headers. Required.
	Identify func(*http.Request) (string, error)
	// Cost returns the units a request consumes. Nil means 1 for every request. A cost
	// the policies cannot grant gets a 400 problem response.
	Cost func(*http.Request) int64
	// OnError writes the response when Identify or the limiter fails. Nil means a
	// problem+json response: 500 for an Identify error, 503 for ErrUnavailable (Redis
	// down while failing closed), 400 for ErrInvalidCost.
	OnError func(http.ResponseWriter, *http.Request, error)
}

// NewMiddleware returns net/http middleware that checks each request with l. Every
// limited response carries the RateLimit-Policy and RateLimit header fields of the
// IETF httpapi ratelimit-headers draft (draft-ietf-httpapi-ratelimit-headers-10), e.g.
//
//	RateLimit-Policy: "burst";q=10;w=1, "daily";q=1000;w=86400
//	RateLimit: "burst";r=3;t=1, "daily";r=997;t=40000
//
// A denied request gets 429 Too Many Requests, Retry-After in whole seconds (rounded
// up), and an application/problem+json body (RFC 9457); next is not called. It panics
// if l or cfg.Identify is nil.
func NewMiddleware(l *Limiter, cfg MiddlewareConfig) func(http.Handler) http.Handler {
	if l == nil || cfg.Identify == nil {
		panic("ratelimit: NewMiddleware needs a Limiter and an Identify func")
	}
	onError := cfg.OnError
	if onError == nil {
		onError = writeError
	}
	policyHeader := PolicyHeader(l.policies)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, err := cfg.Identify(r)
			if err != nil {
				onError(w, r, fmt.Errorf("ratelimit: identify: %w", err))
				return
			}
			if id == "" {
				next.ServeHTTP(w, r)
				return
			}
			cost := int64(1)
			if cfg.Cost != nil {
				cost = cfg.Cost(r)
			}
			res, err := l.AllowN(r.Context(), id, cost)
			if err != nil {
				onError(w, r, err)
				return
			}
			h := w.Header()
			if len(res.Policies) > 0 { // not when failed open
				h.Set("RateLimit-Policy", policyHeader)
				h.Set("RateLimit", StatusHeader(res))
			}
			if res.Allowed {
				next.ServeHTTP(w, r)
				return
			}
			h.Set("Retry-After", strconv.FormatInt(ceilSeconds(res.RetryAfter), 10))
			writeProblem(w, http.StatusTooManyRequests, fmt.Sprintf(
				"Rate limit %q exceeded: %d of %d units left; retry in %ds.",
				res.Policy, res.Remaining, res.Limit, ceilSeconds(res.RetryAfter)), res.Policy)
		})
	}
}

// PolicyHeader returns the RateLimit-Policy field value announcing policies: each as
// "name";q=<Limit>;w=<Window in seconds, rounded up>. For TokenBucket and GCRA, q/w is
// the sustained rate; their Burst shows in the r of the RateLimit field.
func PolicyHeader(policies []Policy) string {
	var b strings.Builder
	for i, p := range policies {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q;q=%d;w=%d", p.Name, p.Limit, ceilSeconds(p.Window))
	}
	return b.String()
}

// StatusHeader returns the RateLimit field value for res: each policy as
// "name";r=<Remaining>;t=<ResetAfter in seconds, rounded up>.
func StatusHeader(res Result) string {
	var b strings.Builder
	for i, p := range res.Policies {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q;r=%d;t=%d", p.Policy, max(p.Remaining, 0), ceilSeconds(p.ResetAfter))
	}
	return b.String()
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// problem is an RFC 9457 problem details object.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Policy string `json:"policy,omitempty"`
}

func writeProblem(w http.ResponseWriter, status int, detail, policy string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problem{
		Type:   "about:blank",
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Policy: policy,
	})
}

func writeError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrInvalidCost):
		writeProblem(w, http.StatusBadRequest, "The request costs more than the rate limit can ever grant.", "")
	case errors.Is(err, ErrUnavailable):
		w.Header().Set("Retry-After", "1")
		writeProblem(w, http.StatusServiceUnavailable, "The rate limiter is unavailable.", "")
	default:
		writeProblem(w, http.StatusInternalServerError, "The request could not be rate limited.", "")
	}
}
