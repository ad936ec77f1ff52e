package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/tickstash/tickstash/internal/redistest"
)

// ingestWants is what the ingest report must say: the redis-benchmark reference runs
// only against a single server.
func ingestWants() []string {
	if singleAddr(redistest.URL()) == "" {
		return []string{"### bench ingest", "No redis-benchmark reference"}
	}
	return []string{"### bench ingest", "raw pipelined XADD", "Ratio: **"}
}

// TestBenchCommands runs small versions of the benchmarks end to end: they must write,
// measure, report the reference beside tickstash, and leave no keys behind.
func TestBenchCommands(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"bench", "--trades", "20000", "ingest"}, ingestWants()},
		{[]string{"bench", "--file", capturePath(t, "binance-spot-2021.jsonl"), "replay"}, []string{"### bench replay", "binance-spot-2021.jsonl | 265 |"}},
	} {
		var out, errb bytes.Buffer
		args := append(tt.args[:1:1], append([]string{"--redis-url", redistest.URL()}, tt.args[1:]...)...)
		if code := Main(ctx, args, strings.NewReader(""), &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		for _, w := range tt.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v: report lacks %q:\n%s", args, w, out.String())
			}
		}
	}
	// That the benchmarks delete their keys is tested in internal/bench, where the
	// prefix is known.
}
