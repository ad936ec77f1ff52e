package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestBooksCommand(t *testing.T) {
	kraken, binanceUS := capturePath(t, "kraken-v1-2021.jsonl"), capturePath(t, "binance-us-2021.jsonl")
	for _, tc := range []struct {
		args   []string
		status int
		out    string // a substring of stdout
		errOut string // a substring of stderr
	}{
		{[]string{"--depth", "2", kraken}, 0, `"symbol":"XMR-USD","time":"2021-04-17T16:49:23.3424482Z","sequence":846,"bids":[["353.64","30.3"],["353.63","5"]],"asks":[["354.48","6.86050247"],["354.57","11.64"]]}`, "0 verification failures, 0 resyncs, 4269 checksums verified"},
		{[]string{kraken, "--depth", "2"}, 0, `"bids":[["353.64","30.3"],["353.63","5"]]`, ""},
		{[]string{binanceUS}, 1, `"state":"empty","reason":"waiting for a snapshot"`, "4 of 4 books ended stale or never synced"},
		{[]string{}, 2, "", "name at least one capture file"},
		{[]string{"--depth", "-1", kraken}, 2, "", "--depth -1"},
		{[]string{"--bogus", kraken}, 2, "", "bogus"},
		{[]string{"/nonexistent.jsonl"}, 2, "", "no such file"},
		{[]string{"--help"}, 0, "Exit status", ""},
	} {
		var out, errOut bytes.Buffer
		status := Main(context.Background(), append([]string{"books"}, tc.args...), strings.NewReader(""), &out, &errOut)
		if status != tc.status || !strings.Contains(out.String(), tc.out) || !strings.Contains(errOut.String(), tc.errOut) {
			t.Errorf("%v: status %d, want %d\nstdout: %.300s\nstderr: %.300s", tc.args, status, tc.status, out.String(), errOut.String())
		}
	}
	// The default depth is 10 levels a side.
	var out bytes.Buffer
	Main(context.Background(), []string{"books", capturePath(t, "coinbase-exchange-2021.jsonl")}, strings.NewReader(""), &out, &bytes.Buffer{})
	if line := strings.SplitN(out.String(), "\n", 2)[0]; strings.Count(line, `],["`) != 18 {
		t.Errorf("default depth: %s", line)
	}
}
