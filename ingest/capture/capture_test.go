package capture

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tickstash/tickstash/market"
)

// captureDir finds the shared recorded traffic from this source file's location, so
// the tests work from any working directory.
func captureDir(tb testing.TB) string {
	tb.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "testdata", "captures")
	if _, err := os.Stat(dir); err != nil {
		tb.Skipf("recorded captures not found: %v", err)
	}
	return dir
}

func TestReadSharedCaptures(t *testing.T) {
	tests := []struct {
		file     string
		exchange market.Exchange
		recv     int
		connects int
		sends    int
	}{
		{"binance-spot-2021.jsonl", market.Binance, 265, 1, 0},
		{"binance-us-2021.jsonl", market.BinanceUS, 480, 1, 0},
		{"coinbase-exchange-2021.jsonl", market.Coinbase, 9946, 1, 3},
		{"kraken-v1-2021.jsonl", market.Kraken, 4430, 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r, err := Open(filepath.Join(captureDir(t), tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := ExchangeOf(r.Header().Exchange); got != tt.exchange {
				t.Errorf("exchange = %q, want %q", got, tt.exchange)
			}
			counts := map[string]int{}
			for {
				rec, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				counts[rec.Type]++
				if rec.Time.Before(time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)) {
					t.Fatalf("record time %v", rec.Time)
				}
			}
			want := map[string]int{TypeRecv: tt.recv, TypeConnect: tt.connects}
			if tt.sends > 0 {
				want[TypeSend] = tt.sends
			}
			if diff := cmp.Diff(want, counts); diff != "" {
				t.Errorf("record counts (-want +got):\n%s", diff)
			}
			st, _ := os.Stat(filepath.Join(captureDir(t), tt.file))
			if r.BytesRead() != st.Size() {
				t.Errorf("BytesRead = %d, file size %d", r.BytesRead(), st.Size())
			}
		})
	}
}

func TestReadSpotValues(t *testing.T) {
	r, err := Open(filepath.Join(captureDir(t), "binance-spot-2021.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if h := r.Header(); h.Format != 2 || h.Exchange != "BINANCE" || h.Recorded.Unix() != 1633998511 {
		t.Errorf("header = %+v", h)
	}
	rec, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if rec.Type != TypeConnect || rec.Conn != "BINANCE.ws.1" || rec.Time != time.Unix(1633998511, 159679000).UTC() ||
		rec.Addr[:39] != "wss://stream.binance.com:9443/stream?st" {
		t.Errorf("connect = %+v", rec)
	}
	rec, _ = r.Next()
	want := `{"stream":"nknusdt@depth@100ms","data":{"e":"depthUpdate","E":1633998512068,"s":"NKNUSDT","U":499869750,"u":499869752,"b":[["0.35130000","6195.00000000"],["0.34750000","5548.00000000"],["0.34640000","6222.00000000"]],"a":[]}}`
	if string(rec.Data) != want || rec.Time != time.Unix(1633998512, 63356900).UTC() {
		t.Errorf("first recv = %s at %v", rec.Data, rec.Time)
	}
}

func TestWriterRoundTripAndRotation(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	for _, compress := range []bool{false, true} {
		sub := filepath.Join(dir, map[bool]string{false: "plain", true: "zst"}[compress])
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		w, err := NewWriter(WriterConfig{Dir: sub, Exchange: market.BinanceUS, MaxBytes: 400, MaxAge: time.Minute, Compress: compress, Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		msgs := []string{
			`{"stream":"a","data":{"x":"quote \" and \\ and é"}}`,
			"control\x01\n\tchars",
			"bad utf8 \xff end",
		}
		if err := w.Connect("BINANCE_US.ws.1", "wss://x/stream?streams=a", now); err != nil {
			t.Fatal(err)
		}
		if err := w.Send("BINANCE_US.ws.1", "wss://x/stream?streams=a", []byte(`{"method":"SUBSCRIBE"}`), now); err != nil {
			t.Fatal(err)
		}
		var sent []string
		for i := 0; i < 12; i++ {
			now = now.Add(7 * time.Second) // rotates by size and, after a minute, by age
			m := msgs[i%len(msgs)]
			if err := w.Recv("BINANCE_US.ws.1", []byte(m), now); err != nil {
				t.Fatal(err)
			}
			sent = append(sent, m)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		files := w.Files()
		if len(files) < 3 {
			t.Fatalf("compress=%v: %d files, want rotation", compress, len(files))
		}
		var got []string
		for _, f := range files {
			r, err := Open(f)
			if err != nil {
				t.Fatal(err)
			}
			if ExchangeOf(r.Header().Exchange) != market.BinanceUS {
				t.Errorf("%s: header %+v", f, r.Header())
			}
			first, err := r.Next()
			if err != nil || first.Type != TypeConnect || first.Addr != "wss://x/stream?streams=a" {
				t.Errorf("%s: first record %+v, %v: want the open connection repeated", f, first, err)
			}
			for {
				rec, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if rec.Type == TypeRecv {
					got = append(got, string(rec.Data))
				}
			}
			r.Close()
		}
		for i := range sent {
			if sent[i] == "bad utf8 \xff end" {
				sent[i] = "bad utf8 \ufffd end"
			}
		}
		if diff := cmp.Diff(sent, got); diff != "" {
			t.Errorf("compress=%v: messages (-sent +read):\n%s", compress, diff)
		}
	}
}

func TestReaderErrors(t *testing.T) {
	for name, in := range map[string]string{
		"empty":     "",
		"no header": `{"t":"recv","conn":"a","ts":1,"data":"x"}` + "\n",
		"garbage":   "not json\n",
	} {
		if _, err := NewReader(stringsReader(in)); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", name, err)
		}
	}
	r, err := NewReader(stringsReader(`{"t":"header","format":2,"exchange":"KRAKEN"}` + "\n" +
		`{"t":"recv","conn":"a","ts":"x","data":"x"}` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); !errors.Is(err, ErrFormat) {
		t.Errorf("bad ts: err = %v", err)
	}
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }
