package redisconn

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for go-redis's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// jsonLines decodes every line of out as one JSON object, failing on any other line.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line is not slog JSON: %q: %v", line, err)
		}
		recs = append(recs, rec)
	}
	return recs
}

func TestLoggerSuppressesRepeatsPerCallSite(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLogger(slog.New(slog.NewJSONHandler(&buf, nil)), LogConfig{Every: 10 * time.Second, Now: func() time.Time { return now }})
	ctx := context.Background()
	const dial = "redis: connection pool: failed to dial after %d attempts: %v"
	for i := range 33 { // one outage's worth within the window
		l.Printf(ctx, dial, 5, "connection refused")
		if i == 3 {
			l.Printf(ctx, "Conn has unread data (not push notification), removing it")
		}
		now = now.Add(200 * time.Millisecond)
	}
	now = now.Add(10 * time.Second)
	l.Printf(ctx, dial, 5, "connection refused")

	recs := jsonLines(t, buf.String())
	if len(recs) != 3 {
		t.Fatalf("%d lines, want 3 (first dial failure, the other call site, the dial failure after the window):\n%s", len(recs), buf.String())
	}
	if recs[0]["msg"] != "redis client: connection pool: failed to dial after 5 attempts: connection refused" ||
		recs[0]["level"] != "WARN" || recs[0]["component"] != "go-redis" || recs[0]["suppressed"] != nil {
		t.Errorf("first line %v", recs[0])
	}
	if recs[1]["msg"] != "redis client: Conn has unread data (not push notification), removing it" {
		t.Errorf("second call site's line %v", recs[1])
	}
	if recs[2]["suppressed"] != float64(32) {
		t.Errorf("line after the window says suppressed=%v, want 32: %v", recs[2]["suppressed"], recs[2])
	}
}

func TestLoggerHonoursTheLevel(t *testing.T) {
	var buf bytes.Buffer
	l := NewLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError})), LogConfig{})
	l.Printf(context.Background(), "redis: something %s", "odd")
	if buf.Len() != 0 {
		t.Errorf("warn line printed at --log-level error: %s", buf.String())
	}
}

// TestGoRedisLinesComeOutAsSlogJSON dials a port nobody listens on through a real
// go-redis client: go-redis's own "failed to dial" line must arrive as slog JSON.
func TestGoRedisLinesComeOutAsSlogJSON(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // now nothing listens there

	var buf syncBuffer
	SetLogger(NewLogger(slog.New(slog.NewJSONHandler(&buf, nil)), LogConfig{}))
	t.Cleanup(func() { SetLogger(NewLogger(slog.New(slog.DiscardHandler), LogConfig{})) })

	rdb, err := Open("redis://" + addr + "/0?dial_timeout=200ms&max_retries=0")
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	for range 3 {
		if err := rdb.Ping(context.Background()).Err(); err == nil {
			t.Fatalf("ping %s answered; want a refused connection", addr)
		}
	}
	out := buf.String()
	recs := jsonLines(t, out)
	var dial int
	for _, r := range recs {
		if msg, _ := r["msg"].(string); strings.Contains(msg, "failed to dial") && r["component"] == "go-redis" {
			dial++
		}
	}
	if dial != 1 {
		t.Fatalf("%d go-redis dial-failure lines, want exactly 1 (repeats suppressed):\n%s", dial, out)
	}
}
