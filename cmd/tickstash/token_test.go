package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/tickstash/tickstash/gateway"
	"github.com/tickstash/tickstash/internal/redistest"
)

func TestTokenAndAuditCommands(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	key, err := gateway.NewSecretKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TICKSTASH_SECRET_KEY", key)
	run := func(args ...string) (string, int) {
		var out, errb bytes.Buffer
		args = append(args[:2:2], append([]string{"--redis-url", redistest.URL(), "--key-prefix", prefix}, args[2:]...)...)
		code := Main(context.Background(), args, strings.NewReader(""), &out, &errb)
		return out.String() + errb.String(), code
	}
	out, code := run("token", "create", "--name", "bot", "--scopes", "market:read,redis", "--redis", "read", "--redis-key-prefix", "app:", "--signing")
	if code != 0 || !strings.Contains(out, "token          tsk_") || !strings.Contains(out, "signing secret tss_") {
		t.Fatalf("create: %d %s", code, out)
	}
	id := strings.Fields(out[strings.Index(out, "id "):])[1]
	if out, code := run("token", "create", "--name", "x", "--scopes", "nope"); code != 2 || !strings.Contains(out, "unknown scope") {
		t.Fatalf("bad scope: %d %s", code, out)
	}
	if out, code := run("token", "create", "--name", "x", "--scopes", "redis"); code != 2 || !strings.Contains(out, "command class") {
		t.Fatalf("redis scope without class: %d %s", code, out)
	}
	if out, code := run("token", "list"); code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "active,signing") || strings.Contains(out, "tsk_") {
		t.Fatalf("list: %d %s", code, out)
	}
	if out, code := run("token", "rotate-secret", id); code != 0 || !strings.Contains(out, "tss_") {
		t.Fatalf("rotate: %d %s", code, out)
	}
	if out, code := run("token", "revoke", id); code != 0 {
		t.Fatalf("revoke: %d %s", code, out)
	}
	if out, code := run("token", "list"); !strings.Contains(out, "revoked") || code != 0 {
		t.Fatalf("list after revoke: %s", out)
	}
	if out, code := run("token", "revoke", "tok_nope"); code != 2 {
		t.Fatalf("revoke unknown: %d %s", code, out)
	}
	if out, code := run("audit", "tail", "-n", "5"); code != 0 {
		t.Fatalf("audit tail: %d %s", code, out)
	}
}
