package coinbase

import (
	"testing"

	"github.com/tickstash/tickstash/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
