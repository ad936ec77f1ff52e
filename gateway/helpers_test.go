package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/gateway"
	"github.com/tickstash/tickstash/internal/redistest"
)

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t      *testing.T
	rdb    redis.UniversalClient
	prefix string
	srv    *gateway.Server
	url    string
	clock  *testClock
	reg    *prometheus.Registry
}

// testSecretKeys seal the signing secrets of the tests' gateways.
var testSecretKeys = func() *gateway.SecretKeys {
	k, err := gateway.NewSecretKey("test")
	if err != nil {
		panic(err)
	}
	keys, err := gateway.ParseSecretKeys(k)
	if err != nil {
		panic(err)
	}
	return keys
}()

// start runs a gateway on a loopback port against the real Redis, under a key prefix
// of its own. mod may change the Deps and Config.
func start(t *testing.T, mod func(*gateway.Deps, *gateway.Config)) *env {
	t.Helper()
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	clock := &testClock{t: time.Now()}
	deps := gateway.Deps{Redis: rdb}
	cfg := gateway.Config{Prefix: prefix, Now: clock.Now, TokenCacheTTL: -1, UsageFlushInterval: 50 * time.Millisecond,
		SecretKeys: testSecretKeys}
	if mod != nil {
		mod(&deps, &cfg)
	}
	reg := prometheus.NewRegistry()
	t.Cleanup(func() { deleteACLUsers(t, rdb, prefix+":") })
	srv, err := gateway.New(deps, cfg, nil, reg)
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
	return &env{t: t, rdb: rdb, prefix: prefix, srv: srv, url: "http://" + ln.Addr().String(), clock: clock, reg: reg}
}

// appPrefix returns a key prefix for /redis tokens under the test's prefix, with a
// hash tag so that multi-key commands, transactions and scripts stay in one Redis
// Cluster slot; its keys are deleted when the test ends.
func (e *env) appPrefix() string {
	p := "{" + e.prefix + "}:app:"
	e.t.Cleanup(func() { redistest.DeleteKeys(e.t, e.rdb, "{"+e.prefix+"}*") })
	return p
}

// onCluster reports whether the tests run on Redis Cluster.
func (e *env) onCluster() bool {
	_, ok := e.rdb.(*redis.ClusterClient)
	return ok
}

func (e *env) token(spec gateway.TokenSpec) (raw, secret string, tok gateway.Token) {
	e.t.Helper()
	if spec.TTL == 0 {
		spec.TTL = time.Hour
	}
	if spec.Name == "" {
		spec.Name = "test"
	}
	raw, secret, tok, err := e.srv.Tokens().Create(context.Background(), spec)
	if err != nil {
		e.t.Fatal(err)
	}
	return raw, secret, tok
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

func (e *env) do(method, path, token string, body []byte, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

// deleteACLUsers deletes, on every master, the Redis ACL users whose names start with
// prefix (those a test's gateway made for its namespaces).
func deleteACLUsers(t *testing.T, rdb redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	del := func(ctx context.Context, c *redis.Client) error {
		users, err := c.Do(ctx, "acl", "users").StringSlice()
		if err != nil {
			return err
		}
		for _, u := range users {
			if strings.HasPrefix(u, prefix) {
				if err := c.Do(ctx, "acl", "deluser", u).Err(); err != nil {
					return err
				}
			}
		}
		return nil
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, del)
	case *redis.Client:
		err = del(ctx, c)
	}
	if err != nil {
		t.Errorf("delete the test's ACL users: %v", err)
	}
}

// aclUsers returns the ACL users starting with prefix on every master (one list per master).
func aclUsers(t *testing.T, rdb redis.UniversalClient, prefix string) [][]string {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	var out [][]string
	list := func(ctx context.Context, c *redis.Client) error {
		users, err := c.Do(ctx, "acl", "users").StringSlice()
		var mine []string
		for _, u := range users {
			if strings.HasPrefix(u, prefix) {
				mine = append(mine, u)
			}
		}
		mu.Lock()
		out = append(out, mine)
		mu.Unlock()
		return err
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, list)
	case *redis.Client:
		err = list(ctx, c)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}
