package book_test

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tickstash/tickstash/book"
	"github.com/tickstash/tickstash/ingest/binance"
	"github.com/tickstash/tickstash/ingest/capture"
	"github.com/tickstash/tickstash/ingest/coinbase"
	"github.com/tickstash/tickstash/ingest/kraken"
	"github.com/tickstash/tickstash/market"
)

const captureDir = "../../shared/testdata/captures/"

// recorded is one market's snapshot and updates, copied out of the capture.
type recorded struct {
	snapshot []book.RawLevel
	updates  []book.RawLevel
}

func own(ls []book.RawLevel) []book.RawLevel {
	out := make([]book.RawLevel, len(ls))
	for i, l := range ls {
		out[i] = book.RawLevel{Side: l.Side, Price: append([]byte(nil), l.Price...), Qty: append([]byte(nil), l.Qty...)}
	}
	return out
}

// loadCaptures decodes the depth messages of the Binance, Coinbase and Kraken captures.
func loadCaptures(b *testing.B) map[string]*recorded {
	b.Helper()
	markets := map[string]*recorded{}
	for _, f := range []struct {
		file string
		dec  depthDecoder
	}{
		{"binance-spot-2021.jsonl", binance.NewDepthDecoder(market.Binance, nil)},
		{"coinbase-exchange-2021.jsonl", coinbase.NewExchangeDepthDecoder()},
		{"kraken-v1-2021.jsonl", kraken.NewDepthDecoder(0)},
	} {
		r, err := capture.Open(captureDir + f.file)
		if err != nil {
			b.Fatal(err)
		}
		r.SetHTTP(true)
		for {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			var recs []book.Depth
			switch rec.Type {
			case capture.TypeHTTP:
				if bd, ok := f.dec.(*binance.DepthDecoder); ok && binance.IsDepthSnapshotURL(rec.Addr) {
					d, err := bd.DecodeSnapshot(rec.Addr, rec.Data, rec.Time)
					if err != nil {
						b.Fatal(err)
					}
					recs = []book.Depth{d}
				}
			case capture.TypeRecv:
				if recs, err = f.dec.Decode(nil, rec.Data, rec.Time); err != nil {
					b.Fatal(err)
				}
			}
			for _, d := range recs {
				key := f.file + "/" + string(d.Symbol)
				m := markets[key]
				if m == nil {
					m = &recorded{}
					markets[key] = m
				}
				if d.Kind == book.Snapshot {
					m.snapshot = own(d.Levels)
				} else {
					m.updates = append(m.updates, own(d.Levels)...)
				}
			}
		}
		r.Close()
	}
	return markets
}

// BenchmarkApplyCaptures applies every recorded level update of the 24 markets of the
// Binance, Coinbase and Kraken captures to their books, over and over (steady state:
// the books have reached their working size). One op is one level update.
func BenchmarkApplyCaptures(b *testing.B) {
	markets := loadCaptures(b)
	for _, exchange := range []string{"all", "binance", "coinbase", "kraken"} {
		b.Run(exchange, func(b *testing.B) {
			type job struct {
				bk      *book.Book
				updates []book.RawLevel
			}
			var jobs []job
			total := 0
			for key, m := range markets {
				if exchange != "all" && !strings.HasPrefix(key, exchange) {
					continue
				}
				bk := book.New(market.Kraken, market.Symbol(key))
				for _, l := range m.snapshot {
					if err := bk.Set(l.Side, l.Price, l.Qty); err != nil {
						b.Fatal(err)
					}
				}
				jobs = append(jobs, job{bk, m.updates})
				total += len(m.updates)
			}
			// One warm-up pass grows every book to its working size.
			for _, j := range jobs {
				for _, l := range j.updates {
					if err := j.bk.Set(l.Side, l.Price, l.Qty); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportAllocs()
			cpu := startCPU(b)
			n := 0
			for n < b.N {
				for _, j := range jobs {
					for _, l := range j.updates {
						_ = j.bk.Set(l.Side, l.Price, l.Qty)
					}
				}
				n += total
			}
			cpu.stop(n)
			b.ReportMetric(float64(total), "updates/pass")
		})
	}
}

// synthetic is a book of levels a side with pre-written updates that keep its size:
// three in five change a level's quantity, one removes a level and one adds one.
func synthetic(levels, updates int) (*book.Book, []book.RawLevel) {
	rng := rand.New(rand.NewPCG(1, 2))
	bk := book.New(market.Binance, "BTC-USDT")
	price := func(s book.Side, tick int) []byte {
		// Bids from 50000.00 down, asks from 50000.01 up, cent ticks.
		c := 5_000_000 - tick
		if s == book.Ask {
			c = 5_000_001 + tick
		}
		return fmt.Appendf(nil, "%d.%02d", c/100, c%100)
	}
	qty := func() []byte { return fmt.Appendf(nil, "%d.%08d", rng.IntN(100), rng.IntN(1e8)) }
	live := [2][]int{}
	free := [2][]int{}
	for s := range 2 {
		for t := range 2 * levels {
			if t%2 == 0 {
				live[s] = append(live[s], t)
				_ = bk.Set(book.Side(s), price(book.Side(s), t), qty())
			} else {
				free[s] = append(free[s], t)
			}
		}
	}
	out := make([]book.RawLevel, 0, updates)
	for len(out) < updates {
		s := rng.IntN(2)
		side := book.Side(s)
		switch k := rng.IntN(5); {
		case k < 3:
			t := live[s][rng.IntN(len(live[s]))]
			out = append(out, book.RawLevel{Side: side, Price: price(side, t), Qty: qty()})
		default:
			i, j := rng.IntN(len(live[s])), rng.IntN(len(free[s]))
			gone, added := live[s][i], free[s][j]
			live[s][i], free[s][j] = added, gone
			out = append(out,
				book.RawLevel{Side: side, Price: price(side, gone), Qty: []byte("0")},
				book.RawLevel{Side: side, Price: price(side, added), Qty: qty()})
		}
	}
	return bk, out[:updates]
}

// BenchmarkApplySynthetic5000 applies updates spread uniformly over a book of 5 000
// levels a side. One op is one level update.
func BenchmarkApplySynthetic5000(b *testing.B) {
	bk, updates := synthetic(5000, 1<<16)
	for _, l := range updates { // warm-up: the working size
		_ = bk.Set(l.Side, l.Price, l.Qty)
	}
	b.ReportAllocs()
	cpu := startCPU(b)
	for i := 0; i < b.N; i++ {
		l := &updates[i%len(updates)]
		_ = bk.Set(l.Side, l.Price, l.Qty)
	}
	cpu.stop(b.N)
	if bk.Len(book.Bid) < 4000 || bk.Len(book.Ask) < 4000 {
		b.Fatalf("book shrank to %d/%d levels", bk.Len(book.Bid), bk.Len(book.Ask))
	}
}

// BenchmarkApplyParsed is BenchmarkApplyCaptures/all and BenchmarkApplySynthetic5000
// with the level text parsed beforehand: the book's structure alone, as the side-by-side
// reference (cryptofeed's C order book, which takes Python numbers) is timed.
func BenchmarkApplyParsed(b *testing.B) {
	parse := func(ls []book.RawLevel) []book.ParsedLevel {
		out := make([]book.ParsedLevel, len(ls))
		for i, l := range ls {
			var err error
			if out[i], err = book.ParseLevel(l.Side, l.Price, l.Qty); err != nil {
				b.Fatal(err)
			}
		}
		return out
	}
	b.Run("captures", func(b *testing.B) {
		type job struct {
			bk      *book.Book
			updates []book.ParsedLevel
		}
		var jobs []job
		total := 0
		for key, m := range loadCaptures(b) {
			bk := book.New(market.Kraken, market.Symbol(key))
			for _, l := range parse(m.snapshot) {
				if err := bk.SetParsed(&l); err != nil {
					b.Fatal(err)
				}
			}
			jobs = append(jobs, job{bk, parse(m.updates)})
			total += len(m.updates)
		}
		for _, j := range jobs { // warm-up: the working size
			for i := range j.updates {
				_ = j.bk.SetParsed(&j.updates[i])
			}
		}
		b.ReportAllocs()
		cpu := startCPU(b)
		n := 0
		for n < b.N {
			for _, j := range jobs {
				for i := range j.updates {
					_ = j.bk.SetParsed(&j.updates[i])
				}
			}
			n += total
		}
		cpu.stop(n)
	})
	b.Run("synthetic5000", func(b *testing.B) {
		bk, raw := synthetic(5000, 1<<16)
		updates := parse(raw)
		for i := range updates {
			_ = bk.SetParsed(&updates[i])
		}
		b.ReportAllocs()
		cpu := startCPU(b)
		for i := 0; i < b.N; i++ {
			_ = bk.SetParsed(&updates[i%len(updates)])
		}
		cpu.stop(b.N)
		if bk.Len(book.Bid) < 4000 || bk.Len(book.Ask) < 4000 {
			b.Fatalf("book shrank to %d/%d levels", bk.Len(book.Bid), bk.Len(book.Ask))
		}
	})
}

// BenchmarkKrakenChecksum is the per-update verification cost on a 1 000-level book.
func BenchmarkKrakenChecksum(b *testing.B) {
	bk, _ := synthetic(1000, 0)
	b.ReportAllocs()
	cpu := startCPU(b)
	var sum uint32
	for i := 0; i < b.N; i++ {
		sum += bk.KrakenChecksum()
	}
	cpu.stop(b.N)
	_ = sum
}

// BenchmarkBookMemory reports the heap held by a book of 1 000 and 5 000 levels a side.
func BenchmarkBookMemory(b *testing.B) {
	for _, levels := range []int{1000, 5000} {
		b.Run(fmt.Sprint(levels), func(b *testing.B) {
			var held float64
			for range b.N {
				var m0, m1 runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&m0)
				bk, _ := synthetic(levels, 0)
				runtime.GC()
				runtime.ReadMemStats(&m1)
				held = float64(m1.HeapAlloc - m0.HeapAlloc)
				runtime.KeepAlive(bk)
			}
			b.ReportMetric(held, "heap-bytes/book")
			b.ReportMetric(held/float64(2*levels), "bytes/level")
		})
	}
}

// cpuClock measures the CPU time of the benchmark's thread: the machine is shared, and
// wall time per op counts the time other processes held the core. "cpu-ns/op" and
// "ops/cpu-s" are what one core does.
type cpuClock struct {
	b  *testing.B
	t0 time.Duration
}

func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU(b *testing.B) *cpuClock {
	runtime.LockOSThread()
	b.ResetTimer()
	return &cpuClock{b: b, t0: threadCPU()}
}

func (c *cpuClock) stop(ops int) {
	used := threadCPU() - c.t0
	c.b.StopTimer()
	runtime.UnlockOSThread()
	if used > 0 {
		c.b.ReportMetric(float64(used.Nanoseconds())/float64(ops), "cpu-ns/op")
		c.b.ReportMetric(float64(ops)/used.Seconds(), "ops/cpu-s")
	}
}

// BenchmarkDecodeAndSync runs whole recorded depth messages through the exchange's
// depth decoder and a Syncer — sequence rules, truncation, Kraken's checksum after
// every update, the crossing check — pass after pass (each pass starts with the
// captures' snapshots, so every pass verifies). One op is one message.
func BenchmarkDecodeAndSync(b *testing.B) {
	for _, f := range []struct {
		name, file string
		rules      book.Rules
		ex         market.Exchange
		dec        func() depthDecoder
	}{
		{"binance", "binance-spot-2021.jsonl", book.RulesBinance, market.Binance, func() depthDecoder { return binance.NewDepthDecoder(market.Binance, nil) }},
		{"coinbase", "coinbase-exchange-2021.jsonl", book.RulesCoinbase, market.Coinbase, func() depthDecoder { return coinbase.NewExchangeDepthDecoder() }},
		{"kraken", "kraken-v1-2021.jsonl", book.RulesKraken, market.Kraken, func() depthDecoder { return kraken.NewDepthDecoder(0) }},
	} {
		b.Run(f.name, func(b *testing.B) {
			type msg struct {
				http       bool
				url        string
				data       []byte
				recordTime time.Time
			}
			var msgs []msg
			r, err := capture.Open(captureDir + f.file)
			if err != nil {
				b.Fatal(err)
			}
			r.SetHTTP(true)
			for {
				rec, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				isSnap := rec.Type == capture.TypeHTTP && binance.IsDepthSnapshotURL(rec.Addr)
				if rec.Type == capture.TypeRecv || isSnap {
					msgs = append(msgs, msg{isSnap, rec.Addr, append([]byte(nil), rec.Data...), rec.Time})
				}
			}
			r.Close()
			dec := f.dec()
			s := book.NewSyncer(f.ex, f.rules, book.SyncConfig{})
			var recs []book.Depth
			pass := func() {
				for i := range msgs {
					m := &msgs[i]
					if m.http {
						d, err := dec.(*binance.DepthDecoder).DecodeSnapshot(m.url, m.data, m.recordTime)
						if err != nil {
							b.Fatal(err)
						}
						recs = append(recs[:0], d)
					} else if recs, err = dec.Decode(recs[:0], m.data, m.recordTime); err != nil {
						b.Fatal(err)
					}
					s.Apply(recs)
				}
			}
			pass()
			b.ReportAllocs()
			cpu := startCPU(b)
			n := 0
			for n < b.N {
				pass()
				n += len(msgs)
			}
			cpu.stop(n)
			st := s.Stats()
			if st.Stale != 0 {
				b.Fatalf("a book went stale: %+v", st)
			}
			b.ReportMetric(float64(st.Levels)/float64(st.Messages), "levels/msg")
		})
	}
}
