package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/peterbourgon/ff/v4"
)

// benchBinary is the command that holds the benchmarks. They live in their own binary
// because they link their reference libraries (asynq, redis_rate, go-talib), which the
// production binary must not carry.
const benchBinary = "tickstash-bench"

// cmdBench runs tickstash-bench with the same arguments when it is installed (next to
// tickstash, or on $PATH), and otherwise says how to run it.
func cmdBench(e env) *ff.Command {
	f := newFlags("bench", "bench [tickstash-bench flags and arguments]\n\n"+
		"The benchmarks live in their own binary, tickstash-bench, so that their reference\n"+
		"libraries stay out of tickstash. When tickstash-bench is installed next to tickstash\n"+
		"or on $PATH, 'tickstash bench ARGS' runs 'tickstash-bench ARGS'; otherwise it says how\n"+
		"to build or run it:\n\n"+
		"  go install ./cmd/tickstash-bench         # then: tickstash-bench --help\n"+
		"  go run ./cmd/tickstash-bench [flags] [ingest|replay|queue|ratelimit|signals|gateway|leaderboard]", e)
	f.PassArgs() // everything after "bench" is tickstash-bench's to parse, --help included
	return f.Command("", func(ctx context.Context, args []string) error {
		path, err := findBench()
		if err != nil && slices.ContainsFunc(args, func(a string) bool { return a == "-h" || a == "--help" || a == "-help" }) {
			f.WriteHelp(e.stdout, "tickstash", nil)
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %s is not installed (next to this binary or on $PATH): "+
				"run 'go run ./cmd/tickstash-bench %s' in the source tree, or 'go install ./cmd/tickstash-bench'",
				errUsage, benchBinary, strings.Join(args, " "))
		}
		c := exec.CommandContext(ctx, path, args...)
		c.Stdin, c.Stdout, c.Stderr = e.stdin, e.stdout, e.stderr
		err = c.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return &exitError{Code: ee.ExitCode()} // tickstash-bench said why
		}
		return err
	})
}

// findBench returns the path of tickstash-bench: beside the running executable first,
// then on $PATH.
func findBench() (string, error) {
	if self, err := os.Executable(); err == nil {
		path := filepath.Join(filepath.Dir(self), benchBinary)
		if st, err := os.Stat(path); err == nil && !st.IsDir() {
			return path, nil
		}
	}
	return exec.LookPath(benchBinary)
}
