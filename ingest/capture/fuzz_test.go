package capture

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReader reads arbitrary capture text, seeded with the head of each recorded
// capture: it must not panic, and must end in io.EOF or an ErrFormat error.
func FuzzReader(f *testing.F) {
	for _, name := range []string{"binance-spot-2021.jsonl", "coinbase-exchange-2021.jsonl", "kraken-v1-2021.jsonl"} {
		b, err := os.ReadFile(filepath.Join(captureDir(f), name))
		if err != nil {
			f.Fatal(err)
		}
		lines := bytes.SplitAfter(b, []byte("\n"))
		f.Add(bytes.Join(lines[:min(6, len(lines))], nil))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := NewReader(bytes.NewReader(in))
		if err != nil {
			return
		}
		for i := 0; ; i++ {
			_, err := r.Next()
			if errors.Is(err, io.EOF) || errors.Is(err, ErrFormat) {
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if i > len(in) {
				t.Fatal("more records than bytes")
			}
		}
	})
}
