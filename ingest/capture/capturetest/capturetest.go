// Package capturetest gives tests the recorded exchange traffic in
// ../shared/testdata/captures (relative to the module root), found from this file's
// location so that tests run from any directory.
package capturetest

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/tickstash/tickstash/ingest/capture"
)

// Dir returns the directory of the shared captures, skipping the test when it is
// missing (a checkout without the shared test data).
func Dir(tb testing.TB) string {
	tb.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "shared", "testdata", "captures")
	if _, err := os.Stat(dir); err != nil {
		tb.Skipf("recorded captures not found: %v", err)
	}
	return dir
}

// Path returns the path of the named shared capture.
func Path(tb testing.TB, name string) string {
	tb.Helper()
	return filepath.Join(Dir(tb), name)
}

// Recv returns the recv records of the named shared capture, data copied.
func Recv(tb testing.TB, name string) []capture.Record {
	tb.Helper()
	r, err := capture.Open(Path(tb, name))
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	var out []capture.Record
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			tb.Fatal(err)
		}
		if rec.Type == capture.TypeRecv {
			rec.Data = append([]byte(nil), rec.Data...)
			out = append(out, rec)
		}
	}
}
