package obs

import (
	"testing"

	"github.com/tickstash/tickstash/internal/testenv"
)

// TestMain gives the tests their Redis and NATS: see internal/testenv.
func TestMain(m *testing.M) { testenv.Main(m) }
