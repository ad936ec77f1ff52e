package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tickstash/tickstash/ratelimit"
)

// route is one registered route: what it needs and how the OpenAPI document shows it.
type route struct {
	method, path string
	// scope the token needs; "" means no authentication (the OpenAPI document).
	scope    Scope
	mutating bool // audited on success too
	stream   bool // SSE: no latency histogram
	upstash  bool // errors in the Upstash REST format
	summary  string
	tag      string
	params   []param
	body     string // request body schema name in the OpenAPI document; "" means none
	status   int    // success status in the OpenAPI document; 0 means 200
	errs     []int  // error statuses the OpenAPI document lists besides the common ones
	h        http.HandlerFunc

	pat string       // method and path, set by New
	m   routeMetrics // the route's series, looked up once
}

func (rt *route) pattern() string { return rt.method + " " + rt.path }

// param is a query parameter, for the OpenAPI document.
type param struct {
	name, typ, desc string
	required        bool
}

type tokenCacheEntry struct {
	tok Token
	at  time.Time
}

// tokenCache keeps recently authenticated tokens by hash, so that most requests need
// no Redis round trip for authentication. It is bounded: when full it starts afresh.
// Announced token changes drop entries (see tokenevents.go).
type tokenCache struct {
	mu sync.Mutex
	m  map[string]tokenCacheEntry
	// gen counts announced changes: a lookup that overlapped one does not cache its result.
	gen uint64
}

const tokenCacheMax = 10_000

// authenticate finds the request's token. The reason names the failure for the
// metrics and the audit log.
func (s *Server) authenticate(r *http.Request, st *reqState) (Token, string, error) {
	raw := ""
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, cred, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return Token{}, "malformed", fmt.Errorf("%w: want Authorization: Bearer <token>", ErrTokenMalformed)
		}
		raw = strings.TrimSpace(cred)
	} else if st.upstash {
		raw = r.URL.Query().Get("_token") // Upstash REST accepts the token as a query parameter
	}
	if raw == "" {
		return Token{}, "missing", errors.New("gateway: no token: send Authorization: Bearer <token>")
	}
	if !tokenShaped(raw) {
		return Token{}, "malformed", ErrTokenMalformed
	}
	st.credential = true
	hash := hashToken(raw)
	now := s.cfg.Now()
	var gen uint64
	if s.cfg.TokenCacheTTL > 0 {
		s.tcache.mu.Lock()
		e, ok := s.tcache.m[hash]
		gen = s.tcache.gen
		s.tcache.mu.Unlock()
		if ok && now.Sub(e.at) < s.cfg.TokenCacheTTL {
			if err := s.tokens.usable(&e.tok); err != nil {
				st.credentialID = e.tok.ID
				return Token{}, reasonOf(err), err
			}
			return e.tok, "", nil
		}
	}
	tok, err := s.tokens.Authenticate(r.Context(), raw)
	if err != nil {
		st.credentialID = tok.ID // set for a revoked or expired token, "" for an unknown one
		return Token{}, reasonOf(err), err
	}
	if s.cfg.TokenCacheTTL > 0 {
		s.tcache.mu.Lock()
		if len(s.tcache.m) >= tokenCacheMax {
			s.tcache.m = map[string]tokenCacheEntry{}
		}
		if s.tcache.gen == gen {
			s.tcache.m[hash] = tokenCacheEntry{tok: tok, at: now}
		}
		s.tcache.mu.Unlock()
	}
	return tok, "", nil
}

// tokenShaped reports whether raw looks like a token Create issues: "tsk_" and 43
// base64url characters. Only such credentials are looked up in Redis.
func tokenShaped(raw string) bool {
	if len(raw) != len(tokenPrefix)+43 || !strings.HasPrefix(raw, tokenPrefix) {
		return false
	}
	for i := len(tokenPrefix); i < len(raw); i++ {
		c := raw[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func reasonOf(err error) string {
	switch {
	case errors.Is(err, ErrTokenMalformed):
		return "malformed"
	case errors.Is(err, ErrTokenUnknown):
		return "unknown"
	case errors.Is(err, ErrTokenExpired):
		return "expired"
	case errors.Is(err, ErrTokenRevoked):
		return "revoked"
	}
	return "error"
}

// wrap puts authentication, scope, signature and rate checks in front of a route.
func (s *Server) wrap(rt *route) http.Handler {
	next := http.HandlerFunc(rt.h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := stateOf(r)
		st.route = rt
		st.upstash = rt.upstash
		if r.ContentLength > 0 {
			st.bytesIn = r.ContentLength
		}
		if rt.scope == "" {
			next(w, r)
			return
		}
		tok, reason, err := s.authenticate(r, st)
		if err != nil {
			if errors.Is(err, ErrNoSecretKey) || errors.Is(err, ErrSecretKey) {
				// The operator's mistake, not the caller's: say so in the log, not to the caller.
				s.log.ErrorContext(r.Context(), "cannot open a token's signing secret", "err", err, "request_id", st.id)
				s.m.authFailures.WithLabelValues("secret_key").Inc()
				w.Header().Set("Retry-After", "60")
				writeProblemFor(w, r, st, http.StatusServiceUnavailable,
					"the gateway cannot verify this token's signatures: its signing-secret key is not configured here (see the gateway log)")
				return
			}
			if reason == "error" {
				s.writeErrorFor(w, r, st, fmt.Errorf("%w: %w", ErrUnavailable, err))
				return
			}
			s.m.authFailures.WithLabelValues(reason).Inc()
			st.denial = "token " + reason
			if !st.credential {
				// No token-shaped credential: nothing was looked up, and nothing will be
				// recorded but a count. An address that keeps sending such requests is
				// told to stop, still without a Redis round trip.
				st.charged = true
				if ok, retry := s.audit.anon.take(clientKey(clientAddr(r)), s.cfg.Now()); !ok {
					s.m.throttled.Inc()
					st.denial = "throttled: " + st.denial
					secs := int64((retry + time.Second - 1) / time.Second)
					w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
					writeProblemFor(w, r, st, http.StatusTooManyRequests,
						fmt.Sprintf("too many refused requests from this address; retry in %ds with a token (Authorization: Bearer tsk_...)", secs))
					return
				}
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="tickstash"`)
			writeProblemFor(w, r, st, http.StatusUnauthorized, authMessage(reason))
			return
		}
		st.token = &tok
		if !tok.Has(rt.scope) {
			s.m.authFailures.WithLabelValues("scope").Inc()
			st.denial = "scope " + string(rt.scope)
			writeProblemFor(w, r, st, http.StatusForbidden,
				fmt.Sprintf("token %s lacks the scope %s that %s needs", tok.ID, rt.scope, rt.pattern()))
			return
		}
		if tok.Signing {
			// The headers are checked before the body is read: a malformed or stale
			// signature costs neither the upload nor a hash.
			reason, err := s.signatureHeaders(r, &tok)
			if err == nil {
				var body []byte
				if body, err = io.ReadAll(r.Body); err != nil {
					var mbe *http.MaxBytesError
					if errors.As(err, &mbe) {
						st.denial = "body too large"
						writeProblemFor(w, r, st, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds the limit of %d bytes", mbe.Limit))
						return
					}
					writeProblemFor(w, r, st, http.StatusBadRequest, "could not read the request body")
					return
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
				reason, err = s.verifySignature(r, &tok, body)
			}
			if err != nil {
				if reason == "error" {
					s.writeErrorFor(w, r, st, fmt.Errorf("%w: %w", ErrUnavailable, err))
					return
				}
				s.m.sigFailures.WithLabelValues(reason).Inc()
				s.m.authFailures.WithLabelValues("signature").Inc()
				st.denial = "signature " + reason
				writeProblemFor(w, r, st, http.StatusUnauthorized, err.Error())
				return
			}
		}
		policy := tok.Rate
		if policy == "" {
			policy = s.cfg.DefaultRate
		}
		if policy == "" {
			next(w, r)
			return
		}
		le, err := s.limiterFor(policy)
		if err != nil {
			s.writeErrorFor(w, r, st, err)
			return
		}
		// The check is inline rather than through ratelimit.NewMiddleware: the Upstash
		// SDKs read {"error"} on /redis, and no handler is built per request.
		st.limiter = le
		res, err := le.lim.Allow(r.Context(), tok.ID)
		if err != nil {
			s.writeErrorFor(w, r, st, fmt.Errorf("%w: rate limiter: %w", ErrUnavailable, err))
			return
		}
		h := w.Header()
		if len(res.Policies) > 0 { // none when the limiter failed open
			h["Ratelimit-Policy"] = le.policyHeader
			h.Set("RateLimit", ratelimit.StatusHeader(res))
		}
		if !res.Allowed {
			secs := int64((res.RetryAfter + time.Second - 1) / time.Second)
			h.Set("Retry-After", strconv.FormatInt(secs, 10))
			st.denial = "rate " + res.Policy
			if rt.upstash {
				writeUpstashError(w, http.StatusTooManyRequests, fmt.Sprintf("ERR rate limit %q exceeded; retry in %ds", res.Policy, secs))
			} else {
				writeProblem(w, r, http.StatusTooManyRequests, fmt.Sprintf("rate limit %q exceeded: %d of %d left; retry in %ds",
					res.Policy, res.Remaining, res.Limit, secs))
			}
			return
		}
		next(w, r)
	})
}

func authMessage(reason string) string {
	switch reason {
	case "missing":
		return "no token: send Authorization: Bearer <token>"
	case "malformed":
		return "malformed token or Authorization header: want Authorization: Bearer tsk_..."
	case "expired":
		return "token expired"
	case "revoked":
		return "token revoked"
	}
	return "unknown token"
}

// writeErrorFor is writeError in the request's protocol.
func (s *Server) writeErrorFor(w http.ResponseWriter, r *http.Request, st *reqState, err error) {
	if !st.upstash {
		s.writeError(w, r, err)
		return
	}
	status, show := statusOf(err)
	if !show {
		s.log.ErrorContext(r.Context(), "request failed", "err", err, "request_id", st.id)
	}
	writeUpstashError(w, status, "ERR "+err.Error())
}

// leaseUnits is the lease of a token limited by ps: share (Config.RateLease, defaults
// applied) of the smallest capacity, rounded down; 0 (exact checks) when that is not a
// whole unit or share is negative.
func leaseUnits(ps []ratelimit.Policy, share float64) int64 {
	if share < 0 {
		return 0
	}
	return int64(float64(ratelimit.SmallestCapacity(ps)) * share)
}

type limiters struct {
	mu sync.Mutex
	m  map[string]*limiterEntry
}

type limiterEntry struct {
	lim          *ratelimit.Limiter
	policyHeader []string // the RateLimit-Policy header value, built once
}

// limiterFor returns the limiter of a policy string, built on first use. Tokens with the
// same policy share it; each token is its own identifier.
func (s *Server) limiterFor(policy string) (*limiterEntry, error) {
	s.limits.mu.Lock()
	defer s.limits.mu.Unlock()
	if e, ok := s.limits.m[policy]; ok {
		return e, nil
	}
	ps, err := ParseRate(policy)
	if err != nil {
		return nil, fmt.Errorf("gateway: token rate %q: %w", policy, err)
	}
	lim, err := ratelimit.NewLimiter(s.deps.Redis, ratelimit.Config{
		Policies: ps, Prefix: s.cfg.Prefix + ":gw", Name: fmt.Sprintf("gateway-%d", len(s.limits.m)+1),
		FailOpen: s.cfg.RateFailOpen, Timeout: s.cfg.RateTimeout, Lease: leaseUnits(ps, s.cfg.RateLease),
	}, s.reg)
	if err != nil {
		return nil, fmt.Errorf("gateway: token rate %q: %w", policy, err)
	}
	e := &limiterEntry{lim: lim, policyHeader: []string{ratelimit.PolicyHeader(ps)}}
	s.limits.m[policy] = e
	return e, nil
}
