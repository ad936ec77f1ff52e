package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
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
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--redis-key-prefix", "app:"}, "give --redis read or --redis write too"},
		{[]string{"--redis-scripts"}, "give --redis read or --redis write too"},
		// The former meaning of --key-prefix: now the store prefix, which never ends in ':'.
		{[]string{"--redis", "read", "--key-prefix", "app1:"}, "--redis-key-prefix"},
	} {
		_, errs, code := tokenCLI(append([]string{"token", "create", "--name", "x", "--scopes", "market:read"}, tc.args...)...)
		if code != 2 || !strings.Contains(errs, tc.want) {
			t.Fatalf("create %q: exit %d, want 2 and a message with %q: %s", tc.args, code, tc.want, errs)
		}
	}
}

// `tickstash token revoke --nats-url` reaches a running gateway at once: it refuses the
// token although it caches tokens for an hour.
func TestTokenRevokeAnnouncesOnNATS(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	natsURL := "nats://127.0.0.1:4222"
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
