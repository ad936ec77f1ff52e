package testenv

import (
	"context"
	"testing"
	"time"
)

// waitTimeout is how long WaitFor waits: long, because a loaded machine is slow, and
// only a failing test ever waits that long.
var waitTimeout = 30 * time.Second

// WaitFor polls cond every few milliseconds until it holds, and fails tb if 30 seconds
// pass first, saying it waited for what. Call it from the test's goroutine. It is how
// tests wait for something another goroutine or process does; never sleep instead.
func WaitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if Poll(ctx, cond) != nil {
		tb.Fatalf("waited %v for %s: it did not happen", waitTimeout, what)
	}
}
