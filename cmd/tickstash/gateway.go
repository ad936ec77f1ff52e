package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/peterbourgon/ff/v4"
	"golang.org/x/sync/errgroup"

	"github.com/tickstash/tickstash/analysis"
	"github.com/tickstash/tickstash/book/bookstore"
	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/cache/session"
	"github.com/tickstash/tickstash/cache/userstate"
	"github.com/tickstash/tickstash/featureflag"
	"github.com/tickstash/tickstash/gateway"
	"github.com/tickstash/tickstash/signals"
)

// gatewayConfig is the gateway role's flags, shared by run and gateway.
type gatewayConfig struct {
	httpAddr    string
	tlsCert     string
	tlsKey      string
	defaultRate string
	maxBody     int
	maxValue    int
	rateFail    bool
	rateTimeout time.Duration
	rateLease   float64

	auditRetention time.Duration
	auditMaxLen    int
	ssePerToken    int
	sseMax         int
	sseInactive    time.Duration
	keyFlags       secretKeyFlags
	keys           *gateway.SecretKeys // loaded by check
}

func (c *gatewayConfig) register(f *flags, defaultAddr string) {
	f.String(&c.httpAddr, "http-addr", defaultAddr, "address of the HTTP gateway (the /v1 API, /redis, /openapi.json); empty disables it in run")
	f.String(&c.tlsCert, "tls-cert", "", "TLS certificate file (PEM); with --tls-key the gateway speaks HTTPS")
	f.String(&c.tlsKey, "tls-key", "", "TLS private key file (PEM)")
	f.String(&c.defaultRate, "default-rate", "", "rate policy of tokens created without one, e.g. 10/s+1000/d; empty means such tokens are not limited")
	f.Int(&c.maxBody, "max-body-bytes", 1<<20, "largest request body the gateway accepts (413 beyond it)")
	f.Int(&c.maxValue, "redis-max-value-bytes", 1<<20, "cap of /redis values: every argument, and the size SETRANGE, SETBIT and BITFIELD offsets would give a value (-1: no cap)")
	f.Duration(&c.rateTimeout, "rate-timeout", 100*time.Millisecond, "how long a rate check waits for Redis before Redis counts as unavailable (then --rate-fail-open decides)")
	f.Float(&c.rateLease, "rate-lease", 0.01, "share of a token's rate limit a gateway may take from Redis ahead of a busy token's requests and spend without a Redis call each: each gateway may pass up to that share more than the limit in a window, and while one gateway holds leased units the others may refuse the token up to that share early; 0 checks every request in Redis (at most 0.1)")
	f.Bool(&c.rateFail, "rate-fail-open", false, "let requests through when the rate limiter cannot reach Redis (default: refuse with 503)")
	f.Duration(&c.auditRetention, "audit-retention", 30*24*time.Hour, "how long audit records are kept (older entries are trimmed)")
	f.Int(&c.auditMaxLen, "audit-max-len", 100_000, "hard bound of the audit stream of authenticated requests, should the retention hold more")
	f.Int(&c.ssePerToken, "sse-max-per-token", 8, "signal streams (SSE) one token may hold open on this gateway at once; more get 429 with Retry-After; -1 means no cap")
	f.Int(&c.sseMax, "sse-max-streams", 1000, "signal streams (SSE) this gateway serves at once, across tokens (429 beyond); each holds a JetStream consumer, so keep caps times gateways under the server's consumer limit; -1 means no cap")
	c.keyFlags.register(f)
	f.Duration(&c.sseInactive, "sse-inactive-threshold", 30*time.Second, "how long NATS keeps a signal stream's consumer after its gateway vanished without deleting it (a crash); at least 10s")
}

func (c *gatewayConfig) check() error {
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return fmt.Errorf("%w: --tls-cert and --tls-key go together", errUsage)
	}
	if c.auditRetention <= 0 || c.auditMaxLen <= 0 {
		return fmt.Errorf("%w: --audit-retention and --audit-max-len must be positive", errUsage)
	}
	if c.ssePerToken == 0 || c.ssePerToken < -1 || c.sseMax == 0 || c.sseMax < -1 {
		return fmt.Errorf("%w: --sse-max-per-token and --sse-max-streams must be positive, or -1 for no cap", errUsage)
	}
	if c.sseInactive < 10*time.Second {
		return fmt.Errorf("%w: --sse-inactive-threshold %v: want at least 10s (a stream's reader pulls every 5s)", errUsage, c.sseInactive)
	}
	var err error
	if c.keys, err = c.keyFlags.load(); err != nil {
		return err
	}
	if !(c.rateLease >= 0 && c.rateLease <= 0.1) {
		return fmt.Errorf("%w: --rate-lease %v: want a share from 0 (no leasing) to 0.1", errUsage, c.rateLease)
	}
	if c.rateTimeout <= 0 {
		return fmt.Errorf("%w: --rate-timeout %v: want a positive duration", errUsage, c.rateTimeout)
	}
	if c.maxBody <= 0 {
		return fmt.Errorf("%w: --max-body-bytes %d: want a positive number", errUsage, c.maxBody)
	}
	if c.defaultRate != "" {
		if _, err := gateway.ParseRate(c.defaultRate); err != nil {
			return fmt.Errorf("%w: --default-rate: %v", errUsage, err)
		}
	}
	return nil
}

// gatewayBackends is what gatewayConfig.deps builds: the gateway's backends, the background
// work some of them need while the gateway serves, or the error that stopped them.
type gatewayBackends struct {
	deps gateway.Deps
	// background runs beside the server (the flags client's local copy) until ctx ends;
	// an error stops the gateway.
	background []func(context.Context) error
	err        error
}

// deps gives the gateway every backend this process can offer: market data,
// jobs, leaderboards, sessions, user state and feature flags over Redis; signals over
// JetStream when the process has a NATS connection (with entitlements from Redis).
func (c *gatewayConfig) deps(p *process, prefix string, market *cache.MarketStore, jobs *analysis.Queue) gatewayBackends {
	lb, err := p.leaderboards(prefix)
	if err != nil {
		return gatewayBackends{err: err}
	}
	fl := featureflag.New(p.rdb, p.nc, featureflag.Config{Prefix: prefix}, p.log.With("role", "gateway"), p.reg)
	b := gatewayBackends{
		deps: gateway.Deps{
			Redis: p.rdb, NATS: p.nc, Market: market, Jobs: jobs, Leaderboards: lb,
			Sessions:  session.NewSessionStore(p.rdb, session.SessionConfig{Prefix: prefix}, p.reg),
			UserState: userstate.NewUserStateStore(p.rdb, userstate.UserStateConfig{Prefix: prefix}, p.reg),
			Flags:     fl,
			Books:     bookstore.NewReader(p.rdb, bookstore.ReaderConfig{Prefix: prefix}),
		},
		background: []func(context.Context) error{fl.Run},
	}
	if p.nc != nil {
		src, err := signals.NewStreamSource(p.nc, signals.StreamSourceConfig{InactiveThreshold: c.sseInactive})
		if err != nil {
			return gatewayBackends{err: err}
		}
		b.deps.Signals = src
		b.deps.Entitlements = signals.NewEntitlementStore(p.rdb, signals.EntitlementConfig{Prefix: prefix})
	}
	return b
}

// serve starts the gateway listener and returns the role's run function, which also
// runs the backends' background work. The listen happens here, so a busy port fails
// start-up rather than a role.
func (c *gatewayConfig) serve(p *process, b gatewayBackends, prefix string, e env) (func(context.Context) error, error) {
	if b.err != nil {
		return nil, b.err
	}
	srv, err := gateway.New(b.deps, gateway.Config{
		Prefix: prefix, TLSCertFile: c.tlsCert, TLSKeyFile: c.tlsKey, DefaultRate: c.defaultRate,
		MaxBodyBytes: int64(c.maxBody), RateFailOpen: c.rateFail, RateTimeout: c.rateTimeout, RateLease: rateLease(c.rateLease), RedisMaxValueBytes: int64(c.maxValue),
		AuditRetention: c.auditRetention, AuditMaxLen: int64(c.auditMaxLen),
		SSEMaxPerToken: c.ssePerToken, SSEMaxStreams: c.sseMax, SecretKeys: c.keys,
	}, p.log.With("role", "gateway"), p.reg)
	if err != nil {
		return nil, err
	}
	if c.keys == nil {
		p.log.Warn("no secret key configured: signing tokens whose secrets are sealed are refused with 503, and none can be created; " +
			"set --secret-key-file or $" + secretKeyEnv + " (make a key with tickstash token new-key)")
	} else {
		p.log.Info("signing secrets sealed with key "+c.keys.Current(), "keys", c.keys.IDs())
	}
	if p.nc == nil {
		p.log.Info("no --nats-url: token revocations reach this gateway within its token cache TTL (2s), and signal streams are off")
	}
	ln, err := net.Listen("tcp", c.httpAddr)
	if err != nil {
		return nil, fmt.Errorf("gateway: listen on %s: %w (is another process using it? set --http-addr)", c.httpAddr, err)
	}
	scheme := "http"
	if c.tlsCert != "" {
		scheme = "https"
	}
	fmt.Fprintf(e.stderr, "  HTTP   %s://%s/v1  /redis  /openapi.json\n", scheme, ln.Addr())
	return func(ctx context.Context) error {
		// A backend that fails stops the gateway: it would serve stale or default
		// answers; the server stopping stops the backends.
		g, ctx := errgroup.WithContext(ctx)
		ctx, cancel := context.WithCancel(ctx)
		for _, run := range b.background {
			g.Go(func() error { return run(ctx) })
		}
		g.Go(func() error {
			defer cancel()
			return srv.Serve(ctx, ln)
		})
		return g.Wait()
	}, nil
}

func cmdGateway(e env) *ff.Command {
	f := newFlags("gateway", "gateway [flags]\n\n"+
		"Runs the HTTP gateway alone: the /v1 API (market data, jobs, indicators, leaderboards,\n"+
		"sessions, state, flags, signals as Server-Sent Events), the Upstash-compatible Redis REST\n"+
		"endpoint /redis and /openapi.json, behind tokens (tickstash token create), scopes, request\n"+
		"signing, rate limits, an audit log and usage metering.", e)
	var sc serverConfig
	var gw gatewayConfig
	sc.register(f, false)
	gw.register(f, "127.0.0.1:8080")
	return f.Command("", func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		if gw.httpAddr == "" {
			return fmt.Errorf("%w: --http-addr is required", errUsage)
		}
		return runRoles(ctx, &sc, roles{gateway: &gw}, false, e)
	})
}

// rateLease maps --rate-lease to gateway.Config.RateLease, where 0 means the default.
func rateLease(share float64) float64 {
	if share == 0 {
		return -1
	}
	return share
}
