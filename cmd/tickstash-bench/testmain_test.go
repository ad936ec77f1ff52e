package main

import (
	"testing"

	"github.com/tickstash/tickstash/cmd/tickstash-bench/internal/bench"

	"github.com/tickstash/tickstash/internal/testenv"
)

// TestMain gives the tests their Redis and NATS: see internal/testenv. The queue
// benchmark starts this binary as a worker process to kill: bench.RunQueueChild.
func TestMain(m *testing.M) {
	bench.RunQueueChild()
	testenv.Main(m)
}
