package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
)

// TestGoRedisLogsFollowLogFormat: with --log-format json, go-redis's own dial-failure
// line comes out as slog JSON like every other log line, not as go-redis's plain text.
func TestGoRedisLogsFollowLogFormat(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "redis://" + ln.Addr().String() + "/0"
	ln.Close()

	var out, errb bytes.Buffer
	args := []string{"ingest", "--redis-url", dead, "--log-format", "json", "--admin-addr", "127.0.0.1:0"}
	if code := Main(context.Background(), args, strings.NewReader(""), &out, &errb); code == 0 {
		t.Fatalf("ingest against a dead Redis exited 0:\n%s", errb.String())
	}
	lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	var goRedis int
	for _, line := range lines[:len(lines)-1] { // the last line is the command's error
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a log line is not JSON: %q\nall:\n%s", line, errb.String())
		}
		if rec["component"] == "go-redis" && strings.Contains(rec["msg"].(string), "failed to dial") {
			goRedis++
		}
		if strings.HasPrefix(line, "redis: ") {
			t.Errorf("go-redis's own text format leaked: %q", line)
		}
	}
	if goRedis == 0 {
		t.Fatalf("no go-redis line in slog JSON:\n%s", errb.String())
	}
}
