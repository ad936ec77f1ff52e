package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIndicatorsCommand(t *testing.T) {
	csv := "time,open,high,low,close,volume\n"
	for i, c := range []string{"10", "11", "12", "11", "13", "14"} {
		csv += "2026-01-01T00:0" + string(rune('0'+i)) + ":00Z," + c + "," + c + "," + c + "," + c + ",1\n"
	}
	path := filepath.Join(t.TempDir(), "bars.csv")
	if err := os.WriteFile(path, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"indicators", "--input", path, "--indicator", "sma:3", "--indicator", "obv"},
		strings.NewReader(""), &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if lines[0] != "time,sma_3,obv" || len(lines) != 7 {
		t.Fatalf("output:\n%s", out.String())
	}
	// sma_3 is undefined for the first two rows; the third is (10+11+12)/3 = 11.
	if lines[1] != "2026-01-01T00:00:00Z,,1" || lines[3] != "2026-01-01T00:02:00Z,11,3" {
		t.Errorf("rows:\n%s", out.String())
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"indicators", "--input", path}, "at least one --indicator"},
		{[]string{"indicators", "--input", path, "--indicator", "foo:3"}, `--indicator "foo:3"`},
		{[]string{"indicators", "--input", filepath.Join(t.TempDir(), "none.csv"), "--indicator", "obv"}, "no such file"},
	} {
		errb.Reset()
		if code := Main(context.Background(), tt.args, strings.NewReader(""), &out, &errb); code == 0 || !strings.Contains(errb.String(), tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", tt.args, code, errb.String(), tt.want)
		}
	}
	errb.Reset()
	code = Main(context.Background(), []string{"indicators", "--indicator", "sma:2"}, strings.NewReader("time,open,high,low,close,volume\nx,1,1,1,1,1\n"), &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "line 2") {
		t.Errorf("bad row: exit %d, %s", code, errb.String())
	}
}
