package bookreplay_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/tickstash/tickstash/book/bookreplay"
)

func TestCommand(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		status int
		out    string // a substring of stdout
		errOut string // a substring of stderr
	}{
		{[]string{"--depth", "2", captures + "kraken-v1-2021.jsonl"}, 0, `"symbol":"XMR-USD","time":"2021-04-17T16:49:23.3424482Z","sequence":846,"bids":[["353.64","30.3"],["353.63","5"]],"asks":[["354.48","6.86050247"],["354.57","11.64"]]}`, "0 verification failures, 0 resyncs, 4269 checksums verified"},
		{[]string{captures + "binance-us-2021.jsonl"}, 1, `"state":"empty","reason":"waiting for a snapshot"`, "4 of 4 books ended stale or never synced"},
		{[]string{}, 2, "", "usage: tickstash books"},
		{[]string{"--depth", "-1", "x"}, 2, "", "usage"},
		{[]string{"--bogus"}, 2, "", "flag provided but not defined"},
		{[]string{"/nonexistent.jsonl"}, 2, "", "no such file"},
		{[]string{"--help"}, 0, "", "Exit status"},
	} {
		var out, errOut bytes.Buffer
		status := bookreplay.Command(context.Background(), tc.args, &out, &errOut)
		if status != tc.status || !strings.Contains(out.String(), tc.out) || !strings.Contains(errOut.String(), tc.errOut) {
			t.Errorf("%v: status %d\nstdout: %.300s\nstderr: %.300s", tc.args, status, out.String(), errOut.String())
		}
	}
	// The default depth is 10 levels a side.
	var out bytes.Buffer
	bookreplay.Command(context.Background(), []string{captures + "coinbase-exchange-2021.jsonl"}, &out, &bytes.Buffer{})
	if line := strings.SplitN(out.String(), "\n", 2)[0]; strings.Count(line, `],["`) != 18 {
		t.Errorf("default depth: %s", line)
	}
}
