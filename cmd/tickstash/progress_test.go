package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestProgressBarOnlyOnATerminal: /dev/null is a character device but no terminal, so
// it gets no bar, and neither does a pipe or a buffer; a pseudo-terminal does.
func TestProgressBarOnlyOnATerminal(t *testing.T) {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	if st, err := devnull.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("%s: mode %v, %v: the test assumes a character device", os.DevNull, st.Mode(), err)
	}
	if b := newProgressBar(devnull, "replay"); b != nil {
		t.Errorf("newProgressBar(%s) drew a bar: a character device is not a terminal", os.DevNull)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if b := newProgressBar(w, "replay"); b != nil {
		t.Error("newProgressBar(pipe) drew a bar")
	}
	var buf bytes.Buffer
	b := newProgressBar(&buf, "replay")
	if b != nil {
		t.Error("newProgressBar(buffer) drew a bar")
	}
	b.update(5, 10) // a nil bar is a no-op
	b.done()
	if buf.Len() != 0 {
		t.Errorf("a nil bar wrote %q", buf.String())
	}

	tty, ok := openPTY(t)
	if !ok {
		return
	}
	bar := newProgressBar(tty, "replay")
	if bar == nil {
		t.Fatal("newProgressBar(pseudo-terminal) = nil, want a bar")
	}
	var drawn bytes.Buffer
	bar.w = &drawn // read back what it draws without a terminal reader
	bar.update(10, 10)
	bar.update(20, 10) // more than the total read (a file grew) stays inside the bar
	bar.done()
	if got := drawn.String(); !strings.Contains(got, "\rreplay [==============================] 100%") || !strings.HasSuffix(got, "\n") {
		t.Errorf("bar drew %q", got)
	}
}
