package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

var rpsRE = regexp.MustCompile(`([0-9.]+) requests per second`)

// redisBenchmark runs redis-benchmark against the server at addr with the given options
// (e.g. "-P", "16", "-n", "100000") and one command, and returns its rate in requests
// per second and the command line it ran, for the report.
func redisBenchmark(ctx context.Context, addr string, opts []string, command ...string) (float64, string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, "", fmt.Errorf("bench: redis address %q: %w", addr, err)
	}
	if _, err := exec.LookPath("redis-benchmark"); err != nil {
		return 0, "", errors.New("bench: redis-benchmark not found on PATH (Debian: apt-get install redis-tools)")
	}
	args := append(append([]string{"-h", host, "-p", port, "-q"}, opts...), command...)
	line := "redis-benchmark " + strings.Join(args, " ")
	out, err := exec.CommandContext(ctx, "redis-benchmark", args...).CombinedOutput()
	if err != nil {
		return 0, line, fmt.Errorf("bench: %s: %w: %s", line, err, lastLine(out))
	}
	m := rpsRE.FindAllSubmatch(out, -1)
	if len(m) == 0 {
		return 0, line, fmt.Errorf("bench: no rate in redis-benchmark output: %s", lastLine(out))
	}
	rps, err := strconv.ParseFloat(string(m[len(m)-1][1]), 64)
	return rps, line, err
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexAny(s, "\r\n"); i >= 0 {
		s = s[i+1:]
	}
	return s
}
