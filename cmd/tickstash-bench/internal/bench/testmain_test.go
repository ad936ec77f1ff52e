package bench

import (
	"testing"

	"github.com/tickstash/tickstash/internal/testenv"
)

// TestMain gives the tests their Redis and NATS: see internal/testenv. The queue
// benchmark starts this binary as a worker process to kill: RunQueueChild.
func TestMain(m *testing.M) {
	RunQueueChild()
	testenv.Main(m)
}
