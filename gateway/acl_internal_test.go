package gateway

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/internal/redistest"
)

// TestNamespaceClientsClosedWhenIdle: a namespace's pooled client is closed once it has
// been idle for Config.RedisACLIdle, and a later request opens a new one.
func TestNamespaceClientsClosedWhenIdle(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	k, _ := NewSecretKey("t")
	keys, err := ParseSecretKeys(k)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Deps{Redis: rdb}, Config{Prefix: prefix, SecretKeys: keys, RedisACLIdle: 40 * time.Millisecond}, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.acl.close()
		ctx := context.Background()
		del := func(ctx context.Context, c *redis.Client) error {
			users, _ := c.Do(ctx, "acl", "users").StringSlice()
			for _, u := range users {
				if strings.HasPrefix(u, prefix+":") {
					_ = c.Do(ctx, "acl", "deluser", u).Err()
				}
			}
			return nil
		}
		_ = forEachNode(ctx, rdb, del)
	})
	if !s.acl.confines() {
		t.Fatal("the real Redis 7 takes ACL SETUSER: namespaces should be confined")
	}
	ctx := context.Background()
	for _, ns := range []string{"a", "b"} {
		cli, err := s.clientFor(ctx, &Token{Namespace: ns}, CommandPolicy{})
		if err != nil {
			t.Fatal(err)
		}
		if err := cli.Set(ctx, s.keys.namespace(ns)+"k", "v", time.Minute).Err(); err != nil {
			t.Fatalf("SET as the ACL user of %s: %v", ns, err)
		}
		if err := cli.Set(ctx, prefix+":outside", "v", time.Minute).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
			t.Fatalf("SET outside the namespace as its ACL user: %v", err)
		}
	}
	if n := s.acl.pooled(); n != 2 {
		t.Fatalf("%d clients pooled, want 2", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		// Only namespace a is used: b's client goes once idle.
		if _, err := s.clientFor(ctx, &Token{Namespace: "a"}, CommandPolicy{}); err != nil {
			t.Fatal(err)
		}
		if s.acl.pooled() == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d clients pooled after b was idle for 5s", s.acl.pooled())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
