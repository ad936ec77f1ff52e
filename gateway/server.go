package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Config configures a Server. Every zero value means the documented default.
type Config struct {
	// Prefix starts every Redis key the gateway writes (tokens, nonces, audit, usage,
	// rate limits); "" means "ts". It must match the prefix `tickstash token` uses.
	Prefix string
	// ReadHeaderTimeout bounds reading a request's headers; 0 means 5s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request; 0 means 30s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response; 0 means 30s. SSE streams extend their own
	// deadline as they go.
	WriteTimeout time.Duration
	// IdleTimeout bounds keep-alive idleness; 0 means 120s.
	IdleTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown when Serve's context ends; 0 means 10s.
	ShutdownTimeout time.Duration
	// MaxBodyBytes bounds request bodies (413 beyond it); 0 means 1 MiB.
	MaxBodyBytes int64
	// TLSCertFile and TLSKeyFile, both set, make Serve speak HTTPS; both empty means plain HTTP.
	TLSCertFile, TLSKeyFile string
	// TokenCacheTTL is how long a token looked up in Redis is reused in process. A
	// revocation announced over NATS (Deps.NATS) drops it at once; one that is not
	// announced, or whose announcement is lost, takes up to this long to reach a running
	// server. 0 means 2s; a negative value looks every request's token up.
	TokenCacheTTL time.Duration
	// DefaultRate is the rate policy (ParseRate syntax) of tokens created without one;
	// "" means such tokens are not rate limited.
	DefaultRate string
	// RateFailOpen lets requests through when the rate limiter cannot reach Redis; the
	// zero value refuses them with 503.
	RateFailOpen bool
	// RateLease is the share of a token's rate limit (of its smallest policy's
	// capacity) that this gateway may take from Redis ahead of a busy token's requests
	// and spend in process without a Redis call (ratelimit.Config.Lease). It bounds the
	// error that buys: each gateway may pass up to that share more than the limit in a
	// window, and while one gateway holds leased units the others may refuse the token
	// up to that share early. A limit too small for the share to make a whole unit is
	// always exact. Zero means 0.01 (1%); a negative value disables leasing, so every
	// request is checked in Redis.
	RateLease float64
	// RateTimeout bounds how long a rate check waits for Redis before Redis counts as
	// unavailable (then RateFailOpen decides); zero means the ratelimit package's
	// default, 100ms.
	RateTimeout time.Duration
	// SignatureSkew is how far a signed request's timestamp may be from the server's
	// clock; 0 means 5 minutes.
	SignatureSkew time.Duration
	// AuditRetention is how long audit records are kept: older entries are trimmed
	// (MINID) and the streams expire this long after their last write; 0 means 30 days.
	AuditRetention time.Duration
	// AuditMaxLen is the hard bound of the audit stream of authenticated requests
	// (approximate trimming), should the retention hold more; 0 means 100 000.
	AuditMaxLen int64
	// AuditRefusalMaxLen is the hard bound of each stream of unauthenticated refusals
	// (one by one, and counts per minute); 0 means 100 000.
	AuditRefusalMaxLen int64
	// RefusalBurst and RefusalsPerMinute are the in-process allowance of refused requests
	// per client address (IPv4, or IPv6 /64) and per token: beyond it, requests without a
	// token get 429 at once, and refusals are counted per minute instead of recorded one
	// by one. 0 means 20 and 20.
	RefusalBurst, RefusalsPerMinute int
	// RefusalRecordsPerMinute bounds, across all addresses, how many refusals of unknown,
	// revoked or expired tokens are recorded one by one a minute; 0 means 600.
	RefusalRecordsPerMinute int
	// UsageRetention is the TTL of each day's usage counters; 0 means 35 days.
	UsageRetention time.Duration
	// UsageFlushInterval is how often Serve writes usage counts to Redis, and the audit
	// refusal counts of the minutes that have ended; 0 means 1s.
	UsageFlushInterval time.Duration
	// SSEHeartbeat is the interval of comment lines on idle SSE streams; 0 means 15s.
	SSEHeartbeat time.Duration
	// SSEMaxPerToken caps the signal streams one token holds open on this server at
	// once; more are refused with 429 and Retry-After. Each stream holds a JetStream
	// consumer, so the caps keep one token from exhausting the server's consumer limit.
	// 0 means 8; a negative value means no cap.
	SSEMaxPerToken int
	// SSEMaxStreams caps the signal streams open on this server at once, across
	// tokens (429 beyond it). 0 means 1000; a negative value means no cap.
	SSEMaxStreams int
	// SSERetryAfter is the Retry-After of a stream refused by a cap; 0 means 5s.
	SSERetryAfter time.Duration
	// SecretKeys open the signing secrets stored in Redis (secretkeys.go) and seal those
	// that Tokens writes. nil means none: tokens without signing work, a signing token
	// whose secret is sealed is answered 503 (and logged), and Tokens refuses to create
	// signing tokens.
	SecretKeys *SecretKeys
	// NoRedisACL runs namespaced /redis tokens as the gateway's own Redis user even
	// where Redis could confine them with ACL users (acl.go); scripts are then refused to
	// them unless trusted. The zero value confines them when Redis allows.
	NoRedisACL bool
	// RedisACLIdle is how long a namespace's pooled Redis client may stay unused before
	// it is closed; 0 means 5 minutes.
	RedisACLIdle time.Duration
	// RedisMaxValueBytes caps value growth on /redis: every argument, and the size a
	// SETRANGE, SETBIT or BITFIELD offset would give a value (refused with 400 beyond
	// it). 0 means 1 MiB; a negative value means no cap.
	RedisMaxValueBytes int64
	// Now is the clock of token expiry, signatures and usage days; nil means time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.ReadHeaderTimeout, 5*time.Second)
	def(&c.ReadTimeout, 30*time.Second)
	def(&c.WriteTimeout, 30*time.Second)
	def(&c.IdleTimeout, 120*time.Second)
	def(&c.ShutdownTimeout, 10*time.Second)
	def(&c.TokenCacheTTL, 2*time.Second)
	def(&c.SignatureSkew, 5*time.Minute)
	def(&c.AuditRetention, 30*24*time.Hour)
	def(&c.UsageRetention, 35*24*time.Hour)
	def(&c.UsageFlushInterval, time.Second)
	def(&c.SSEHeartbeat, 15*time.Second)
	def(&c.SSERetryAfter, 5*time.Second)
	def(&c.RedisACLIdle, 5*time.Minute)
	if c.RedisMaxValueBytes == 0 {
		c.RedisMaxValueBytes = 1 << 20
	}
	if c.SSEMaxPerToken == 0 {
		c.SSEMaxPerToken = 8
	}
	if c.SSEMaxStreams == 0 {
		c.SSEMaxStreams = 1000
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.RateLease == 0 {
		c.RateLease = 0.01
	}
	if c.AuditMaxLen == 0 {
		c.AuditMaxLen = 100_000
	}
	if c.AuditRefusalMaxLen == 0 {
		c.AuditRefusalMaxLen = 100_000
	}
	if c.RefusalBurst == 0 {
		c.RefusalBurst = 20
	}
	if c.RefusalsPerMinute == 0 {
		c.RefusalsPerMinute = 20
	}
	if c.RefusalRecordsPerMinute == 0 {
		c.RefusalRecordsPerMinute = 600
	}
	if c.Prefix == "" {
		c.Prefix = "ts"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// batchInFlight is how many rate-limit pipelines may be in flight at once.
var batchInFlight = 4

// Server is the HTTP gateway. Build it with New, mount Handler or run Serve.
type Server struct {
	deps Deps
	cfg  Config
	log  *slog.Logger
	m    *metrics
	reg  prometheus.Registerer

	mux    *http.ServeMux
	routes []route
	h      http.Handler

	tokens  *TokenStore
	tcache  tokenCache
	rest    redis.UniversalClient
	keys    keyspace
	usage   *usageMeter
	audit   *auditor
	limits  limiters
	scripts scriptAliases
	acl     *nsACL
	streams streamCaps

	unmatched routeMetrics // of requests no route matches

	shutdown     chan struct{} // closed when Serve starts shutting down: ends SSE streams
	shutdownOnce sync.Once
}

// New builds a Server. deps.Redis is required; every other backend may be nil, in
// which case its routes answer 503 (they stay registered and documented). It returns
// an error for an invalid Config (bad DefaultRate, half a TLS pair, RateLease above 0.1).
func New(deps Deps, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	if deps.Redis == nil {
		return nil, errors.New("gateway: Deps.Redis is required")
	}
	cfg = cfg.withDefaults()
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		return nil, errors.New("gateway: give both TLSCertFile and TLSKeyFile, or neither")
	}
	if cfg.DefaultRate != "" {
		if _, err := ParseRate(cfg.DefaultRate); err != nil {
			return nil, fmt.Errorf("gateway: DefaultRate: %w", err)
		}
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("gateway: prefix %q must not contain braces", cfg.Prefix)
	}
	if !(cfg.RateLease <= 0.1) { // NaN too
		return nil, fmt.Errorf("gateway: RateLease %v: want at most 0.1 of a limit (negative: no leasing)", cfg.RateLease)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		deps: deps, cfg: cfg, log: log, m: newMetrics(reg), reg: reg,
		mux:      http.NewServeMux(),
		tokens:   NewTokenStore(deps.Redis, TokenStoreConfig{Prefix: cfg.Prefix, Now: cfg.Now, Publisher: publisherOf(deps.NATS), SecretKeys: cfg.SecretKeys, NoRedisACL: cfg.NoRedisACL}),
		keys:     newKeyspace(cfg.Prefix),
		shutdown: make(chan struct{}),
	}
	s.tcache.m = map[string]tokenCacheEntry{}
	s.limits.m = map[string]*limiterEntry{}
	s.scripts.m = map[string]string{}
	s.streams.perToken = map[string]int{}
	s.rest = deps.RESTRedis
	if s.rest == nil {
		s.rest = resp2Clone(deps.Redis)
	}
	s.acl = s.setupACL()
	s.usage = newUsageMeter(s)
	s.audit = newAuditor(s)
	s.routes = s.buildRoutes()
	for i := range s.routes {
		rt := &s.routes[i]
		rt.pat = rt.method + " " + rt.path
		s.mux.Handle(rt.pattern(), s.wrap(rt))
	}
	s.h = s.outer(s.mux)
	return s, nil
}

// publisherOf returns nc as a Publisher, or nil (not a nil *nats.Conn in an interface).
func publisherOf(nc *nats.Conn) Publisher {
	if nc == nil {
		return nil
	}
	return nc
}

// resp2Clone returns a client to the same servers that speaks RESP2, whose replies
// (flat arrays, bulk-string scores) are what the Upstash REST protocol returns.
func resp2Clone(rdb redis.UniversalClient) redis.UniversalClient {
	switch c := rdb.(type) {
	case *redis.Client:
		o := *c.Options()
		o.Protocol = 2
		return redis.NewClient(&o)
	case *redis.ClusterClient:
		o := *c.Options()
		o.Protocol = 2
		return redis.NewClusterClient(&o)
	}
	return rdb
}

// Tokens returns the server's token store (the one `tickstash token` writes to).
func (s *Server) Tokens() *TokenStore { return s.tokens }

// Handler returns the gateway's HTTP handler: /v1/..., /redis..., /openapi.json.
func (s *Server) Handler() http.Handler { return s.h }

// Serve answers HTTP (HTTPS when Config has a TLS pair) on ln until ctx ends, then shuts
// down gracefully: it stops accepting, ends SSE streams, waits up to
// Config.ShutdownTimeout for requests in flight, and flushes usage counts. With
// Deps.NATS it listens to token changes while it serves. It returns nil after a clean
// shutdown, the server's error if it fails (or if it cannot subscribe to token
// changes), or the Shutdown error if the deadline passes.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.deps.NATS != nil {
		sub, err := s.subscribeTokenEvents()
		if err != nil {
			_ = ln.Close()
			return err
		}
		defer func() { _ = sub.Unsubscribe() }()
	}
	srv := &http.Server{
		Handler:           s.h,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	srv.RegisterOnShutdown(s.closeStreams)
	flushDone := make(chan struct{})
	flushCtx, stopFlush := context.WithCancel(context.WithoutCancel(ctx))
	go func() { defer close(flushDone); s.usage.run(flushCtx, s.cfg.UsageFlushInterval) }()
	auditDone := make(chan struct{})
	go func() { defer close(auditDone); s.audit.run(flushCtx, s.cfg.UsageFlushInterval) }()
	errc := make(chan error, 1)
	go func() {
		if s.cfg.TLSCertFile != "" {
			errc <- srv.ServeTLS(ln, s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	var err error
	select {
	case err = <-errc:
		s.closeStreams()
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
		err = srv.Shutdown(sctx)
		cancel()
		if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
	}
	stopFlush()
	<-flushDone
	<-auditDone
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	s.acl.close()
	if ferr := s.usage.flush(fctx); ferr != nil {
		s.log.Warn("usage flush at shutdown", "err", ferr)
	}
	if ferr := s.audit.flush(fctx, true); ferr != nil {
		s.log.Warn("audit counts flush at shutdown", "err", ferr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (s *Server) closeStreams() { s.shutdownOnce.Do(func() { close(s.shutdown) }) }

// reqState is what the middlewares learn about a request, shared through its context.
type reqState struct {
	id       string
	route    *route
	token    *Token
	target   string // what a mutating request acts on, for the audit log
	mutating bool   // set by handlers whose effect depends on the body (/redis write commands)
	upstash  bool   // errors in the Upstash REST format
	denial   string // why the request was refused, for the audit log
	// credential is set when the request presented a token-shaped credential (which
	// may still fail to authenticate); credentialID is the token it names when that
	// token exists but is revoked or expired.
	credential   bool
	credentialID string
	charged      bool          // the refusal already spent the client's allowance
	limiter      *limiterEntry // the token's rate limiter, nil for none
	cost         int64         // commands of a /redis request (usage counts them); 0 means 1
	bytesIn      int64
}

type ctxKey struct{}

func stateOf(r *http.Request) *reqState {
	if st, ok := r.Context().Value(ctxKey{}).(*reqState); ok {
		return st
	}
	return &reqState{}
}

// Request ids are a random process prefix and a counter: unique, and no system call
// for randomness per request.
var (
	requestIDPrefix = func() string {
		var b [8]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}()
	requestIDSeq atomic.Uint64
)

func newRequestID() string {
	var b [16 + 16]byte
	n := copy(b[:], requestIDPrefix)
	return string(strconv.AppendUint(b[:n], requestIDSeq.Add(1), 16))
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// statusWriter records the status and size of a response; Unwrap lets
// http.ResponseController reach Flush and SetWriteDeadline.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// captureWriter swallows what ServeMux writes for a request no route matches, so that
// the answer can be a problem document with the same status and Allow header.
type captureWriter struct {
	h      http.Header
	status int
}

func (c *captureWriter) Header() http.Header         { return c.h }
func (c *captureWriter) Write(b []byte) (int, error) { return len(b), nil }
func (c *captureWriter) WriteHeader(code int)        { c.status = code }

// outer is the middleware every request passes: request id, body limit, panic
// recovery, unmatched routes as problems, metrics, access log, audit and metering.
func (s *Server) outer(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		st := &reqState{id: r.Header.Get("X-Request-Id")}
		if !validRequestID(st.id) {
			st.id = newRequestID()
		}
		w.Header().Set("X-Request-Id", st.id)
		st.upstash = r.URL.Path == "/redis" || strings.HasPrefix(r.URL.Path, "/redis/")
		sw := &statusWriter{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, st))
		if r.ContentLength > s.cfg.MaxBodyBytes {
			// Refuse before reading: the declared length is already too long.
			st.denial = "body too large"
			writeProblemFor(sw, r, st, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("request body of %d bytes exceeds the limit of %d bytes", r.ContentLength, s.cfg.MaxBodyBytes))
		} else {
			r.Body = http.MaxBytesReader(sw, r.Body, s.cfg.MaxBodyBytes)
			func() {
				defer func() {
					if v := recover(); v != nil {
						if v == http.ErrAbortHandler {
							panic(v)
						}
						s.log.Error("panic in handler", "panic", v, "path", r.URL.Path, "request_id", st.id)
						if sw.status == 0 {
							writeProblem(sw, r, http.StatusInternalServerError, "internal error")
						}
					}
				}()
				if _, pattern := mux.Handler(r); pattern == "" {
					cw := &captureWriter{h: http.Header{}}
					mux.ServeHTTP(cw, r)
					status := cw.status
					if status == 0 || status == http.StatusMovedPermanently {
						status = http.StatusNotFound
					}
					if allow := cw.h.Get("Allow"); allow != "" {
						sw.Header().Set("Allow", allow)
					}
					detail := "no route " + r.URL.Path + "; see /openapi.json"
					if status == http.StatusMethodNotAllowed {
						detail = "method " + r.Method + " not allowed on " + r.URL.Path + "; allowed: " + cw.h.Get("Allow")
					}
					writeProblem(sw, r, status, detail)
					return
				}
				mux.ServeHTTP(sw, r)
			}()
		}
		s.finish(r, st, sw, start)
	})
}

func (s *Server) finish(r *http.Request, st *reqState, sw *statusWriter, start time.Time) {
	elapsed := time.Since(start)
	status := sw.status
	if status == 0 {
		status = http.StatusOK
	}
	routeLabel := "unmatched"
	mutating := st.mutating
	rm := &s.unmatched
	if st.route != nil {
		routeLabel = st.route.pat
		mutating = mutating || st.route.mutating
		rm = &st.route.m
	}
	rm.requests(s.m, routeLabel, status).Inc()
	if st.route == nil || !st.route.stream {
		rm.observer(s.m, routeLabel).Observe(elapsed.Seconds())
	}
	tokenID := ""
	if st.token != nil {
		tokenID = st.token.ID
		s.usage.add(st.token.ID, s.cfg.Now(), max(st.cost, 1), st.bytesIn, sw.bytes)
	}
	denied := status == http.StatusUnauthorized || status == http.StatusForbidden ||
		status == http.StatusTooManyRequests || status == http.StatusRequestEntityTooLarge || st.denial != ""
	if denied || (mutating && status < 500) {
		s.audit.record(r, st, routeLabel, status, denied)
	}
	if !s.log.Enabled(r.Context(), slog.LevelInfo) {
		return
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "http request",
		slog.String("request_id", st.id), slog.String("method", r.Method), slog.String("route", routeLabel),
		slog.String("path", r.URL.Path), slog.Int("status", status), slog.Int64("bytes", sw.bytes),
		slog.Duration("duration", elapsed), slog.String("token", tokenID), slog.String("remote", clientAddr(r)))
}

func clientAddr(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// writeProblemFor answers in the request's protocol: Upstash's {"error"} on /redis,
// problem+json elsewhere.
func writeProblemFor(w http.ResponseWriter, r *http.Request, st *reqState, status int, detail string) {
	if st.upstash {
		writeUpstashError(w, status, detail)
		return
	}
	writeProblem(w, r, status, detail)
}

// Routes returns the registered route patterns, such as "GET /v1/markets".
func (s *Server) Routes() []string {
	out := make([]string, len(s.routes))
	for i := range s.routes {
		out[i] = s.routes[i].pattern()
	}
	return out
}
