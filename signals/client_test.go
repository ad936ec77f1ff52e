package signals

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/internal/testenv"
	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/pipeline"
	"github.com/tickstash/tickstash/ratelimit"
)

func TestEntitlementsAndRateLimit(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	nc := connect(t, testenv.NATSURL())
	sc := uniqueStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d, err := NewDistributor(ctx, nc, DistributorConfig{StreamConfig: sc, MaxBytes: testenv.StreamMaxBytes, MaxAge: time.Hour}, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	store := NewEntitlementStore(rdb, EntitlementConfig{Prefix: prefix, TTL: time.Hour})
	if err := store.Put(ctx, Entitlement{User: "alice", Strategies: []string{"rsi"}, Symbols: []string{"BTC-USDT"}}); err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, Entitlement{User: "bob{x}", Strategies: []string{Any}, Symbols: []string{Any}}); err != nil {
		t.Fatal(err)
	}
	if ents, err := store.List(ctx); err != nil || len(ents) != 2 || ents[0].User != "alice" {
		t.Fatalf("List = %v, %v", ents, err)
	}
	if ttl := rdb.TTL(ctx, newKeyspace(prefix).entitlement("bob{x}")).Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("entitlement TTL %v", ttl)
	}
	var sigs []market.Signal
	for i := range 10 {
		sigs = append(sigs, testSignal("rsi", "BTC-USDT", i), testSignal("rsi", "ETH-USDT", i), testSignal("macd", "BTC-USDT", i))
	}
	if err := d.Publish(ctx, sigs...); err != nil {
		t.Fatal(err)
	}

	t.Run("entitled only", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		c, _ := NewClient(nc, ClientConfig{StreamConfig: sc, Entitlements: store}, reg)
		sctx, scancel := context.WithCancel(ctx)
		defer scancel()
		ch, _ := collect(t, sctx, c, SubscribeOptions{User: "alice", From: FromAll})
		for _, s := range receive(t, ch, 10, 5*time.Second) {
			if s.Strategy != "rsi" || s.Symbol != "BTC-USDT" {
				t.Errorf("alice received %s", s.ID)
			}
		}
		quiet(t, ch, 300*time.Millisecond)
		if v := counter(t, reg, "tickstash_signals_subscriber_not_entitled_total"); v != 20 {
			t.Errorf("not entitled = %v, want 20", v)
		}
		if v := counter(t, reg, "tickstash_signals_subscriber_deliveries_total"); v != 10 {
			t.Errorf("deliveries = %v, want 10", v)
		}
		c2, _ := NewClient(nc, ClientConfig{StreamConfig: sc, Entitlements: store}, nil)
		if err := c2.Subscribe(sctx, SubscribeOptions{From: FromAll}, nil); err != ErrUserRequired {
			t.Errorf("Subscribe without a user = %v", err)
		}
	})

	t.Run("per-user limit", func(t *testing.T) {
		lim, err := ratelimit.NewLimiter(rdb, ratelimit.Config{Prefix: prefix, Policies: []ratelimit.Policy{
			{Name: "deliveries", Algorithm: ratelimit.FixedWindow, Limit: 4, Window: time.Hour},
		}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		c, _ := NewClient(nc, ClientConfig{StreamConfig: sc, Entitlements: store, Limiter: lim, DropLimited: true}, reg)
		sctx, scancel := context.WithCancel(ctx)
		defer scancel()
		ch, _ := collect(t, sctx, c, SubscribeOptions{User: "bob{x}", From: FromAll, Durable: "bob"})
		receive(t, ch, 4, 5*time.Second)
		quiet(t, ch, 500*time.Millisecond)
		if v := counter(t, reg, "tickstash_signals_subscriber_rate_limited_total"); v != 26 {
			t.Errorf("rate limited = %v, want 26", v)
		}
	})

	t.Run("delayed, not dropped", func(t *testing.T) {
		lim, err := ratelimit.NewLimiter(rdb, ratelimit.Config{Prefix: prefix + "d", Policies: []ratelimit.Policy{
			{Name: "deliveries", Algorithm: ratelimit.GCRA, Limit: 20, Window: time.Second, Burst: 1},
		}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := NewClient(nc, ClientConfig{StreamConfig: sc, Entitlements: store, Limiter: lim}, nil)
		sctx, scancel := context.WithCancel(ctx)
		defer scancel()
		start := time.Now()
		ch, _ := collect(t, sctx, c, SubscribeOptions{User: "alice", From: FromAll})
		receive(t, ch, 10, 5*time.Second)
		if el := time.Since(start); el < 400*time.Millisecond {
			t.Errorf("10 deliveries at 20/s took %v, want at least 450ms", el)
		}
	})
}

func TestNATSPermissions(t *testing.T) {
	users, err := NATSPermissions([]Entitlement{
		{User: "bob", Strategies: []string{Any}, Symbols: []string{Any}},
		{User: "alice", Strategies: []string{"rsi", "macd"}, Symbols: []string{"BTC-USDT"}},
	}, PermissionsConfig{Password: func(u string) string { return "pw-" + u }})
	if err != nil {
		t.Fatal(err)
	}
	if users[0].User != "alice" || users[0].Password != "pw-alice" {
		t.Fatalf("users %+v", users)
	}
	pub := strings.Join(users[0].Permissions.Publish.Allow, " ")
	for _, want := range []string{
		"$JS.API.CONSUMER.CREATE.TS_SIGNALS.*.ts.signals.rsi.*.BTC-USDT",
		"$JS.API.CONSUMER.CREATE.TS_SIGNALS.*.ts.signals.macd.*.BTC-USDT",
		"$JS.API.CONSUMER.MSG.NEXT.TS_SIGNALS.*", "$JS.ACK.TS_SIGNALS.>",
	} {
		if !strings.Contains(pub, want) {
			t.Errorf("alice may not publish %s: %s", want, pub)
		}
	}
	if strings.Contains(pub, "CONSUMER.CREATE.TS_SIGNALS.*.ts.signals.>") || strings.Contains(pub, "DURABLE") {
		t.Errorf("alice may create unfiltered consumers: %s", pub)
	}
	if got := users[1].Permissions.Publish.Allow; !strings.Contains(strings.Join(got, " "), "CREATE.TS_SIGNALS.*.ts.signals.>") {
		t.Errorf("bob: %v", got)
	}
	conf, err := NATSAuthorizationConf(users)
	if err != nil || !strings.HasPrefix(conf, "authorization {\n  users = [") {
		t.Fatalf("conf %q, %v", conf, err)
	}
	var back []NATSUser
	body := strings.TrimSuffix(strings.TrimPrefix(conf, "authorization {\n  users = "), "\n}\n")
	if err := json.Unmarshal([]byte(body), &back); err != nil || len(back) != 2 {
		t.Errorf("conf users do not parse back: %v", err)
	}
	if _, err := NATSPermissions([]Entitlement{{User: "a.b"}}, PermissionsConfig{}); err == nil {
		t.Error("a user name with '.' was accepted")
	}
}

// TestRoleRun publishes analysis updates to their stream and receives the signal they
// raise; a malformed update is dropped without stopping the role.
func TestRoleRun(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	nc := connect(t, testenv.NATSURL())
	sc := uniqueStream(t, nc)
	as := uniqueAnalysisStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d, err := NewDistributor(ctx, nc, DistributorConfig{StreamConfig: sc, MaxBytes: testenv.StreamMaxBytes, MaxAge: time.Hour}, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	strategies, _ := ParseStrategies("s.yaml", []byte("strategies:\n  - name: macd\n    intervals: [1m]\n    rules: [{type: macd}]\n"))
	reg := prometheus.NewRegistry()
	role, err := NewRole(ctx, nc, rdb, d, nil, RoleConfig{Strategies: strategies, Prefix: prefix, Stream: as}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- role.Run(runCtx) }()
	c, _ := NewClient(nc, ClientConfig{StreamConfig: sc}, nil)
	ch, _ := collect(t, ctx, c, SubscribeOptions{From: FromAll})
	js, _ := jetstream.New(nc)
	if _, err := js.Publish(ctx, as.SubjectPrefix+".junk", []byte("{")); err != nil {
		t.Fatal(err)
	}
	pub, err := pipeline.NewAnalysisPublisher(ctx, nc, as)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range [][2]float64{{-1, 0}, {0.5, 0.1}} {
		u := macdUpdate(i, v[0], v[1])
		if _, err := pub.PublishUpdate(ctx, &u); err != nil {
			t.Fatal(err)
		}
	}
	got := receive(t, ch, 1, 5*time.Second)
	if got[0].Strategy != "macd" || got[0].Side != market.Buy || got[0].Price.String() != "95000.25" {
		t.Errorf("signal %+v", got[0])
	}
	waitFor(t, "the malformed update counted", func() bool { return counter(t, reg, "tickstash_signals_updates_total") == 3 })
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	if v := counter(t, reg, "tickstash_signals_generated_total"); v != 1 {
		t.Errorf("generated = %v", v)
	}
}
