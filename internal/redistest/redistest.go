// Package redistest gives tests a real Redis and a key prefix of their own.
//
// Tests talk to the Redis named by TICKSTASH_TEST_REDIS_URL, by default
// redis://127.0.0.1:6379/0; a cluster URL (redis://h1:p1?addr=h2:p2) runs them on Redis
// Cluster. A test that cannot reach Redis fails: it does not skip.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/internal/redisconn"
)

// DefaultURL is used when TICKSTASH_TEST_REDIS_URL is unset.
const DefaultURL = "redis://127.0.0.1:6379/0"

// URL returns the Redis URL tests use.
func URL() string {
	if u := os.Getenv("TICKSTASH_TEST_REDIS_URL"); u != "" {
		return u
	}
	return DefaultURL
}

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
		tb.Fatalf("redistest: Redis at %s does not answer (%v): start it (see README) or set TICKSTASH_TEST_REDIS_URL",
			redisconn.Redact(URL()), err)
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
