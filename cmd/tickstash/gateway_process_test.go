package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/internal/testenv"
)

// TestGatewaysSideBySide runs two `tickstash gateway` processes on the real Redis: a
// token created once works on both, and its rate limit holds across them — ten requests
// spread over the two gateways get exactly the five the policy allows.
func TestGatewaysSideBySide(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"token", "create", "--redis-url", redistest.URL(), "--store-prefix", prefix,
		"--name", "side-by-side", "--scopes", "market:read", "--rate", "fixed:5/m"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("token create: exit %d: %s", code, errb.String())
	}
	token := strings.TrimSpace(strings.TrimPrefix(strings.Split(out.String(), "\n")[0], "token"))
	var bases []string
	var procs []*proc
	for i := 0; i < 2; i++ {
		p := startProcess(t, "gateway", "--redis-url", redistest.URL(), "--key-prefix", prefix, "--http-addr", "127.0.0.1:0",
			"--admin-addr", "127.0.0.1:0")
		procs = append(procs, p)
		bases = append(bases, "http://"+findIn(t, p, `HTTP   http://(\S+)/v1`))
	}
	allowed, limited := 0, 0
	for i := 0; i < 10; i++ {
		req, _ := http.NewRequest("GET", bases[i%2]+"/v1/markets", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			allowed++
		case http.StatusTooManyRequests:
			limited++
		default:
			t.Fatalf("request %d to gateway %d: status %d", i, i%2, resp.StatusCode)
		}
	}
	if allowed != 5 || limited != 5 {
		t.Errorf("%d allowed, %d limited across two gateways; want 5 and 5 (one shared limit)", allowed, limited)
	}
	for _, p := range procs {
		if code := p.stop(t); code != 0 {
			t.Errorf("gateway exited %d:\n%.2000s", code, p.stderr())
		}
	}
}

// findIn waits until re matches a child process's stderr and returns its first group.
func findIn(t *testing.T, p *proc, re string) string {
	t.Helper()
	var got string
	testenv.WaitFor(t, "pattern "+re+" in the process's stderr", func() bool {
		got = regexpFind(re, p.stderr())
		return got != ""
	})
	return got
}
