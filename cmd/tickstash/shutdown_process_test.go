package main

import (
	"github.com/tickstash/tickstash/internal/testenv"

	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/internal/redistest"
)

// TestSIGTERMWithRedisDownReportsLostRecords runs `tickstash ingest` against a
// redis-server of the test's own, kills that Redis, and stops tickstash with SIGTERM:
// the records it could not write are lost, so it must exit non-zero and say how many,
// in a log line and in its last words — not "writes flushed".
func TestSIGTERMWithRedisDownReportsLostRecords(t *testing.T) {
	srv := redistest.StartServer(t)
	p := startProcess(t, "ingest", "--redis-url", srv.URL(), "--admin-addr", "127.0.0.1:0", "--log-format", "json",
		"--source", "synthetic", "--synthetic-symbols", "4", "--synthetic-rate", "2000", "--intervals", "1m")
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	testenv.WaitFor(t, "trades in Redis", func() bool {
		keys, _ := rdb.Keys(context.Background(), "ts:*:trades").Result()
		return len(keys) > 0
	})
	srv.Stop()
	testenv.WaitFor(t, "a failed write", func() bool { return strings.Contains(p.stderr(), "redis write failed, retrying") })

	code := p.stop(t)
	out := p.stderr()
	if code == 0 {
		t.Fatalf("exit status 0 after losing records; stderr:\n%s", out)
	}
	var logged int64
	for _, rec := range p.logs() {
		if rec["msg"] == "records lost: not written to Redis before the shutdown timeout" {
			n, _ := rec["records"].(float64)
			logged = int64(n)
		}
		if msg, _ := rec["msg"].(string); strings.Contains(msg, "writes flushed") {
			t.Errorf("logged %q although records were lost", msg)
		}
	}
	if logged <= 0 {
		t.Fatalf("no log line with the number of records lost; stderr:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	m := regexp.MustCompile(`^tickstash ingest: .*?(\d+) records lost`).FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("last line %q does not say how many records were lost", last)
	}
	if n, _ := strconv.ParseInt(m[1], 10, 64); n != logged {
		t.Errorf("last line says %d records lost, the log line %d", n, logged)
	}
	t.Logf("exit %d, %d records lost: %s", code, logged, last)
}
