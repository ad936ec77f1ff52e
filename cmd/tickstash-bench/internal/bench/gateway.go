package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/gateway"
	"github.com/tickstash/tickstash/internal/redisconn"
	"github.com/tickstash/tickstash/market"
)

// GatewayConfig configures Gateway.
type GatewayConfig struct {
	// Duration is how long each case runs in all. The zero value means 3s.
	Duration time.Duration
	// Rounds splits each case's Duration into interleaved rounds. The zero value means 5.
	Rounds int
	// Goroutines is the number of concurrent HTTP clients. The zero value means 32.
	Goroutines int
	// Prefix starts every key the benchmark writes; they are deleted at the end. The
	// zero value means "tsbench-" and 8 random hex digits.
	Prefix string
}

// GatewayReport is what `tickstash bench gateway` prints.
type GatewayReport struct {
	Goroutines int
	Duration   time.Duration
	Rounds     int
	Cases      []RateLimitCase
	// TickerVsBare is the gateway's authenticated, rate-limited ticker read ÷ a bare
	// net/http handler doing the same Redis read, over all rounds; target ≥ 0.8 (issue
	// 16). TickerRounds is the same ratio in each round.
	TickerVsBare float64
	TickerRounds []float64
	// ExactVsBare is the same ticker read through a gateway that checks every request's
	// rate in Redis (Config.RateLease negative, --rate-lease 0) ÷ the bare handler.
	ExactVsBare float64
	// RESTVsDirect is GET through /redis ÷ a direct go-redis GET (no HTTP).
	RESTVsDirect float64
	// NamespaceVsPrefix is a namespaced token's /redis GET (as its Redis ACL user) ÷ a
	// key-prefix token's; target ≥ 0.9.
	NamespaceVsPrefix float64
}

// Gateway measures requests/s and latency of the gateway over loopback HTTP against
// rdb: an authenticated, rate-limited GET /v1/markets/.../ticker beside a bare
// net/http handler reading the same ticker, and GET /redis/get/<key> beside a direct
// go-redis GET. Progress goes to progress.
func Gateway(ctx context.Context, rdb redis.UniversalClient, cfg GatewayConfig, progress io.Writer) (GatewayReport, error) {
	if cfg.Duration <= 0 {
		cfg.Duration = 3 * time.Second
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 5
	}
	if cfg.Goroutines <= 0 {
		cfg.Goroutines = 32
	}
	if cfg.Prefix == "" {
		cfg.Prefix = randomPrefix("tsbench")
	}
	defer func() { _ = redisconn.DeleteKeys(context.WithoutCancel(ctx), rdb, cfg.Prefix+"*") }()
	rep := GatewayReport{Goroutines: cfg.Goroutines, Duration: cfg.Duration, Rounds: cfg.Rounds}

	store := cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: cfg.Prefix}, nil)
	tr := market.Trade{Exchange: "binance", Symbol: "BTC-USDT", ID: "1", Price: decimal.RequireFromString("65000.5"),
		Qty: decimal.RequireFromString("0.25"), Side: market.Buy, Time: time.Now().UTC()}
	if _, err := store.Write(ctx, &cache.Batch{Trades: []market.Trade{tr}}); err != nil {
		return rep, err
	}
	valueKey := cfg.Prefix + "-app:k" // not under the store prefix, which no token reaches
	if err := rdb.Set(ctx, valueKey, "hello", time.Hour).Err(); err != nil {
		return rep, err
	}
	// The namespace "bench" keeps "k" as <prefix>:rns:{bench}:k (gateway/namespace.go).
	if err := rdb.Set(ctx, cfg.Prefix+":rns:{bench}:k", "hello", time.Hour).Err(); err != nil {
		return rep, err
	}
	sk, _ := gateway.NewSecretKey("bench") // a sealing key: namespaces run as Redis ACL users
	keys, err := gateway.ParseSecretKeys(sk)
	if err != nil {
		return rep, err
	}
	srv, err := gateway.New(gateway.Deps{Redis: rdb, Market: store}, gateway.Config{Prefix: cfg.Prefix, SecretKeys: keys, RateTimeout: time.Second}, nil, prometheus.NewRegistry())
	if err != nil {
		return rep, err
	}
	defer func() { // the namespace's ACL user, on every master
		del := func(ctx context.Context, c *redis.Client) error {
			return c.Do(ctx, "acl", "deluser", cfg.Prefix+":rns:bench").Err()
		}
		switch c := rdb.(type) {
		case *redis.ClusterClient:
			_ = c.ForEachMaster(context.WithoutCancel(ctx), del)
		case *redis.Client:
			_ = del(context.WithoutCancel(ctx), c)
		}
	}()
	raw, _, _, err := srv.Tokens().Create(ctx, gateway.TokenSpec{Name: "bench", TTL: time.Hour,
		Scopes: []gateway.Scope{gateway.ScopeMarketRead, gateway.ScopeRedis}, Redis: gateway.RedisRead,
		KeyPrefixes: []string{cfg.Prefix + "-app:"}, Rate: "gcra:10000000/s"})
	if err != nil {
		return rep, err
	}
	rawNS, _, _, err := srv.Tokens().Create(ctx, gateway.TokenSpec{Name: "bench-ns", TTL: time.Hour,
		Scopes: []gateway.Scope{gateway.ScopeRedis}, Redis: gateway.RedisRead, Namespace: "bench", Rate: "gcra:10000000/s"})
	if err != nil {
		return rep, err
	}
	// The same gateway without rate leases, over the same tokens (kept in Redis).
	exact, err := gateway.New(gateway.Deps{Redis: rdb, Market: store}, gateway.Config{Prefix: cfg.Prefix, SecretKeys: keys, RateTimeout: time.Second, RateLease: -1}, nil, prometheus.NewRegistry())
	if err != nil {
		return rep, err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	gwURL, err := serve(sctx, func(ctx context.Context, ln net.Listener) error { return srv.Serve(ctx, ln) })
	if err != nil {
		return rep, err
	}
	exactURL, err := serve(sctx, func(ctx context.Context, ln net.Listener) error { return exact.Serve(ctx, ln) })
	if err != nil {
		return rep, err
	}
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := store.Ticker(r.Context(), market.Exchange(r.PathValue("ex")), market.Symbol(r.PathValue("sym")))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"exchange": t.Exchange, "symbol": t.Symbol, "last": t.Last, "bid": t.Bid, "ask": t.Ask})
	})
	mux := http.NewServeMux()
	mux.Handle("GET /ticker/{ex}/{sym}", bare)
	bareURL, err := serve(sctx, func(ctx context.Context, ln net.Listener) error {
		hs := &http.Server{Handler: mux}
		go func() { <-ctx.Done(); _ = hs.Close() }()
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 2 * cfg.Goroutines, MaxIdleConnsPerHost: 2 * cfg.Goroutines}}
	getAs := func(ctx context.Context, url, token string) error {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("GET %s: status %d", url, res.StatusCode)
		}
		return nil
	}
	const (
		caseGW     = "gateway GET /v1/markets/binance/BTC-USDT/ticker (token, rate limit with 1% leases, metering)"
		caseBare   = "bare net/http handler, same Redis read"
		caseExact  = "gateway ticker, every rate check in Redis (--rate-lease 0)"
		caseREST   = "gateway GET /redis/get/<key>"
		caseDirect = "direct go-redis GET"
		caseNS     = "gateway GET /redis/get/k, namespaced token (Redis ACL user)"
	)
	get := func(ctx context.Context, url string, auth bool) error {
		if auth {
			return getAs(ctx, url, raw)
		}
		return getAs(ctx, url, "")
	}
	cases := []struct {
		name string
		fn   func(ctx context.Context, g, i int) error
	}{
		{caseGW, func(ctx context.Context, _, _ int) error {
			return get(ctx, gwURL+"/v1/markets/binance/BTC-USDT/ticker", true)
		}},
		{caseBare, func(ctx context.Context, _, _ int) error { return get(ctx, bareURL+"/ticker/binance/BTC-USDT", false) }},
		{caseExact, func(ctx context.Context, _, _ int) error {
			return get(ctx, exactURL+"/v1/markets/binance/BTC-USDT/ticker", true)
		}},
		{caseREST, func(ctx context.Context, _, _ int) error { return get(ctx, gwURL+"/redis/get/"+valueKey, true) }},
		{caseDirect, func(ctx context.Context, _, _ int) error { return rdb.Get(ctx, valueKey).Err() }},
		{caseNS, func(ctx context.Context, _, _ int) error { return getAs(ctx, gwURL+"/redis/get/k", rawNS) }},
	}
	// Warm up connections and caches.
	for _, c := range cases {
		if _, err := measure(ctx, cfg.Goroutines, 200*time.Millisecond, c.fn); err != nil {
			return rep, fmt.Errorf("%s: %w", c.name, err)
		}
	}
	samples := make([]sample, len(cases))
	rates := make([]float64, len(cases))
	per := cfg.Duration / time.Duration(cfg.Rounds)
	for round := range cfg.Rounds {
		for i, c := range cases {
			fmt.Fprintf(progress, "round %d/%d: %s\n", round+1, cfg.Rounds, c.name)
			s, err := measure(ctx, cfg.Goroutines, per, c.fn)
			if err != nil {
				return rep, fmt.Errorf("%s: %w", c.name, err)
			}
			samples[i].add(s)
			rates[i] = float64(len(s.lat)) / s.elapsed.Seconds()
		}
		rep.TickerRounds = append(rep.TickerRounds, gwRatio(rates[0], rates[1]))
	}
	for i, c := range cases {
		rep.Cases = append(rep.Cases, samples[i].result(c.name))
	}
	rep.TickerVsBare = gwRatio(rep.Cases[0].PerSecond, rep.Cases[1].PerSecond)
	rep.ExactVsBare = gwRatio(rep.Cases[2].PerSecond, rep.Cases[1].PerSecond)
	rep.RESTVsDirect = gwRatio(rep.Cases[3].PerSecond, rep.Cases[4].PerSecond)
	rep.NamespaceVsPrefix = gwRatio(rep.Cases[5].PerSecond, rep.Cases[3].PerSecond)
	return rep, nil
}

// serve starts fn on a loopback listener and returns its base URL.
func serve(ctx context.Context, fn func(context.Context, net.Listener) error) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() { _ = fn(ctx, ln) }()
	return "http://" + ln.Addr().String(), nil
}

// Markdown renders the report as a table plus the target, for BENCHMARKS.md.
func (r GatewayReport) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d concurrent HTTP clients over loopback, %v per case in %d interleaved rounds.\n\n", r.Goroutines, r.Duration, r.Rounds)
	b.WriteString("| case | requests/s | p50 | p99 | errors |\n|---|---:|---:|---:|---:|\n")
	for _, c := range r.Cases {
		fmt.Fprintf(&b, "| %s | %.0f | %v | %v | %d |\n", c.Name, c.PerSecond, round(c.P50), round(c.P99), c.Errors)
	}
	tm, tl, th := medianSpread(r.TickerRounds)
	met := "yes"
	if tm < 0.8 {
		met = "no"
	}
	fmt.Fprintf(&b, "\n| target | ratio | met |\n|---|---:|---|\n| gateway ticker ÷ bare handler ≥ 0.8, median (least–greatest) of the rounds | %.2f (%.2f–%.2f) | %s |\n", tm, tl, th, met)
	fmt.Fprintf(&b, "| gateway ticker ÷ bare handler, all rounds together | %.2f | - |\n", r.TickerVsBare)
	fmt.Fprintf(&b, "| gateway ticker with every rate check in Redis ÷ bare handler (no target) | %.2f | - |\n", r.ExactVsBare)
	fmt.Fprintf(&b, "| /redis GET ÷ direct go-redis GET (no target: HTTP vs RESP) | %.2f | - |\n", r.RESTVsDirect)
	met = "yes"
	if r.NamespaceVsPrefix < 0.9 {
		met = "no"
	}
	fmt.Fprintf(&b, "| namespaced /redis GET ÷ key-prefix /redis GET ≥ 0.9 | %.2f | %s |\n", r.NamespaceVsPrefix, met)
	return b.String()
}

func gwRatio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
