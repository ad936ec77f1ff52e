package gateway

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkCheckSignature: the verifier's cost over a 1 MiB body with two valid-looking
// values (one body hash, at most four MACs) and with the 950 values of the issue's
// attack (refused before any hashing).
func BenchmarkCheckSignature(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1<<20)
	ts := strconv.FormatInt(fuzzNow.Unix(), 10)
	good := Sign(fuzzSecrets[0], "POST", "/redis", fuzzNow, body)
	for _, c := range []struct {
		name   string
		header string
		ok     bool
	}{
		{"two-values", "v1=" + strings.Repeat("0", 64) + "," + good, true},
		{"950-values", strings.Repeat(good+",", 949) + good, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := fuzzSigned(ts, body, c.header)
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, _, err := checkSignature(req, fuzzSecrets, fuzzNow, 5*time.Minute); (err == nil) != c.ok {
					b.Fatal(err)
				}
			}
		})
	}
}
