package gateway_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tickstash/tickstash/gateway"
	"github.com/tickstash/tickstash/internal/metricstest"
)

// waitStatus polls GET path on e with token until it answers want, for up to limit,
// and returns how long that took.
func waitStatus(t *testing.T, e *env, path, token string, want int, limit time.Duration, hdr func() []string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		var h []string
		if hdr != nil {
			h = hdr()
		}
		r := e.do("GET", path, token, nil, h...)
		if r.status == want {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("GET %s still answers %d after %v, want %d: %s", path, r.status, limit, want, r.body)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestTokenChangesPushedToEveryGateway: two gateways share Redis and the real NATS,
// each caching tokens for an hour. A revocation or a secret rotation made through one
// reaches the other over NATS at once; a gateway without NATS keeps its cached copy
// until the cache entry expires.
func TestTokenChangesPushedToEveryGateway(t *testing.T) {
	a := start(t, func(d *gateway.Deps, c *gateway.Config) {
		d.NATS = natsConn(t)
		c.TokenCacheTTL = time.Hour
	})
	b := start(t, func(d *gateway.Deps, c *gateway.Config) {
		d.NATS = natsConn(t)
		c.Prefix, c.TokenCacheTTL = a.prefix, time.Hour
	})
	offline := start(t, func(d *gateway.Deps, c *gateway.Config) {
		c.Prefix, c.TokenCacheTTL = a.prefix, time.Minute
	})
	raw, _, tok := a.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeUsageRead}})
	for _, e := range []*env{a, b, offline} {
		if r := e.do("GET", "/v1/usage", raw, nil); r.status != 200 {
			t.Fatalf("before revocation: %d %s", r.status, r.body)
		}
	}
	if err := a.srv.Tokens().Revoke(context.Background(), tok.ID); err != nil {
		t.Fatal(err)
	}
	took := waitStatus(t, b, "/v1/usage", raw, 401, 5*time.Second, nil)
	t.Logf("the other gateway refused the revoked token %v after Revoke returned", took)
	if got := metricstest.Counter(t, b.reg, "tickstash_gateway_token_events_total", "event", "revoked"); got != 1 {
		t.Fatalf("token_events_total{event=revoked} = %v on the other gateway, want 1", got)
	}
	waitStatus(t, a, "/v1/usage", raw, 401, 5*time.Second, nil)
	// Without NATS the cached copy serves until it expires, then Redis says revoked.
	if r := offline.do("GET", "/v1/usage", raw, nil); r.status != 200 {
		t.Fatalf("gateway without NATS, within its cache TTL: %d %s", r.status, r.body)
	}
	offline.clock.Add(time.Minute)
	if r := offline.do("GET", "/v1/usage", raw, nil); r.status != 401 {
		t.Fatalf("gateway without NATS, after its cache TTL: %d %s", r.status, r.body)
	}

	// A rotated secret is accepted by the other gateway at once, although it cached
	// the token with the old one.
	sraw, secret, stok := a.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeUsageRead}, Signing: true})
	signed := func(secret string) func() []string {
		return func() []string { return sign(t, b, secret, "GET", "/v1/usage", b.clock.Now(), nil) }
	}
	if r := b.do("GET", "/v1/usage", sraw, nil, signed(secret)()...); r.status != 200 {
		t.Fatalf("signed request: %d %s", r.status, r.body)
	}
	secret2, err := a.srv.Tokens().RotateSecret(context.Background(), stok.ID)
	if err != nil {
		t.Fatal(err)
	}
	// A fresh timestamp: the same request signed again, even with the new secret, is a
	// replay of the one above.
	b.clock.Add(time.Second)
	waitStatus(t, b, "/v1/usage", sraw, 200, 5*time.Second, signed(secret2))
	if got := metricstest.Counter(t, b.reg, "tickstash_gateway_token_events_total", "event", "rotated"); got != 1 {
		t.Fatalf("token_events_total{event=rotated} = %v, want 1", got)
	}
}

// A store whose announcement fails still revokes, and says the gateways were not told.
func TestRevokeWithNATSClosed(t *testing.T) {
	e := start(t, nil)
	nc := natsConn(t)
	nc.Close()
	store := gateway.NewTokenStore(e.rdb, gateway.TokenStoreConfig{Prefix: e.prefix, Publisher: nc})
	raw, _, tok := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeUsageRead}})
	err := store.Revoke(context.Background(), tok.ID)
	if !errors.Is(err, gateway.ErrTokenEventNotSent) || !errors.Is(err, nats.ErrConnectionClosed) {
		t.Fatalf("Revoke with NATS closed: %v, want ErrTokenEventNotSent", err)
	}
	if r := e.do("GET", "/v1/usage", raw, nil); r.status != 401 {
		t.Fatalf("revoked token: %d %s", r.status, r.body)
	}
}
