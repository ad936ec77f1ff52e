package pipeline

import (
	"github.com/tickstash/tickstash/internal/testenv"

	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/market"
)

var t0 = time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)

func update() AnalysisUpdate {
	return AnalysisUpdate{Exchange: market.Binance, Symbol: "BTC-USDT", Interval: market.Interval1m, Analyzer: "default",
		CandleTime: t0, Close: decimal.RequireFromString("95000.5"), Values: map[string]float64{"rsi_14": 31.5},
		Candles: 3, JobID: "abc", ComputedAt: t0.Add(time.Minute)}
}

func TestSubjects(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{CandleClosedSubject(market.Binance, "BTC-USDT", market.Interval1m), "ts.candles.binance.BTC-USDT.1m"},
		{AnalysisStream{}.Subject(market.Kraken, "ETH-USD", market.Interval5m), "ts.analysis.kraken.ETH-USD.5m"},
		{AnalysisStream{SubjectPrefix: "x.an"}.Subject(market.Kraken, "ETH-USD", market.Interval1h), "x.an.kraken.ETH-USD.1h"},
		{AnalysisStream{}.Subjects(), "ts.analysis.>"},
		{AnalysisStream{}.Stream(), "TS_ANALYSIS"},
		{SignalSubject("", "rsi", market.Binance, "BTC-USDT"), "ts.signals.rsi.binance.BTC-USDT"},
		{SignalSubject("p.sig", "rsi", market.Binance, "BTC-USDT"), "p.sig.rsi.binance.BTC-USDT"},
		{BookSubject(market.Coinbase, "BTC-USD"), "ts.book.coinbase.BTC-USD"},
	} {
		if c.got != c.want {
			t.Errorf("subject %q, want %q", c.got, c.want)
		}
	}
}

func TestAnalysisUpdateRoundTripAndMsgID(t *testing.T) {
	u := update()
	data, err := EncodeAnalysisUpdate(&u)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeAnalysisUpdate(data)
	if err != nil {
		t.Fatal(err)
	}
	if back.MsgID() != "default:binance:BTC-USDT:1m:"+"1767225660000" || back.MsgID() != u.MsgID() {
		t.Errorf("MsgID %q (sent %q)", back.MsgID(), u.MsgID())
	}
	if !back.Close.Equal(u.Close) || back.Values["rsi_14"] != 31.5 || back.JobID != "abc" || !back.CandleTime.Equal(t0) {
		t.Errorf("round trip: %+v", back)
	}
	// Another run of the same job (other job id, other computing time) has the same id.
	u2 := u
	u2.JobID, u2.ComputedAt, u2.Candles = "other", t0.Add(time.Hour), 0
	if u2.MsgID() != u.MsgID() {
		t.Errorf("a rerun has id %q, want %q", u2.MsgID(), u.MsgID())
	}
	u2.CandleTime = t0.Add(time.Minute)
	if u2.MsgID() == u.MsgID() {
		t.Error("the next candle has the same id")
	}
}

func TestDecodeAnalysisUpdateRejects(t *testing.T) {
	for name, body := range map[string]string{
		"not json":       `{`,
		"bad exchange":   `{"exchange":"Bin ance","symbol":"BTC-USDT","interval":"1m","candle_time":"2026-01-01T00:01:00Z"}`,
		"bad symbol":     `{"exchange":"binance","symbol":"btc usdt","interval":"1m","candle_time":"2026-01-01T00:01:00Z"}`,
		"bad interval":   `{"exchange":"binance","symbol":"BTC-USDT","interval":"7m","candle_time":"2026-01-01T00:01:00Z"}`,
		"no candle time": `{"exchange":"binance","symbol":"BTC-USDT","interval":"1m"}`,
		"unaligned":      `{"exchange":"binance","symbol":"BTC-USDT","interval":"1m","candle_time":"2026-01-01T00:01:30Z"}`,
		"negative close": `{"exchange":"binance","symbol":"BTC-USDT","interval":"1m","candle_time":"2026-01-01T00:01:00Z","close":"-1"}`,
	} {
		if _, err := DecodeAnalysisUpdate([]byte(body)); !errors.Is(err, ErrBadMessage) {
			t.Errorf("%s: err %v, want ErrBadMessage", name, err)
		}
	}
	u, err := DecodeAnalysisUpdate([]byte(`{"exchange":"binance","symbol":"BTC-USDT","interval":"1m","candle_time":"2026-01-01T01:01:00+01:00"}`))
	if err != nil || u.CandleTime.Location() != time.UTC || !u.Close.IsZero() {
		t.Errorf("update without close, time in +01:00: %+v, %v", u, err)
	}
}

func TestCandleClosedRoundTrip(t *testing.T) {
	p := decimal.NewFromInt(100)
	c := market.Candle{Exchange: market.Binance, Symbol: "BTC-USDT", Interval: market.Interval1m, OpenTime: t0,
		Open: p, High: p, Low: p, Close: p, Volume: decimal.NewFromInt(2), QuoteVolume: decimal.NewFromInt(200), Trades: 1, Closed: true}
	data, err := EncodeCandleClosed(&c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeCandleClosed(data)
	if err != nil || !back.OpenTime.Equal(t0) || !back.Close.Equal(p) {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	c.Closed = false
	data, _ = EncodeCandleClosed(&c)
	if _, err := DecodeCandleClosed(data); !errors.Is(err, ErrBadMessage) {
		t.Errorf("an open candle: %v, want ErrBadMessage", err)
	}
}

// TestAnalysisPublisherDeduplicates publishes an update twice on the real NATS: the
// stream keeps one, and the second publish reports a duplicate. A core NATS subscriber
// of the subject receives both (live readers are not cut off by the stream).
func TestAnalysisPublisherDeduplicates(t *testing.T) {
	nc, err := nats.Connect(testenv.NATSURL())
	if err != nil {
		t.Fatalf("NATS: %v", err)
	}
	defer nc.Close()
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	s := AnalysisStream{Name: "TT_PIPE_" + id, SubjectPrefix: "ttpipe." + id, Memory: true, MaxAge: time.Hour}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, _ := jetstream.New(nc)
	defer func() { _ = js.DeleteStream(context.Background(), s.Name) }()
	pub, err := NewAnalysisPublisher(ctx, nc, s)
	if err != nil {
		t.Fatal(err)
	}
	live, err := nc.SubscribeSync(s.Subjects())
	if err != nil {
		t.Fatal(err)
	}
	u := update()
	for i, wantDup := range []bool{false, true} {
		dup, err := pub.PublishUpdate(ctx, &u)
		if err != nil || dup != wantDup {
			t.Fatalf("publish %d: duplicate %v, %v; want %v", i+1, dup, err, wantDup)
		}
	}
	st, _ := js.Stream(ctx, s.Name)
	info, err := st.Info(ctx)
	if err != nil || info.State.Msgs != 1 {
		t.Fatalf("stream holds %d updates (%v), want 1", info.State.Msgs, err)
	}
	if info.Config.Retention != jetstream.LimitsPolicy || info.Config.MaxBytes != 256<<20 || info.Config.MaxAge != time.Hour {
		t.Errorf("stream config %+v: want limits retention, 256 MiB, 1h", info.Config)
	}
	for range 2 {
		m, err := live.NextMsg(5 * time.Second)
		if err != nil || !strings.Contains(string(m.Data), `"job_id":"abc"`) {
			t.Fatalf("live reader: %v", err)
		}
	}
	// A second publisher (another analysis process) shares the stream as it is.
	if _, err := NewAnalysisPublisher(ctx, nc, s); err != nil {
		t.Errorf("second publisher: %v", err)
	}
	// The stream deleted under the publisher is made again by the next publish (which
	// first waits out one attempt: the live reader keeps the request from failing fast).
	if err := js.DeleteStream(ctx, s.Name); err != nil {
		t.Fatal(err)
	}
	u.CandleTime = u.CandleTime.Add(time.Minute)
	if dup, err := pub.PublishUpdate(ctx, &u); err != nil || dup {
		t.Fatalf("publish after the stream was deleted: duplicate %v, %v", dup, err)
	}
	st, _ = js.Stream(ctx, s.Name)
	if info, err := st.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Errorf("the stream made again holds %v (%v), want 1 update", info, err)
	}
}

func FuzzDecodeAnalysisUpdate(f *testing.F) {
	u := update()
	data, _ := EncodeAnalysisUpdate(&u)
	f.Add(data)
	f.Add([]byte(`{"exchange":"binance","symbol":"BTC-USDT","interval":"1m","candle_time":"2026-01-01T00:01:00Z","close":"1e400"}`))
	f.Add([]byte(`{"values":{"x":1e308}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := DecodeAnalysisUpdate(data)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v does not wrap ErrBadMessage", err)
			}
			return
		}
		if err := u.Validate(); err != nil {
			t.Fatalf("decoded update does not validate: %v", err)
		}
		again, err := EncodeAnalysisUpdate(&u)
		if err != nil {
			return // e.g. a NaN can't come from JSON, but a huge value may fail to encode
		}
		if _, err := DecodeAnalysisUpdate(again); err != nil {
			t.Fatalf("re-encoded update %s does not decode: %v", again, err)
		}
	})
}

func FuzzDecodeCandleClosed(f *testing.F) {
	p := decimal.NewFromInt(100)
	c := market.Candle{Exchange: market.Binance, Symbol: "BTC-USDT", Interval: market.Interval1m, OpenTime: t0,
		Open: p, High: p, Low: p, Close: p, Volume: decimal.NewFromInt(2), QuoteVolume: decimal.NewFromInt(200), Trades: 1, Closed: true}
	data, _ := EncodeCandleClosed(&c)
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeCandleClosed(data)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v does not wrap ErrBadMessage", err)
			}
			return
		}
		if err := c.Validate(); err != nil || !c.Closed {
			t.Fatalf("decoded candle invalid: %v", err)
		}
	})
}

func TestBookSnapshotRoundTripAndRefusals(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	s := BookSnapshot{Exchange: market.Binance, Symbol: "BTC-USDT", Time: at, Sequence: 7, State: BookLive, Depth: 2,
		Bids: [][2]string{{"1.5", "2"}}, Asks: [][2]string{{"1.6", "3"}}, Written: at}
	data, err := EncodeBookSnapshot(&s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeBookSnapshot(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Sequence != 7 || got.Bids[0] != s.Bids[0] || got.Asks[0] != s.Asks[0] || !got.Written.Equal(at) {
		t.Errorf("round trip: %+v, want %+v", got, s)
	}
	for name, bad := range map[string]string{
		"not json":          `{`,
		"stale with levels": `{"exchange":"binance","symbol":"BTC-USDT","state":"stale","bids":[["1","1"]],"written":"2024-05-01T12:00:00Z"}`,
		"unknown state":     `{"exchange":"binance","symbol":"BTC-USDT","state":"fine","written":"2024-05-01T12:00:00Z"}`,
		"no written time":   `{"exchange":"binance","symbol":"BTC-USDT","state":"live"}`,
		"bad exchange":      `{"exchange":"Bin ance","symbol":"BTC-USDT","state":"live","written":"2024-05-01T12:00:00Z"}`,
	} {
		if _, err := DecodeBookSnapshot([]byte(bad)); !errors.Is(err, ErrBadMessage) {
			t.Errorf("%s: %v, want ErrBadMessage", name, err)
		}
	}
}
