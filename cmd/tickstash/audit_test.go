package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/gateway"
	"github.com/tickstash/tickstash/internal/redistest"
)

func TestEscapeField(t *testing.T) {
	for in, want := range map[string]string{
		"plain key:1 {tag}":   "plain key:1 {tag}",
		"é✓ünï 😀":             "é✓ünï 😀",
		"a\nb\r\tc":           `a\nb\r\tc`,
		"\x1b[2K\x1b]0;x\x07": `\x1b[2K\x1b]0;x\a`,
		"\x7f\u0085":          `\x7f\u0085`,
		"bidi\u202eevil":      `bidi\u202eevil`,
		"bad\xff\xc3utf8":     `bad\xff\xc3utf8`,
		`back\slash\n`:        `back\\slash\\n`,
		"\ufffd":              "\ufffd",
	} {
		if got := escapeField(in); got != want {
			t.Errorf("escapeField(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestAuditTailEscapes reproduces the forged audit line of issue #11: a key holding a
// newline, a whole fake entry blamed on another token and terminal escapes, written
// through a real gateway, prints as one line with every control character escaped, in
// text and in JSON.
func TestAuditTailEscapes(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	srv, err := gateway.New(gateway.Deps{Redis: rdb}, gateway.Config{Prefix: prefix}, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	app := "{" + prefix + "}:app:"
	t.Cleanup(func() { redistest.DeleteKeys(t, rdb, "{"+prefix+"}*") })
	raw, _, _, err := srv.Tokens().Create(context.Background(), gateway.TokenSpec{Name: "attacker", Scopes: []gateway.Scope{gateway.ScopeRedis},
		Redis: gateway.RedisWrite, KeyPrefixes: []string{app}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	forged := app + "x\n2026-12-04T07:00:00Z 200 POST   POST /redis/{command...}   tok_victim   10.0.0.7 DEL everything\x1b[2K\x1b[1A\u202e\xff"
	req, _ := http.NewRequest("POST", hs.URL+"/redis/set/"+url.PathEscape(forged), strings.NewReader("v"))
	req.Header.Set("Authorization", "Bearer "+raw)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("set: %v %v", res, err)
	}
	res.Body.Close()
	if v := rdb.Get(context.Background(), forged).Val(); v != "v" {
		t.Fatalf("the key was not stored as sent: %q", v)
	}
	for _, asJSON := range []bool{false, true} {
		args := []string{"audit", "tail", "--redis-url", redistest.URL(), "--store-prefix", prefix, "-n", "5"}
		if asJSON {
			args = append(args, "--json")
		}
		var out, errb bytes.Buffer
		if code := Main(context.Background(), args, strings.NewReader(""), &out, &errb); code != 0 {
			t.Fatalf("audit tail: %d %s", code, errb.String())
		}
		s := out.String()
		if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
			t.Fatalf("want one line, got %q", s)
		}
		for _, r := range strings.TrimSuffix(s, "\n") {
			if r < 0x20 || r == 0x7f || r == '\u202e' || r == '\ufffd' {
				t.Fatalf("output carries %U: %q", r, s)
			}
		}
		want := `x\n2026-12-04T07:00:00Z 200 POST`
		if asJSON {
			var en gateway.AuditEntry
			if err := json.Unmarshal(out.Bytes(), &en); err != nil {
				t.Fatal(err)
			}
			s = en.Target
		}
		if !strings.Contains(s, want) || !strings.Contains(s, `everything\x1b[2K\x1b[1A\u202e\xff`) {
			t.Fatalf("the target is not shown escaped: %q", s)
		}
	}
}

// TestAuditTailCounts: token-less requests are counted by a serving gateway when their
// minute ends, and `audit tail --counts` prints the count.
func TestAuditTailCounts(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv, err := gateway.New(gateway.Deps{Redis: rdb}, gateway.Config{Prefix: prefix, Now: clock, UsageFlushInterval: 20 * time.Millisecond}, nil, prometheus.NewRegistry())
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
	defer func() { cancel(); <-done }()
	for range 3 {
		res, err := http.Get("http://" + ln.Addr().String() + "/v1/markets")
		if err != nil || res.StatusCode != 401 {
			t.Fatalf("token-less: %v %v", res, err)
		}
		res.Body.Close()
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var out, errb bytes.Buffer
		if code := Main(context.Background(), []string{"audit", "tail", "--redis-url", redistest.URL(), "--store-prefix", prefix, "--counts"},
			strings.NewReader(""), &out, &errb); code != 0 {
			t.Fatalf("audit tail --counts: %d %s", code, errb.String())
		}
		if f := strings.Fields(out.String()); len(f) == 6 && f[1] == "3" && f[2] == "127.0.0.1" && f[4]+" "+f[5] == "token missing" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("counts: %q", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
