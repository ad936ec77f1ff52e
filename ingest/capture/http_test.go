package capture

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestHTTPRecords(t *testing.T) {
	const capture = `{"t":"header","format":2,"exchange":"BINANCE"}
{"t":"http","conn":"BINANCE.http.0","ts":1633998512.320639,"url":"https://api.binance.com/api/v3/depth?symbol=NKNUSDT&limit=1000","data":"{\"lastUpdateId\":1}"}
{"t":"recv","conn":"BINANCE.ws.1","ts":1633998512.5,"data":"x"}
`
	for _, on := range []bool{false, true} {
		r, err := NewReader(strings.NewReader(capture))
		if err != nil {
			t.Fatal(err)
		}
		r.SetHTTP(on)
		var types []string
		for {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			types = append(types, rec.Type)
			if rec.Type == TypeHTTP && (rec.Addr != "https://api.binance.com/api/v3/depth?symbol=NKNUSDT&limit=1000" ||
				string(rec.Data) != `{"lastUpdateId":1}` || rec.Conn != "BINANCE.http.0" || rec.Time.Unix() != 1633998512) {
				t.Fatalf("http record %+v", rec)
			}
		}
		want := "recv"
		if on {
			want = "http recv"
		}
		if got := strings.Join(types, " "); got != want {
			t.Fatalf("SetHTTP(%v): %s, want %s", on, got, want)
		}
	}
}
