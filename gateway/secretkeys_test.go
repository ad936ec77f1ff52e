package gateway_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tickstash/tickstash/gateway"
	"github.com/tickstash/tickstash/internal/metricstest"
	"github.com/tickstash/tickstash/internal/redistest"
)

func mustKeys(t *testing.T, text string) *gateway.SecretKeys {
	t.Helper()
	k, err := gateway.ParseSecretKeys(text)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newKey(t *testing.T, id string) string {
	t.Helper()
	k, err := gateway.NewSecretKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signedGet sends a signed GET /v1/usage; each call signs with a timestamp of its own,
// since a signature is accepted once across gateways sharing Redis.
func signedGet(t *testing.T, e *env, raw, secret string, n int) resp {
	t.Helper()
	at := e.clock.Now().Add(time.Duration(n) * time.Second)
	return e.do("GET", "/v1/usage", raw, nil, sign(t, e, secret, "GET", "/v1/usage", at, nil)...)
}

// rawDump returns every value of every key under prefix, as Redis holds them.
func rawDump(t *testing.T, e *env, prefix string) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	for _, k := range redistest.Keys(t, e.rdb, prefix+"*") {
		b.WriteString(k + "\n")
		switch e.rdb.Type(ctx, k).Val() {
		case "hash":
			for f, v := range e.rdb.HGetAll(ctx, k).Val() {
				b.WriteString(f + "=" + v + "\n")
			}
		case "string":
			b.WriteString(e.rdb.Get(ctx, k).Val() + "\n")
		case "stream":
			for _, m := range e.rdb.XRange(ctx, k, "-", "+").Val() {
				for f, v := range m.Values {
					b.WriteString(f + "=" + v.(string) + "\n")
				}
			}
		}
	}
	return b.String()
}

func tokenRecord(t *testing.T, e *env, id string) string {
	t.Helper()
	ctx := context.Background()
	hash := e.rdb.HGet(ctx, e.prefix+":gw:tokens", id).Val()
	if hash == "" {
		t.Fatalf("token %s not in the index", id)
	}
	return e.prefix + ":gw:tok:" + hash
}

// TestSigningSecretsSealedAtRest: Redis holds no signing secret in clear, a sealed
// secret opens only for its own token, and a store without a key refuses to make
// signing tokens.
func TestSigningSecretsSealedAtRest(t *testing.T) {
	e := start(t, nil)
	raw, secret, tok := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeUsageRead}, Signing: true})
	if tok.SecretKey != "test" {
		t.Fatalf("record's SecretKey %q, want test", tok.SecretKey)
	}
	if r := signedGet(t, e, raw, secret, 0); r.status != 200 {
		t.Fatalf("signed request: %d %s", r.status, r.body)
	}
	secret2, err := e.srv.Tokens().RotateSecret(context.Background(), tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r := signedGet(t, e, raw, secret2, 1); r.status != 200 {
		t.Fatalf("signed with the rotated secret: %d %s", r.status, r.body)
	}
	dump := rawDump(t, e, e.prefix)
	for _, s := range []string{secret, secret2, strings.TrimPrefix(secret, "tss_"), strings.TrimPrefix(secret2, "tss_")} {
		if strings.Contains(dump, s) {
			t.Fatalf("a signing secret is in Redis in clear:\n%s", dump)
		}
	}
	stored := e.rdb.HGet(context.Background(), tokenRecord(t, e, tok.ID), "secrets").Val()
	if parts := strings.Split(stored, ","); len(parts) != 2 || !strings.HasPrefix(parts[0], "enc:v1:test:") || !strings.HasPrefix(parts[1], "enc:v1:test:") {
		t.Fatalf("stored secrets %q: want two sealed with key test", stored)
	}
	// The token id is the additional data: another token's sealed secret does not open.
	raw2, _, tok2 := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeUsageRead}, Signing: true})
	e.rdb.HSet(context.Background(), tokenRecord(t, e, tok2.ID), "secrets", stored)
	if r := signedGet(t, e, raw2, secret2, 2); r.status != 503 {
		t.Fatalf("a secret copied from another token: %d %s", r.status, r.body)
	}
	_, err = e.srv.Tokens().Authenticate(context.Background(), raw2)
	if !errors.Is(err, gateway.ErrSecretKey) {
		t.Fatalf("Authenticate with a copied secret: %v", err)
	}
	// Without a key: no signing tokens, and a clear word on what to set.
	bare := gateway.NewTokenStore(e.rdb, gateway.TokenStoreConfig{Prefix: e.prefix})
	_, _, _, err = bare.Create(context.Background(), gateway.TokenSpec{Name: "x", Scopes: []gateway.Scope{gateway.ScopeUsageRead}, TTL: time.Hour, Signing: true})
	if !errors.Is(err, gateway.ErrNoSecretKey) || !strings.Contains(err.Error(), "TICKSTASH_SECRET_KEY") {
		t.Fatalf("Create signing without a key: %v", err)
	}
	if _, _, _, err := bare.Create(context.Background(), gateway.TokenSpec{Name: "x", Scopes: []gateway.Scope{gateway.ScopeUsageRead}, TTL: time.Hour}); err != nil {
		t.Fatalf("Create without signing needs no key: %v", err)
	}
}

// TestSecretKeyRotation: a new key goes in front, Reseal moves every secret to it, and
// the old key can go; a gateway lacking the key, or holding another key under its id,
// answers 503 and says why.
func TestSecretKeyRotation(t *testing.T) {
	k1, k2 := newKey(t, "k1"), newKey(t, "k2")
	old := start(t, func(_ *gateway.Deps, c *gateway.Config) { c.SecretKeys = mustKeys(t, k1) })
	gw := func(keys *gateway.SecretKeys) *env {
		return start(t, func(_ *gateway.Deps, c *gateway.Config) { c.Prefix, c.SecretKeys = old.prefix, keys })
	}
	both, onlyNew, none := gw(mustKeys(t, k2+"\n"+k1)), gw(mustKeys(t, k2)), gw(nil)
	raw, secret, tok := old.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeUsageRead}, Signing: true})
	plainRaw, _, plainTok := old.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeUsageRead}})
	// A secret stored before encryption existed is used as is, and resealed below.
	legacyRaw, _, legacyTok := old.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeUsageRead}, Signing: true})
	legacySecret := "tss_legacy-secret-stored-in-clear-before-encryption"
	old.rdb.HSet(context.Background(), tokenRecord(t, old, legacyTok.ID), "secrets", legacySecret)

	n := 0
	for _, e := range []*env{old, both} {
		if r := signedGet(t, e, raw, secret, n); r.status != 200 {
			t.Fatalf("before reseal: %d %s", r.status, r.body)
		}
		n++
	}
	if r := signedGet(t, onlyNew, raw, secret, n); r.status != 503 || !strings.Contains(string(r.body), "signing-secret key") {
		t.Fatalf("gateway without the sealing key: %d %s", r.status, r.body)
	}
	n++
	if r := signedGet(t, none, legacyRaw, legacySecret, n); r.status != 200 {
		t.Fatalf("a secret stored in clear, on a gateway without keys: %d %s", r.status, r.body)
	}
	n++
	_, err := none.srv.Tokens().Authenticate(context.Background(), raw)
	if !errors.Is(err, gateway.ErrNoSecretKey) || !strings.Contains(err.Error(), `"k1"`) {
		t.Fatalf("Authenticate without keys: %v", err)
	}
	_, err = onlyNew.srv.Tokens().Authenticate(context.Background(), raw)
	if !errors.Is(err, gateway.ErrSecretKey) || !strings.Contains(err.Error(), `key "k1", which is not configured`) ||
		!strings.Contains(err.Error(), "TICKSTASH_SECRET_KEY") {
		t.Fatalf("Authenticate lacking the key: %v", err)
	}
	if got := metricstest.Counter(t, onlyNew.reg, "tickstash_gateway_auth_failures_total", "reason", "secret_key"); got != 1 {
		t.Fatalf("auth_failures_total{reason=secret_key} = %v, want 1", got)
	}

	resealed, err := both.srv.Tokens().Reseal(context.Background())
	if err != nil || resealed != 2 {
		t.Fatalf("Reseal: %d %v, want 2 tokens (the sealed and the clear one)", resealed, err)
	}
	for _, id := range []string{tok.ID, legacyTok.ID} {
		if stored := old.rdb.HGet(context.Background(), tokenRecord(t, old, id), "secrets").Val(); !strings.HasPrefix(stored, "enc:v1:k2:") {
			t.Fatalf("after Reseal %s stores %q, want it sealed with k2", id, stored)
		}
	}
	if strings.Contains(rawDump(t, old, old.prefix), "legacy-secret") {
		t.Fatal("the secret stored in clear is still in Redis after Reseal")
	}
	if again, err := both.srv.Tokens().Reseal(context.Background()); err != nil || again != 0 {
		t.Fatalf("second Reseal: %d %v, want nothing to do", again, err)
	}
	// The old key can go now.
	for _, c := range []struct {
		raw, secret string
	}{{raw, secret}, {legacyRaw, legacySecret}} {
		if r := signedGet(t, onlyNew, c.raw, c.secret, n); r.status != 200 {
			t.Fatalf("after reseal, the new key alone: %d %s", r.status, r.body)
		}
		n++
	}
	if r := signedGet(t, old, raw, secret, n); r.status != 503 {
		t.Fatalf("after reseal, the old key alone: %d %s", r.status, r.body)
	}
	n++
	if r := none.do("GET", "/v1/usage", plainRaw, nil); r.status != 200 {
		t.Fatalf("a token without signing needs no key: %d %s", r.status, r.body)
	}
	_ = plainTok
	// Another key under the id k2.
	wrong := gw(mustKeys(t, newKey(t, "k2")))
	_, err = wrong.srv.Tokens().Authenticate(context.Background(), raw)
	if !errors.Is(err, gateway.ErrSecretKey) || !strings.Contains(err.Error(), "not the one that sealed it") {
		t.Fatalf("Authenticate with another key under the id: %v", err)
	}
	// Rotating a secret needs a key and reseals with the current one.
	if _, err := none.srv.Tokens().RotateSecret(context.Background(), tok.ID); !errors.Is(err, gateway.ErrNoSecretKey) {
		t.Fatalf("RotateSecret without a key: %v", err)
	}
}

func TestParseSecretKeys(t *testing.T) {
	k := newKey(t, "a")
	_, material, _ := strings.Cut(k, ":")
	keys, err := gateway.ParseSecretKeys("# keys\n" + newKey(t, "new") + "\n" + k + ", " + newKey(t, "b"))
	if err != nil {
		t.Fatal(err)
	}
	if keys.Current() != "new" || strings.Join(keys.IDs(), " ") != "new a b" {
		t.Fatalf("ids %v, current %s", keys.IDs(), keys.Current())
	}
	for _, tc := range []struct{ text, want string }{
		{"", "no secret key given"},
		{material, "want ID:BASE64"},
		{"bad id:" + material, "want ID:BASE64"},
		{"a:" + material[:20], "want 32 bytes"},
		{k + "\n" + k, "given twice"},
	} {
		_, err := gateway.ParseSecretKeys(tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("ParseSecretKeys(%q): %v, want an error with %q", tc.text, err, tc.want)
		}
		if strings.Contains(err.Error(), material) {
			t.Fatalf("the error shows the key material: %v", err)
		}
	}
}
