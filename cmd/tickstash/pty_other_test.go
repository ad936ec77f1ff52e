//go:build !linux

package main

import (
	"os"
	"testing"
)

// openPTY reports false: opening a pseudo-terminal is only done on Linux here.
func openPTY(t *testing.T) (*os.File, bool) {
	t.Helper()
	t.Log("pseudo-terminals are opened on Linux only: terminal case not checked")
	return nil, false
}
