package indicator

import (
	"math"
	"testing"

	talib "github.com/markcheno/go-talib"
)

// benchBars tiles the real SKL-USD book series, chaining the relative moves of each tile
// onto the previous close, into a 10,000-bar series.
func benchBars(b *testing.B) Bars {
	b.Helper()
	src := mustReadBars(b, "testdata/series/coinbase-skl-usd-book-10.csv")
	var out Bars
	factor := 1.0
	for out.Len() < 10000 {
		for i := range src.Len() {
			bar := src.At(i)
			bar.Time = src.Time[0].Add(bar.Time.Sub(src.Time[0])).AddDate(0, 0, out.Len()/src.Len())
			bar.Open, bar.High, bar.Low, bar.Close = bar.Open*factor, bar.High*factor, bar.Low*factor, bar.Close*factor
			out.Append(bar)
		}
		factor *= src.Close[src.Len()-1] / src.Close[0]
	}
	return out
}

var sink float64

func perCandle(b *testing.B, n int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/candle")
}

func BenchmarkIndicators(b *testing.B) {
	bars := benchBars(b)
	n := bars.Len()
	h, l, c, v := bars.High, bars.Low, bars.Close, bars.Volume
	type bench struct {
		name   string
		batch  func()
		stream func()
		talib  func() // nil when go-talib has no such indicator
	}
	benches := []bench{
		{"sma_20",
			func() { sink = SMA(c, 20)[n-1] },
			func() {
				s := NewSMAState(20)
				for _, x := range c {
					sink = s.Update(x)
				}
			},
			func() { sink = talib.Sma(c, 20)[n-1] }},
		{"ema_20",
			func() { sink = EMA(c, 20)[n-1] },
			func() {
				s := NewEMAState(20)
				for _, x := range c {
					sink = s.Update(x)
				}
			},
			func() { sink = talib.Ema(c, 20)[n-1] }},
		{"wma_20",
			func() { sink = WMA(c, 20)[n-1] },
			func() {
				s := NewWMAState(20)
				for _, x := range c {
					sink = s.Update(x)
				}
			},
			func() { sink = talib.Wma(c, 20)[n-1] }},
		{"rsi_14",
			func() { sink = RSI(c, 14)[n-1] },
			func() {
				s := NewRSIState(14)
				for _, x := range c {
					sink = s.Update(x)
				}
			},
			func() { sink = talib.Rsi(c, 14)[n-1] }},
		{"macd_12_26_9",
			func() { m, _, _ := MACD(c, 12, 26, 9); sink = m[n-1] },
			func() {
				s := NewMACDState(12, 26, 9)
				for _, x := range c {
					sink, _, _ = s.Update(x)
				}
			},
			func() { m, _, _ := talib.Macd(c, 12, 26, 9); sink = m[n-1] }},
		{"bbands_20_2",
			func() { u, _, _ := BBands(c, 20, 2, 2); sink = u[n-1] },
			func() {
				s := NewBBandsState(20, 2, 2)
				for _, x := range c {
					sink, _, _ = s.Update(x)
				}
			},
			func() { u, _, _ := talib.BBands(c, 20, 2, 2, talib.SMA); sink = u[n-1] }},
		{"atr_14",
			func() { sink = ATR(h, l, c, 14)[n-1] },
			func() {
				s := NewATRState(14)
				for i := range n {
					sink = s.Update(h[i], l[i], c[i])
				}
			},
			func() { sink = talib.Atr(h, l, c, 14)[n-1] }},
		{"stoch_14_3_3",
			func() { k, _ := Stoch(h, l, c, 14, 3, 3); sink = k[n-1] },
			func() {
				s := NewStochState(14, 3, 3)
				for i := range n {
					sink, _ = s.Update(h[i], l[i], c[i])
				}
			},
			func() { k, _ := talib.Stoch(h, l, c, 14, 3, talib.SMA, 3, talib.SMA); sink = k[n-1] }},
		{"obv",
			func() { sink = OBV(c, v)[n-1] },
			func() {
				var s OBVState
				for i := range n {
					sink = s.Update(c[i], v[i])
				}
			},
			func() { sink = talib.Obv(c, v)[n-1] }},
		{"adx_14",
			func() { sink = ADX(h, l, c, 14)[n-1] },
			func() {
				s := NewADXState(14)
				for i := range n {
					sink = s.Update(h[i], l[i], c[i])
				}
			},
			func() { sink = talib.Adx(h, l, c, 14)[n-1] }},
		{"vwap_20",
			func() { sink = VWAP(h, l, c, v, 20)[n-1] },
			func() {
				s := NewVWAPState(20)
				for i := range n {
					sink = s.Update(h[i], l[i], c[i], v[i])
				}
			},
			nil},
		{"vwap_session",
			func() { sink = SessionVWAP(bars.Time, h, l, c, v)[n-1] },
			func() {
				var s SessionVWAPState
				for i := range n {
					sink = s.Update(bars.Time[i], h[i], l[i], c[i], v[i])
				}
			},
			nil},
	}
	for _, bb := range benches {
		b.Run(bb.name+"/batch", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bb.batch()
			}
			perCandle(b, n)
		})
		b.Run(bb.name+"/stream", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bb.stream()
			}
			perCandle(b, n)
		})
		if bb.talib != nil {
			b.Run(bb.name+"/go-talib", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					bb.talib()
				}
				perCandle(b, n)
			})
		}
	}
	if math.IsInf(sink, 0) {
		b.Log(sink)
	}
}
