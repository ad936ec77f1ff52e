// Package redistest gives tests a real Redis and a key prefix of their own.
//
// Tests talk to the Redis internal/testenv chose for their test binary: the package's
// TestMain calls testenv.Main. That is TICKSTASH_TEST_REDIS_URL when set (a cluster URL,
// redis://h1:p1?addr=h2:p2, runs them on Redis Cluster), else the Redis on
// 127.0.0.1:6379, else a redis-server the binary starts. A test that cannot reach Redis
// fails: it does not skip.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/internal/redisconn"
	"github.com/tickstash/tickstash/internal/testenv"
)

// URL returns the Redis URL tests use (testenv.RedisURL). It panics, saying how to fix
// it, when the package's TestMain does not call testenv.Main.
func URL() string { return testenv.RedisURL() }

// Client returns a client to the test Redis, closed when tb ends. It fails tb if Redis
// does not answer PING within 5 seconds.
func Client(tb testing.TB) redis.UniversalClient {
	tb.Helper()
	rdb, err := redisconn.Open(URL())
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		tb.Fatalf("redistest: Redis at %s (from %s, which testenv.Main sets) does not answer: %v",
			redisconn.Redact(URL()), testenv.RedisEnv, err)
	}
	tb.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// Prefix returns a key prefix unique to this test run, such as "tt-3f9a1c20", and deletes
// every key that starts with it when tb ends.
func Prefix(tb testing.TB, rdb redis.UniversalClient) string {
	tb.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	prefix := "tt-" + hex.EncodeToString(b[:])
	tb.Cleanup(func() { DeleteKeys(tb, rdb, prefix+"*") })
	return prefix
}

// DeleteKeys removes the keys matching pattern on every master.
func DeleteKeys(tb testing.TB, rdb redis.UniversalClient, pattern string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := redisconn.DeleteKeys(ctx, rdb, pattern); err != nil && !strings.Contains(err.Error(), "closed") {
		tb.Logf("redistest: clean up %s: %v", pattern, err)
	}
}

// Keys returns every key matching pattern, from every master on Redis Cluster (KEYS on a
// cluster client asks one node only).
func Keys(tb testing.TB, rdb redis.UniversalClient, pattern string) []string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := redisconn.Keys(ctx, rdb, pattern)
	if err != nil {
		tb.Fatalf("redistest: keys %s: %v", pattern, err)
	}
	sort.Strings(out)
	return out
}

// Addr returns the host:port of the test Redis when it is one server, for tools that
// take an address (redis-benchmark); "" when the tests run on Redis Cluster or Sentinel.
func Addr() string {
	u, err := url.Parse(URL())
	if err != nil || u.Query().Has("addr") || u.Query().Has("master_name") || u.Port() == "" {
		return ""
	}
	return u.Host
}
