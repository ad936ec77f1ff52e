package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/market"
)

// CandleStore is what a backfill needs of the market store (*cache.MarketStore).
type CandleStore interface {
	Keys() cache.Keyspace
	CandleRetention(iv market.Interval) time.Duration
	Write(ctx context.Context, b *cache.Batch) (cache.WriteStats, error)
	CandlesBetween(ctx context.Context, ex market.Exchange, sym market.Symbol, iv market.Interval, from, to time.Time, limit int) ([]market.Candle, error)
}

var _ CandleStore = (*cache.MarketStore)(nil)

// BackfillConfig configures a Backfiller. Every zero value means the documented default.
type BackfillConfig struct {
	// CheckpointTTL is how long an interrupted backfill can be resumed; 0 means 7 days.
	CheckpointTTL time.Duration
	// Overwrite replaces candles already stored (live ones too). false stores only the
	// open times that have no candle yet, so live candles win and a rerun stores nothing.
	Overwrite bool
	// Now is the clock deciding which candles are closed; nil means time.Now.
	Now func() time.Time
	// Log receives progress and warnings; nil discards them.
	Log *slog.Logger
}

// Job is one backfill: a market's candles of one interval opening in [From, To).
type Job struct {
	Venue    Venue
	Symbol   market.Symbol
	Interval market.Interval
	From, To time.Time
	// FromTrades builds the candles from the venue's trade history instead of its
	// candles: for ranges older than a venue keeps candles (Kraken: its last 720) and
	// intervals it cannot build from candles (1s outside Binance). Venues that page
	// trades by time only: Binance (aggTrades) and Kraken.
	FromTrades bool
	// Progress, if set, is called after every page (and once at the start) from the
	// goroutine running Run.
	Progress func(Progress)
}

// Progress reports a running backfill: Done of Total buckets of the interval are
// covered (fetched, or found stored), Stored of them written.
type Progress struct {
	Done, Total int64
	Stored      int
	// ETA is the expected time left at the rate of this run so far; 0 until known.
	ETA time.Duration
}

// Result says what a backfill did.
type Result struct {
	// Fetched candles came from the venue (after rollup); Stored of them were written;
	// Present were skipped because a candle was already stored at their open time.
	Fetched, Stored, Present int
	// Resumed is true when the run continued an interrupted one from its checkpoint.
	Resumed bool
	// Source is the interval actually fetched: Interval itself, or a smaller one rolled
	// up; 0 when built from trades.
	Source market.Interval
}

// Backfiller fetches candles from venues and stores them like live candles.
type Backfiller struct {
	store CandleStore
	rdb   redis.UniversalClient
	m     *Metrics
	cfg   BackfillConfig
}

// NewBackfiller returns a Backfiller writing through store, keeping checkpoints in rdb.
func NewBackfiller(store CandleStore, rdb redis.UniversalClient, m *Metrics, cfg BackfillConfig) *Backfiller {
	if cfg.CheckpointTTL <= 0 {
		cfg.CheckpointTTL = 7 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Backfiller{store: store, rdb: rdb, m: m, cfg: cfg}
}

// SourceInterval returns the interval fetched to build iv on v: iv itself when native,
// else the longest native interval that divides it. Errors wrap ErrUnsupported.
func SourceInterval(v Venue, iv market.Interval) (market.Interval, error) {
	if err := iv.Validate(); err != nil {
		return 0, err
	}
	if v.Native(iv) {
		return iv, nil
	}
	for i := len(market.Intervals) - 1; i >= 0; i-- {
		s := market.Intervals[i]
		if s < iv && iv.Duration()%s.Duration() == 0 && v.Native(s) {
			return s, nil
		}
	}
	return 0, fmt.Errorf("%w: %s offers no interval that builds %s", ErrUnsupported, v.Name(), iv)
}

type checkpoint struct {
	Venue  string `json:"venue"`
	From   int64  `json:"from"`
	To     int64  `json:"to"`
	Next   int64  `json:"next"`
	Source string `json:"source"`
}

// Run backfills job. The range is cut to whole buckets of the interval and to the
// store's candle retention (older candles would be trimmed at once). Candles whose
// close time is after the clock's now are still forming and not stored; zero-volume
// candles are not stored (live ingest skips quiet intervals too). After each page the
// position is checkpointed in Redis, so a Run of the same job (venue, market,
// interval, range) after a crash or cancel continues where it stopped, and so does a
// job whose range starts within the part already done (a relative range such as the
// last 30 days, run again a little later); the checkpoint is deleted when the job
// completes. Errors wrap the venue's or the store's; on ctx cancel the checkpoint
// stays and ctx's error is returned.
func (b *Backfiller) Run(ctx context.Context, job Job) (Result, error) {
	var res Result
	v, iv := job.Venue, job.Interval
	src, err := SourceInterval(v, iv)
	if job.FromTrades {
		src, err = 0, iv.Validate()
	}
	if err != nil {
		return res, err
	}
	res.Source = src
	if err := job.Symbol.Validate(); err != nil {
		return res, err
	}
	from, to := iv.Align(job.From), iv.Align(job.To)
	// Older candles would be trimmed by the next write: the store keeps a retention window.
	if oldest := iv.Align(b.cfg.Now().Add(-b.store.CandleRetention(iv))).Add(iv.Duration()); from.Before(oldest) {
		b.cfg.Log.Warn("history: backfill starts within the candle retention", "interval", iv, "asked", market.FormatTime(from), "from", market.FormatTime(oldest))
		from = oldest
	}
	if !to.After(from) {
		return res, fmt.Errorf("history: backfill %s %s: empty range %s..%s (whole %s buckets)", job.Symbol, iv, market.FormatTime(job.From), market.FormatTime(job.To), iv)
	}
	ex := v.Exchange()
	key := checkpointKey(b.store.Keys(), ex, job.Symbol, iv)
	srcName := src.String()
	if job.FromTrades {
		srcName = "trades"
	}
	cp := checkpoint{Venue: v.Name(), From: from.UnixMilli(), To: to.UnixMilli(), Next: from.UnixMilli(), Source: srcName}
	cursor := from
	if raw, err := b.rdb.Get(ctx, key).Bytes(); err == nil {
		var old checkpoint
		// The same job, or one whose range starts inside the part already done (a rerun
		// of "the last 30 days" a little later): continue after that part.
		if json.Unmarshal(raw, &old) == nil && old.Venue == cp.Venue && old.Source == cp.Source &&
			old.From <= cp.From && old.Next > cp.From && old.Next <= cp.To {
			cursor = time.UnixMilli(old.Next).UTC()
			res.Resumed = true
			b.cfg.Log.Info("history: resuming backfill", "venue", v.Name(), "symbol", job.Symbol, "interval", iv, "at", market.FormatTime(cursor))
		}
	} else if !errors.Is(err, redis.Nil) {
		return res, fmt.Errorf("history: read backfill checkpoint %s: %w", key, err)
	}

	step := iv.Duration()
	total := int64(to.Sub(from) / step)
	// A window holds whole buckets of iv and at most one page of source candles.
	perWindow := int64(v.PageSize()) * int64(src.Duration()) / int64(step)
	if job.FromTrades { // an hour of trades a window, or one bucket when longer
		perWindow = int64(time.Hour / step)
	}
	if perWindow < 1 {
		perWindow = 1
	}
	startDone, started := int64(cursor.Sub(from)/step), time.Now()
	report := func() {
		if job.Progress == nil {
			return
		}
		done := int64(cursor.Sub(from) / step)
		p := Progress{Done: done, Total: total, Stored: res.Stored}
		if ran := done - startDone; ran > 0 {
			p.ETA = time.Duration(float64(time.Since(started)) / float64(ran) * float64(total-done))
		}
		job.Progress(p)
	}
	report()
	stored := b.m.candlesStored.WithLabelValues(string(ex), iv.String())
	for cursor.Before(to) {
		end := cursor.Add(time.Duration(perWindow) * step)
		if end.After(to) {
			end = to
		}
		var parts, cs []market.Candle
		if job.FromTrades {
			ts, err := v.Trades(ctx, job.Symbol, Gap{Exchange: ex, Symbol: job.Symbol, From: cursor, To: end})
			if err != nil {
				return res, fmt.Errorf("history: backfill %s %s %s from trades at %s: %w", v.Name(), job.Symbol, iv, market.FormatTime(cursor), err)
			}
			SortTrades(ts)
			cs = CandlesFromTrades(ts, iv, cursor, end, SourceREST)
		} else if parts, err = b.fetchWindow(ctx, v, job.Symbol, src, cursor, end); err != nil {
			return res, err
		} else {
			cs = parts
		}
		if !job.FromTrades && src != iv {
			for i := range parts {
				parts[i].Closed = true
			}
			if cs, err = Rollup(parts, iv); err != nil {
				return res, err
			}
		}
		now := b.cfg.Now()
		keep := cs[:0]
		for _, c := range cs {
			if c.Volume.Sign() > 0 && !c.CloseTime().After(now) {
				c.Closed, c.Source, c.Interval = true, SourceREST, iv
				keep = append(keep, c)
			}
		}
		res.Fetched += len(keep)
		n, present, err := b.store1(ctx, ex, job.Symbol, iv, cursor, end, keep)
		if err != nil {
			return res, err
		}
		res.Stored += n
		res.Present += present
		stored.Add(float64(n))
		cursor = end
		cp.Next = cursor.UnixMilli()
		raw, _ := json.Marshal(cp)
		if err := b.rdb.Set(ctx, key, raw, b.cfg.CheckpointTTL).Err(); err != nil {
			return res, fmt.Errorf("history: save backfill checkpoint %s: %w", key, err)
		}
		report()
	}
	if err := b.rdb.Del(ctx, key).Err(); err != nil {
		return res, fmt.Errorf("history: delete finished backfill checkpoint %s: %w", key, err)
	}
	return res, nil
}

// fetchWindow pages the venue until [from, to) of src is covered.
func (b *Backfiller) fetchWindow(ctx context.Context, v Venue, sym market.Symbol, src market.Interval, from, to time.Time) ([]market.Candle, error) {
	var out []market.Candle
	for cur := from; cur.Before(to); {
		cs, next, err := v.Candles(ctx, sym, src, cur, to)
		if err != nil {
			return nil, fmt.Errorf("history: backfill %s %s %s from %s: %w", v.Name(), sym, src, market.FormatTime(cur), err)
		}
		for _, c := range cs {
			if len(out) == 0 || c.OpenTime.After(out[len(out)-1].OpenTime) {
				out = append(out, c)
			}
		}
		if !next.After(cur) {
			break
		}
		cur = next
	}
	return out, nil
}

// store1 writes cs (one window of [from, to)), skipping open times already stored
// unless Overwrite.
func (b *Backfiller) store1(ctx context.Context, ex market.Exchange, sym market.Symbol, iv market.Interval, from, to time.Time, cs []market.Candle) (stored, present int, err error) {
	if len(cs) == 0 {
		return 0, 0, nil
	}
	if !b.cfg.Overwrite {
		have, err := b.store.CandlesBetween(ctx, ex, sym, iv, from, to, int(to.Sub(from)/iv.Duration())+1)
		if err != nil {
			return 0, 0, fmt.Errorf("history: backfill: %w", err)
		}
		got := make(map[int64]bool, len(have))
		for _, c := range have {
			got[c.OpenTime.UnixMilli()] = true
		}
		keep := cs[:0]
		for _, c := range cs {
			if got[c.OpenTime.UnixMilli()] {
				present++
				continue
			}
			keep = append(keep, c)
		}
		cs = keep
	}
	if len(cs) == 0 {
		return 0, present, nil
	}
	st, err := b.store.Write(ctx, &cache.Batch{Candles: cs})
	if err != nil {
		return 0, present, fmt.Errorf("history: backfill: store %d %s candles of %s:%s: %w", len(cs), iv, ex, sym, err)
	}
	return st.Candles, present, nil
}
