package main

import (
	"github.com/tickstash/tickstash/internal/testenv"

	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/gateway"
	"github.com/tickstash/tickstash/internal/redistest"
)

// tokenCLI runs `tickstash args...` and returns stdout, stderr and the exit code.
func tokenCLI(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

// testGateway serves a gateway over prefix on a loopback port until the test ends and
// returns its base URL.
func testGateway(t *testing.T, rdb redis.UniversalClient, nc *nats.Conn, cfg gateway.Config) string {
	t.Helper()
	srv, err := gateway.New(gateway.Deps{Redis: rdb, NATS: nc}, cfg, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func httpDo(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// createdToken is token create --json's output.
type createdToken struct {
	Token  string        `json:"token"`
	Record gateway.Token `json:"record"`
}

// TICKSTASH_KEY_PREFIX is the store prefix for token create as for the gateway, and no
// longer the /redis key prefix of the token: a token created with it set works on the
// gateway that uses it. --redis implies the redis scope.
func TestTokenCreatePrefixesAndRedisScope(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	app := "{" + prefix + "}:app:"
	t.Cleanup(func() { redistest.DeleteKeys(t, rdb, "{"+prefix+"}*") })
	t.Setenv("TICKSTASH_KEY_PREFIX", prefix)
	t.Setenv("TICKSTASH_REDIS_URL", redistest.URL())
	base := testGateway(t, rdb, nil, gateway.Config{Prefix: prefix})

	// The README's example: --redis write without the redis scope in --scopes.
	out, errs, code := tokenCLI("token", "create", "--json", "--name", "edge", "--scopes", "market:read",
		"--redis", "write", "--redis-key-prefix", app)
	if code != 0 {
		t.Fatalf("create: exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "implies the redis scope") {
		t.Fatalf("create did not say it added the redis scope: %s", errs)
	}
	var ct createdToken
	if err := json.Unmarshal([]byte(out), &ct); err != nil {
		t.Fatalf("create --json: %v: %s", err, out)
	}
	if !ct.Record.Has(gateway.ScopeRedis) || len(ct.Record.KeyPrefixes) != 1 || ct.Record.KeyPrefixes[0] != app {
		t.Fatalf("record %+v: want the redis scope and the key prefix %q (not $TICKSTASH_KEY_PREFIX)", ct.Record, app)
	}
	if status, body := httpDo(t, "POST", base+"/redis", ct.Token, `["SET","`+app+`k","v"]`); status != 200 || !strings.Contains(body, "OK") {
		t.Fatalf("/redis SET under the token's prefix: %d %s", status, body)
	}
	if status, body := httpDo(t, "POST", base+"/redis", ct.Token, `["GET","other:k"]`); status != 403 {
		t.Fatalf("/redis GET outside the token's prefix: %d %s", status, body)
	}
	// --namespace: a database of its own, with plain keys
	t.Cleanup(func() { // the namespace's Redis ACL user, should a secret key have made one
		users, _ := rdb.Do(context.Background(), "acl", "users").StringSlice()
		for _, u := range users {
			if strings.HasPrefix(u, prefix+":") {
				_ = rdb.Do(context.Background(), "acl", "deluser", u).Err()
			}
		}
	})
	out, errs, code = tokenCLI("token", "create", "--json", "--name", "ns", "--scopes", "redis", "--redis", "write", "--namespace", "app1")
	if code != 0 {
		t.Fatalf("create --namespace: exit %d: %s", code, errs)
	}
	var nt createdToken
	if err := json.Unmarshal([]byte(out), &nt); err != nil || nt.Record.Namespace != "app1" {
		t.Fatalf("create --namespace --json: %v: %s", err, out)
	}
	if status, body := httpDo(t, "POST", base+"/redis", nt.Token, `["SET","k","v"]`); status != 200 || !strings.Contains(body, "OK") {
		t.Fatalf("/redis SET in the namespace: %d %s", status, body)
	}
	if status, body := httpDo(t, "POST", base+"/redis", nt.Token, `["KEYS","*"]`); status != 200 || !strings.Contains(body, `["k"]`) {
		t.Fatalf("/redis KEYS in the namespace: %d %s", status, body)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--redis-key-prefix", "app:"}, "give --redis read or --redis write too"},
		{[]string{"--namespace", "app1"}, "give --redis read or --redis write too"},
		{[]string{"--redis", "write"}, "needs a namespace"},
		{[]string{"--redis", "write", "--redis-key-prefix", prefix + ":gw:"}, "overlaps the store prefix"},
		{[]string{"--redis-scripts"}, "give --redis read or --redis write too"},
		// The former meaning of --key-prefix: now the store prefix, which never ends in ':'.
		{[]string{"--redis", "read", "--key-prefix", "app1:"}, "--redis-key-prefix"},
	} {
		_, errs, code := tokenCLI(append([]string{"token", "create", "--name", "x", "--scopes", "market:read"}, tc.args...)...)
		if code == 0 || !strings.Contains(errs, tc.want) {
			t.Fatalf("create %q: exit %d, want an error a message with %q: %s", tc.args, code, tc.want, errs)
		}
	}
}

// `tickstash token revoke --nats-url` reaches a running gateway at once: it refuses the
// token although it caches tokens for an hour.
func TestTokenRevokeAnnouncesOnNATS(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	natsURL := testenv.NATSURL()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	base := testGateway(t, rdb, nc, gateway.Config{Prefix: prefix, TokenCacheTTL: time.Hour})
	common := []string{"--redis-url", redistest.URL(), "--key-prefix", prefix}
	out, errs, code := tokenCLI(append([]string{"token", "create", "--json", "--name", "bot", "--scopes", "usage:read"}, common...)...)
	if code != 0 {
		t.Fatalf("create: exit %d: %s", code, errs)
	}
	var ct createdToken
	if err := json.Unmarshal([]byte(out), &ct); err != nil {
		t.Fatal(err)
	}
	if status, body := httpDo(t, "GET", base+"/v1/usage", ct.Token, ""); status != 200 {
		t.Fatalf("before revoke: %d %s", status, body)
	}
	out, errs, code = tokenCLI(append([]string{"token", "revoke", "--nats-url", natsURL}, append(common, ct.Record.ID)...)...)
	if code != 0 || !strings.Contains(out, "revoked "+ct.Record.ID) || !strings.Contains(errs, "Announced") {
		t.Fatalf("revoke: exit %d: %s %s", code, out, errs)
	}
	revoked := time.Now()
	for {
		status, body := httpDo(t, "GET", base+"/v1/usage", ct.Token, "")
		if status == 401 && strings.Contains(body, "revoked") {
			break
		}
		if time.Since(revoked) > 5*time.Second {
			t.Fatalf("the gateway still answers %d 5s after token revoke --nats-url", status)
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("refused %v after the revoke command returned", time.Since(revoked))
	// NATS unreachable: the token is revoked all the same, with a warning.
	out2, errs, code := tokenCLI(append([]string{"token", "create", "--json", "--name", "bot2", "--scopes", "usage:read"}, common...)...)
	if code != 0 {
		t.Fatalf("create: %s", errs)
	}
	var ct2 createdToken
	if err := json.Unmarshal([]byte(out2), &ct2); err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "nats://" + ln.Addr().String()
	ln.Close()
	out, errs, code = tokenCLI(append([]string{"token", "revoke", "--nats-url", dead}, append(common, ct2.Record.ID)...)...)
	if code != 0 || !strings.Contains(out, "revoked") || !strings.Contains(errs, "warning") || !strings.Contains(errs, "token cache TTL") {
		t.Fatalf("revoke with NATS down: exit %d: %s %s", code, out, errs)
	}
}

// The token commands and the gateway read the same keys; reencrypt moves every secret
// to a new key, after which the old key can go.
func TestTokenSecretKeysEndToEnd(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	t.Setenv("TICKSTASH_SECRET_KEY", "")
	common := []string{"--redis-url", redistest.URL(), "--key-prefix", prefix}
	dir := t.TempDir()
	keyFile := func(name string, keys ...string) string {
		path := dir + "/" + name
		if err := os.WriteFile(path, []byte(strings.Join(keys, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	newKey := func(id string) string {
		out, errs, code := tokenCLI("token", "new-key", "--id", id)
		if code != 0 || !strings.HasPrefix(out, id+":") {
			t.Fatalf("new-key: exit %d: %s %s", code, out, errs)
		}
		return strings.TrimSpace(out)
	}
	k1, k2 := newKey("k1"), newKey("k2")
	f1, f21, f2 := keyFile("k1", k1), keyFile("k21", k2, k1), keyFile("k2", k2)
	wrong := keyFile("wrong", newKey("k2"))

	// No key: no signing token, and the message says what to set.
	_, errs, code := tokenCLI(append([]string{"token", "create", "--name", "s", "--scopes", "usage:read", "--signing"}, common...)...)
	if code != 2 || !strings.Contains(errs, "--secret-key-file") || !strings.Contains(errs, "TICKSTASH_SECRET_KEY") || !strings.Contains(errs, "new-key") {
		t.Fatalf("create --signing without a key: exit %d: %s", code, errs)
	}
	out, errs, code := tokenCLI(append([]string{"token", "create", "--json", "--name", "s", "--scopes", "usage:read", "--signing", "--secret-key-file", f1}, common...)...)
	if code != 0 {
		t.Fatalf("create --signing: exit %d: %s", code, errs)
	}
	var ct struct {
		createdToken
		Secret string `json:"signing_secret"`
	}
	if err := json.Unmarshal([]byte(out), &ct); err != nil || ct.Secret == "" {
		t.Fatalf("create --json: %v: %s", err, out)
	}
	ctx := context.Background()
	for _, k := range redistest.Keys(t, rdb, prefix+"*") {
		if rdb.Type(ctx, k).Val() != "hash" {
			continue
		}
		for f, v := range rdb.HGetAll(ctx, k).Val() {
			if strings.Contains(v, strings.TrimPrefix(ct.Secret, "tss_")) {
				t.Fatalf("the signing secret is in clear in %s %s", k, f)
			}
		}
	}
	keysOf := func(path string) *gateway.SecretKeys {
		b, _ := os.ReadFile(path)
		k, err := gateway.ParseSecretKeys(string(b))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	n := 0
	signedGet := func(base string) (int, string) {
		n++
		at := time.Now().Add(time.Duration(n) * time.Second)
		req, _ := http.NewRequest("GET", base+"/v1/usage", nil)
		req.Header.Set("Authorization", "Bearer "+ct.Token)
		req.Header.Set(gateway.HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
		req.Header.Set(gateway.HeaderSignature, gateway.Sign(ct.Secret, "GET", "/v1/usage", at, nil))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	gwOld := testGateway(t, rdb, nil, gateway.Config{Prefix: prefix, TokenCacheTTL: -1, SecretKeys: keysOf(f1)})
	gwNew := testGateway(t, rdb, nil, gateway.Config{Prefix: prefix, TokenCacheTTL: -1, SecretKeys: keysOf(f2)})
	if status, body := signedGet(gwOld); status != 200 {
		t.Fatalf("signed, gateway with k1: %d %s", status, body)
	}
	if status, body := signedGet(gwNew); status != 503 {
		t.Fatalf("signed, gateway with k2 only, before reencrypt: %d %s", status, body)
	}
	// Rotation: k2 in front, reencrypt, then k1 can go.
	out, errs, code = tokenCLI(append([]string{"token", "reencrypt", "--secret-key-file", f21}, common...)...)
	if code != 0 || !strings.Contains(out, "resealed 1 tokens with key k2") {
		t.Fatalf("reencrypt: exit %d: %s %s", code, out, errs)
	}
	if out, _, _ := tokenCLI(append([]string{"token", "list"}, common...)...); !strings.Contains(out, "signing:k2") {
		t.Fatalf("list after reencrypt: %s", out)
	}
	if status, body := signedGet(gwNew); status != 200 {
		t.Fatalf("signed, gateway with k2 only, after reencrypt: %d %s", status, body)
	}
	if status, body := signedGet(gwOld); status != 503 {
		t.Fatalf("signed, gateway with k1 only, after reencrypt: %d %s", status, body)
	}
	// A different key under the id k2, and two sources of keys at once.
	_, errs, code = tokenCLI(append([]string{"token", "rotate-secret", "--secret-key-file", wrong}, append(common, ct.Record.ID)...)...)
	if code != 2 || !strings.Contains(errs, "not the one that sealed it") {
		t.Fatalf("rotate-secret with the wrong key: exit %d: %s", code, errs)
	}
	t.Setenv("TICKSTASH_SECRET_KEY", k2)
	_, errs, code = tokenCLI(append([]string{"token", "reencrypt", "--secret-key-file", f2}, common...)...)
	if code != 2 || !strings.Contains(errs, "not both") {
		t.Fatalf("reencrypt with a file and the variable: exit %d: %s", code, errs)
	}
	// The variable alone: rotate the secret with it.
	out, errs, code = tokenCLI(append([]string{"token", "rotate-secret"}, append(common, ct.Record.ID)...)...)
	if code != 0 || !strings.Contains(out, "signing secret tss_") {
		t.Fatalf("rotate-secret with $TICKSTASH_SECRET_KEY: exit %d: %s %s", code, out, errs)
	}
}

// The gateway role's new flags are checked before anything starts.
func TestGatewayFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  string
		code int
		want string
	}{
		{[]string{"--sse-max-per-token", "0"}, "", 2, "-1 for no cap"},
		{[]string{"--sse-max-streams", "-2"}, "", 2, "-1 for no cap"},
		{[]string{"--sse-inactive-threshold", "1s"}, "", 2, "at least 10s"},
		{[]string{"--secret-key-file", "/nonexistent/keys"}, "", 2, "--secret-key-file"},
		{nil, "k1:not-a-key", 2, "$TICKSTASH_SECRET_KEY"},
		{[]string{"--help"}, "", 0, "-sse-max-per-token int"},
		{[]string{"--help"}, "", 0, "-secret-key-file string"},
	} {
		t.Run(strings.Join(tc.args, " ")+tc.env, func(t *testing.T) {
			t.Setenv("TICKSTASH_SECRET_KEY", tc.env)
			out, errs, code := tokenCLI(append([]string{"gateway", "--admin-addr", "", "--http-addr", "127.0.0.1:0"}, tc.args...)...)
			if code != tc.code || !strings.Contains(out+errs, tc.want) {
				t.Fatalf("exit %d, want %d and %q: %s%s", code, tc.code, tc.want, out, errs)
			}
			if strings.Contains(errs, "not-a-key") {
				t.Fatalf("the error shows the key: %s", errs)
			}
		})
	}
}
