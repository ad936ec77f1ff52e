package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/peterbourgon/ff/v4"

	"github.com/tickstash/tickstash/analysis"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/market"
)

// run runs Main and returns its exit status, standard output and standard error.
func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// commandPaths returns the words of every command and subcommand of the tree.
func commandPaths() [][]string {
	var paths [][]string
	var walk func(prefix []string, c *ff.Command)
	walk = func(prefix []string, c *ff.Command) {
		path := append(append([]string(nil), prefix...), c.Name)
		paths = append(paths, path)
		for _, sub := range c.Subcommands {
			walk(path, sub)
		}
	}
	for _, c := range commands() {
		walk(nil, c.build(env{}))
	}
	return paths
}

// TestHelpAtEveryLevel asks every command and subcommand for --help (and -h, and the
// help command's form): each prints its own usage on standard output and exits 0.
func TestHelpAtEveryLevel(t *testing.T) {
	paths := commandPaths()
	if len(paths) < 30 {
		t.Fatalf("only %d commands in the tree: %q", len(paths), paths)
	}
	for _, path := range paths {
		name := strings.Join(path, " ")
		for _, form := range [][]string{append(path, "--help"), append(path, "-h"), append([]string{"help"}, path...)} {
			code, out, errs := run(t, "", form...)
			if code != 0 || !strings.Contains(out, "Usage: tickstash") {
				t.Errorf("%q: exit %d, stdout:\n%s\nstderr:\n%s", form, code, out, errs)
				continue
			}
			if path[0] != "bench" && !strings.HasPrefix(out, "Usage: tickstash "+name) {
				t.Errorf("%q: help is not %s's:\n%s", form, name, out)
			}
		}
	}
	if code, out, _ := run(t, "", "--help"); code != 0 || !strings.Contains(out, "leaderboard") {
		t.Errorf("tickstash --help: exit %d:\n%s", code, out)
	}
	if code, _, errs := run(t, ""); code != 2 || !strings.Contains(errs, "Usage: tickstash") {
		t.Errorf("tickstash alone: exit %d:\n%s", code, errs)
	}
}

// TestFlagErrors checks that a bad flag is reported alone, by name and value, before any
// server is contacted.
func TestFlagErrors(t *testing.T) {
	t.Setenv("TICKSTASH_REDIS_URL", "")
	t.Setenv("TICKSTASH_NATS_URL", "")
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("strategies:\n  - name: x\n    bogus: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args    []string
		want    string
		notWant []string
	}{
		{[]string{"run", "--job-lease", "-1s"}, "--job-lease -1s: want a positive duration", []string{"--candles", "--max-deliveries", "--queue-max-len"}},
		{[]string{"analyze", "--max-deliveries", "0"}, "--max-deliveries 0", []string{"--job-lease", "--candles"}},
		{[]string{"analyze", "--job-lease", "1s", "--job-heartbeat", "1s"}, "--job-heartbeat 1s: want a positive duration shorter than --job-lease 1s", []string{"--candles", "--max-deliveries"}},
		{[]string{"gateway", "--rate-timeout", "0s"}, "--rate-timeout 0s: want a positive duration", []string{"--max-body-bytes"}},
		{[]string{"gateway", "--rate-lease", "0.5"}, "--rate-lease 0.5: want a share from 0 (no leasing) to 0.1", []string{"--max-body-bytes"}},
		{[]string{"run", "--rate-lease", "-0.01"}, "--rate-lease -0.01: want a share from 0 (no leasing) to 0.1", nil},
		{[]string{"run", "--batch-size", "0"}, "--batch-size 0", []string{"--writers"}},
		{[]string{"run", "--grace", "-1s"}, "--grace -1s", []string{"--trade-retention", "--flush-interval"}},
		{[]string{"run", "--signals-dup-window", "0s"}, "--signals-dup-window 0s", []string{"--signals-max-age", "--signals-max-bytes"}},
		{[]string{"run", "--grace", "soon"}, `--grace "soon": not a duration such as 500ms or 2m`, nil},
		{[]string{"run", "--concurrency", "many"}, `--concurrency "many": not an integer`, nil},
		{[]string{"run", "--rate-fail-open=maybe"}, `--rate-fail-open "maybe": want true or false`, nil},
		{[]string{"run", "--synthetic-symbols", "0"}, "--synthetic-symbols 0: want 1 to 10000", nil},
		{[]string{"ingest", "--synthetic-rate", "0"}, "--synthetic-rate 0", nil},
		{[]string{"run", "--no-such-flag"}, "unknown flag --no-such-flag", nil},
		{[]string{"run", "--intervals"}, "--intervals: missing value", nil},
		{[]string{"run", "stray"}, `unexpected arguments ["stray"]`, nil},
		{[]string{"run", "--strategies", bad}, "bad.yaml:3:", []string{"signals.Strategy", "struct"}},
		{[]string{"jobs", "submit", "--exchange", "synthetic", "--symbol", "BTC-USD", "--interval", "9m"}, `--interval "9m"`, nil},
		{[]string{"jobs", "dead", "--n", "0"}, "--n 0: want a positive number", nil},
		{[]string{"jobs", "--symbol", "BTC-USD", "dead"}, "--symbol is a flag of jobs submit", nil},
		{[]string{"jobs", "dead", "--symbol", "BTC-USD"}, "--symbol is a flag of jobs submit", nil},
		{[]string{"jobs"}, "name a subcommand: submit, status, dead, retry", nil},
		{[]string{"jobs", "frobnicate"}, `unknown subcommand "frobnicate"`, nil},
		{[]string{"signals", "--nats-url", "nats://x:4222", "tail"}, `--nats-url is a flag of "signals", not of "signals tail"`, nil},
		{[]string{"leaderboard", "top", "movers-1h", "--n", "0"}, "--n 0: want 1 to 10000", nil},
		{[]string{"leaderboard", "--window", "year", "rank", "movers-1h", "BTC"}, `--window "year"`, nil},
		{[]string{"flags", "eval", "KEY", "USER", "--attr", "novalue"}, `--attr "novalue": want name=value`, nil},
		{[]string{"token", "revoke"}, "give one token id", nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, errs := run(t, "", tt.args...)
			if code != 2 || !strings.Contains(errs, tt.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit 2 and %q", code, errs, tt.want)
			}
			for _, nw := range tt.notWant {
				if strings.Contains(errs, nw) {
					t.Errorf("the error names %q too:\n%s", nw, errs)
				}
			}
			if strings.Count(errs, "\n") > 2 {
				t.Errorf("more than one error:\n%s", errs)
			}
		})
	}
}

// TestJobsSubmitForms submits jobs in the forms the help text shows and with flags on
// both sides of the subcommand, and checks what was queued.
func TestJobsSubmitForms(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	q := analysis.NewQueue(rdb, analysis.QueueConfig{Prefix: prefix}, nil)
	store := []string{"--redis-url", redistest.URL(), "--key-prefix", prefix}
	for _, tt := range []struct {
		args     []string
		sym      market.Symbol
		interval market.Interval
	}{
		// The help text's own form: the flags after the subcommand.
		{append([]string{"jobs", "submit", "--exchange", "synthetic", "--symbol", "BTC-USD"}, store...), "BTC-USD", market.Interval1m},
		// Flags on both sides: every one counts.
		{append(append([]string{"jobs", "--symbol", "ETH-USD"}, store...), "submit", "--interval", "5m", "--exchange", "synthetic"), "ETH-USD", market.Interval5m},
		// All before, as scripts wrote it so far.
		{append(append([]string{"jobs", "--exchange", "synthetic", "--symbol", "SOL-USD", "--interval", "1h"}, store...), "submit"), "SOL-USD", market.Interval1h},
	} {
		code, out, errs := run(t, "", tt.args...)
		if code != 0 {
			t.Fatalf("%q: exit %d: %s", tt.args, code, errs)
		}
		st, err := q.Status(context.Background(), strings.TrimSpace(out))
		if err != nil {
			t.Fatalf("%q: status of %q: %v", tt.args, out, err)
		}
		if st.Spec.Exchange != market.Synthetic || st.Spec.Symbol != tt.sym || st.Spec.Interval != tt.interval {
			t.Errorf("%q queued %+v, want synthetic %s %s", tt.args, st.Spec, tt.sym, tt.interval)
		}
	}
	code, out, errs := run(t, "", append([]string{"jobs", "status"}, append(store, "nope")...)...)
	if code == 0 || !strings.Contains(errs, "not found") {
		t.Errorf("jobs status nope: exit %d, %s%s", code, out, errs)
	}
	code, out, errs = run(t, "", append([]string{"jobs", "dead", "--n", "5"}, store...)...)
	if code != 0 || out != "" {
		t.Errorf("jobs dead --n 5: exit %d, %q %s", code, out, errs)
	}
}

// TestListFlagFromEnvironment sets a repeatable flag from its variable: the values are
// separated by spaces. On the command line each use is one value, spaces and all.
func TestListFlagFromEnvironment(t *testing.T) {
	csv := "time,open,high,low,close,volume\n2026-01-01T00:00:00Z,1,1,1,1,1\n2026-01-01T00:01:00Z,2,2,2,2,1\n"
	t.Setenv("TICKSTASH_INDICATOR", "sma:2 ema:2")
	code, out, errs := run(t, csv, "indicators")
	if code != 0 || !strings.HasPrefix(out, "time,sma_2,ema_2\n") {
		t.Fatalf("TICKSTASH_INDICATOR: exit %d, %s%s", code, out, errs)
	}
	// The command line wins over the variable.
	code, out, errs = run(t, csv, "indicators", "--indicator", "obv")
	if code != 0 || !strings.HasPrefix(out, "time,obv\n") {
		t.Fatalf("--indicator over TICKSTASH_INDICATOR: exit %d, %s%s", code, out, errs)
	}
	code, _, errs = run(t, csv, "indicators", "--indicator", "sma:2 ema:2")
	if code != 2 || !strings.Contains(errs, `--indicator "sma:2 ema:2"`) {
		t.Errorf("one --indicator with a space: exit %d, %s", code, errs)
	}
}

// TestBinaryLeavesOutBenchmarkLibraries checks that the production binary links none of
// the benchmarks' reference libraries: they belong to cmd/tickstash-bench.
func TestBinaryLeavesOutBenchmarkLibraries(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{.Path}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	mods := map[string]bool{}
	for _, m := range strings.Fields(string(out)) {
		mods[m] = true
	}
	if !mods["github.com/redis/go-redis/v9"] {
		t.Fatalf("go list -deps lists no go-redis: the check below would prove nothing:\n%s", out)
	}
	for _, m := range []string{"github.com/hibiken/asynq", "github.com/go-redis/redis_rate/v10", "github.com/robfig/cron/v3",
		"github.com/spf13/cast", "github.com/markcheno/go-talib"} {
		if mods[m] {
			t.Errorf("tickstash links %s, a benchmark reference", m)
		}
	}
	out, err = exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{.Path}}{{end}}", "../tickstash-bench").Output()
	if err != nil {
		t.Fatalf("go list -deps ../tickstash-bench: %v", err)
	}
	if !strings.Contains(string(out), "github.com/hibiken/asynq") {
		t.Error("tickstash-bench does not link asynq: is the queue benchmark's reference gone?")
	}
}
