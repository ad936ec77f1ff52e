package history_test

import (
	"testing"

	"github.com/tickstash/tickstash/internal/testenv"
)

// TestMain gives the tests their Redis: see internal/testenv.
func TestMain(m *testing.M) { testenv.Main(m) }
