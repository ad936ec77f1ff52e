package binance

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tickstash/tickstash/book"
	"github.com/tickstash/tickstash/ingest/wsfeed"
	"github.com/tickstash/tickstash/market"
)

func TestDepthDecode(t *testing.T) {
	dec := NewDepthDecoder(market.Binance, nil)
	recv := time.Unix(1633998512, 0).UTC()
	msg := `{"stream":"nknusdt@depth@100ms","data":{"e":"depthUpdate","E":1633998512568,"s":"NKNUSDT","U":499869753,"u":499869754,"b":[["0.35170000","4265.00000000"]],"a":[["0.35290000","10968.00000000"],["0.353","0"]]}}`
	for _, m := range []string{msg, `{"e":"depthUpdate","E":1633998512568,"s":"NKNUSDT","U":499869753,"u":499869754,"b":[["0.35170000","4265.00000000"]],"a":[["0.35290000","10968.00000000"],["0.353","0"]]}`} {
		recs, err := dec.Decode(nil, []byte(m), recv)
		if err != nil || len(recs) != 1 {
			t.Fatalf("%v %v", recs, err)
		}
		d := recs[0]
		if d.Kind != book.Update || d.Symbol != "NKN-USDT" || d.First != 499869753 || d.Last != 499869754 ||
			!d.Time.Equal(time.UnixMilli(1633998512568)) || len(d.Levels) != 3 ||
			d.Levels[0].Side != book.Bid || string(d.Levels[0].Price) != "0.35170000" ||
			d.Levels[2].Side != book.Ask || string(d.Levels[2].Qty) != "0" {
			t.Fatalf("%+v", d)
		}
	}
	// Other streams decode to nothing.
	for _, m := range []string{
		`{"stream":"nknusdt@bookTicker","data":{"u":499869757,"s":"NKNUSDT","b":"0.35200000","B":"1290.00000000","a":"0.35290000","A":"10968.00000000"}}`,
		`{"stream":"nknusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"NKNUSDT","a":1,"p":"1","q":"1","f":1,"l":1,"T":1,"m":true,"M":true}}`,
		`{"result":null,"id":1}`,
	} {
		if recs, err := dec.Decode(nil, []byte(m), recv); err != nil || len(recs) != 0 {
			t.Errorf("%s: %v %v", m, recs, err)
		}
	}
	for _, m := range []string{
		`{"e":"depthUpdate","E":1,"s":"NKNUSDT","U":5,"u":4,"b":[],"a":[]}`,
		`{"e":"depthUpdate","E":1,"s":"NKNUSDT","U":5,"u":6,"b":[["1"]],"a":[]}`,
		`{"e":"depthUpdate","E":1,"s":"","U":5,"u":6,"b":[],"a":[]}`,
		`{"e":"depthUpdate","E":"x","s":"NKNUSDT","U":5,"u":6,"b":[],"a":[]}`,
		`{"e":"depthUpdate","E":1,"s":"NKNUSDT","U":5,"u":6,"b":[["1","2"]`,
	} {
		if _, err := dec.Decode(nil, []byte(m), recv); !isDecodeError(err) {
			t.Errorf("no error for %s", m)
		}
	}
}

func TestDepthSnapshot(t *testing.T) {
	dec := NewDepthDecoder(market.Binance, nil)
	recv := time.Unix(1633998512, 0).UTC()
	url := "https://api.binance.com/api/v3/depth?symbol=BLZETH&limit=1000"
	if !IsDepthSnapshotURL(url) || IsDepthSnapshotURL("https://api.binance.com/api/v3/exchangeInfo") {
		t.Fatal("IsDepthSnapshotURL")
	}
	d, err := dec.DecodeSnapshot(url, []byte(`{"lastUpdateId":281916627,"bids":[["0.00006547","100.00000000"]],"asks":[["0.00006560","1528.0"],["0.00006561","4015"]]}`), recv)
	if err != nil || d.Kind != book.Snapshot || d.Symbol != "BLZ-ETH" || d.Last != 281916627 || len(d.Levels) != 3 || !d.Time.Equal(recv) {
		t.Fatalf("%+v %v", d, err)
	}
	for _, tc := range [][2]string{
		{"https://api.binance.com/api/v3/depth?limit=1000", `{"lastUpdateId":1,"bids":[],"asks":[]}`},
		{url, `{"lastUpdateId":"x","bids":[],"asks":[]}`},
		{url, `{"lastUpdateId":1,"bids":[["1"]],"asks":[]}`},
		{url, `{"lastUpdateId":1,"bids":[],"asks":[]} x`},
		{"%zz", `{}`},
	} {
		if _, err := dec.DecodeSnapshot(tc[0], []byte(tc[1]), recv); err == nil {
			t.Errorf("no error for %s %s", tc[0], tc[1])
		}
	}
}

func isDecodeError(err error) bool {
	var de *wsfeed.DecodeError
	return errors.As(err, &de)
}

func TestFetchSnapshot(t *testing.T) {
	var asked string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = r.URL.String()
		if r.URL.Query().Get("symbol") == "NOPE" {
			http.Error(w, "no", http.StatusBadRequest)
			return
		}
		w.Write([]byte(`{"lastUpdateId":42,"bids":[["1.5","2"]],"asks":[["1.6","3"]]}`))
	}))
	defer srv.Close()
	dec := NewDepthDecoder(market.Binance, nil)
	d, err := dec.FetchSnapshot(context.Background(), srv.Client(), srv.URL+"/", "BTCUSDT", 0)
	if err != nil || d.Kind != book.Snapshot || d.Symbol != "BTC-USDT" || d.Last != 42 || len(d.Levels) != 2 {
		t.Fatalf("%+v %v", d, err)
	}
	if asked != "/api/v3/depth?symbol=BTCUSDT&limit=1000" {
		t.Fatalf("asked %s", asked)
	}
	if _, err := dec.FetchSnapshot(context.Background(), srv.Client(), srv.URL, "NOPE", 5); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("bad status: %v", err)
	}
}
