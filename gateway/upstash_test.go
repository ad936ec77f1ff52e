package gateway_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tickstash/tickstash/gateway"
)

// TestUpstashSDKs runs the real @upstash/redis and @upstash/ratelimit (installed with
// npm from testdata/upstash/package-lock.json) against /redis. It skips only when npm
// cannot install them (no registry access) and node_modules is not already there.
func TestUpstashSDKs(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: the Node test installs packages and starts node")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed; the Upstash SDK test needs it")
	}
	dir, _ := filepath.Abs("testdata/upstash")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@upstash", "ratelimit")); err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		npm := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
		npm.Dir = dir
		out, err := npm.CombinedOutput()
		if err != nil {
			if strings.Contains(string(out), "ENOTFOUND") || strings.Contains(string(out), "EAI_AGAIN") ||
				strings.Contains(string(out), "ECONNREFUSED") || strings.Contains(string(out), "ETIMEDOUT") || ctx.Err() != nil {
				t.Skipf("npm cannot reach the registry, so the Upstash SDKs cannot be installed: %s", lastLine(out))
			}
			t.Fatalf("npm ci: %v\n%s", err, out)
		}
	}
	e := start(t, nil)
	p := e.appPrefix() // hash-tagged: MGET, DEL, MULTI and the ratelimit scripts stay in one cluster slot
	prefixed, _, _ := e.token(gateway.TokenSpec{Name: "edge", Scopes: []gateway.Scope{gateway.ScopeRedis},
		Redis: gateway.RedisWrite, RedisScripts: true, KeyPrefixes: []string{p}})
	// A namespaced token, not trusted with scripts: plain keys, and @upstash/ratelimit's
	// scripts run as the namespace's Redis ACL user.
	namespaced, _, _ := e.token(gateway.TokenSpec{Name: "ns", Scopes: []gateway.Scope{gateway.ScopeRedis},
		Redis: gateway.RedisWrite, Namespace: "app1"})
	other, _, _ := e.token(gateway.TokenSpec{Name: "other", Scopes: []gateway.Scope{gateway.ScopeRedis},
		Redis: gateway.RedisWrite, Namespace: "app2"})
	if r := e.do("POST", "/redis", other, []byte(`["SET","s","app2"]`)); r.status != 200 {
		t.Fatalf("SET in app2: %d %s", r.status, r.body)
	}
	for _, run := range []struct{ name, token, prefix, ns string }{
		{"key prefix, trusted scripts", prefixed, p, "0"},
		{"namespace", namespaced, "", "1"},
	} {
		t.Run(run.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, "test.mjs")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GATEWAY_URL="+e.url+"/redis", "GATEWAY_TOKEN="+run.token, "KEY_PREFIX="+run.prefix, "NAMESPACE="+run.ns)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("node test.mjs: %v\n%s", err, out)
			}
			t.Logf("%s", strings.TrimSpace(string(out)))
			if !strings.HasPrefix(strings.TrimSpace(string(out)), "ok ") {
				t.Fatalf("unexpected output: %s", out)
			}
		})
	}
	// the namespace's FLUSHDB left app2 alone
	if r := e.do("POST", "/redis", other, []byte(`["GET","s"]`)); string(r.body) != `{"result":"app2"}`+"\n" {
		t.Fatalf("app2 after app1's FLUSHDB: %s", r.body)
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
