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
	raw, _, _ := e.token(gateway.TokenSpec{Name: "edge", Scopes: []gateway.Scope{gateway.ScopeRedis},
		Redis: gateway.RedisWrite, RedisScripts: true, KeyPrefixes: []string{p}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GATEWAY_URL="+e.url+"/redis", "GATEWAY_TOKEN="+raw, "KEY_PREFIX="+p)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node test.mjs: %v\n%s", err, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
	if !strings.HasPrefix(strings.TrimSpace(string(out)), "ok ") {
		t.Fatalf("unexpected output: %s", out)
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
