package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/peterbourgon/ff/v4"

	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/replay"
)

func cmdReplay(e env) *ff.Command {
	f := newFlags("replay", "replay [--speed X | --max-speed] [--dry-run] [flags] FILE...\n\n"+
		"Feeds capture files (recorded with `tickstash ingest --record DIR`, or the format of\n"+
		"../shared/testdata/captures; .zst compressed too) through the exchange decoders.\n"+
		"Without --dry-run the records are written into Redis like live ingest: trades, tickers,\n"+
		"and candles closed by the data's own time; a progress bar shows on a terminal.\n"+
		"With --dry-run the normalized records are printed as JSON lines on standard output:\n"+
		"trades in the shape `tickstash candles` reads, quotes, and exchange candles.", e)
	var sc serverConfig
	var ic ingestConfig
	var speed float64
	var maxSpeed, dryRun bool
	sc.register(f, false)
	ic.registerWrite(f)
	f.Float(&speed, "speed", 0, "replay at this multiple of the recorded pace (1 = real time); 0 = as fast as possible")
	f.Bool(&maxSpeed, "max-speed", false, "replay as fast as possible (the default)")
	f.Bool(&dryRun, "dry-run", false, "print normalized records as JSON lines instead of writing to Redis")
	return f.Command("", func(ctx context.Context, files []string) error {
		sc.adminAddr = ""
		if len(files) == 0 {
			return fmt.Errorf("%w: name at least one capture file", errUsage)
		}
		if maxSpeed && speed != 0 {
			return fmt.Errorf("%w: --speed and --max-speed exclude each other", errUsage)
		}
		if speed < 0 {
			return fmt.Errorf("%w: --speed must not be negative", errUsage)
		}
		for _, file := range files {
			if _, err := os.Stat(file); err != nil {
				return err
			}
		}
		p, err := newProcess(&sc, e)
		if err != nil {
			return err
		}
		defer p.close()
		bar := newProgressBar(e.stderr, "replay")
		src := replay.New(replay.Config{Files: files, Speed: speed, Progress: bar.update}, p.log, p.reg)
		if dryRun {
			out := bufio.NewWriter(e.stdout)
			err := replay.DryRun(ctx, src, out)
			if ferr := out.Flush(); err == nil {
				err = ferr
			}
			bar.done()
			return err
		}
		plan, err := ic.planWith(sc.prefix, []ingest.Source{src}, true)
		if err != nil {
			return err
		}
		if err := p.open(ctx, &sc, false, false, e); err != nil {
			return err
		}
		counting := &recordCounter{store: nil}
		ing, err := plan.ingesterCounting(p, counting)
		if err != nil {
			return err
		}
		err = ing.Run(ctx)
		bar.done()
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "replay: %d trades, %d quotes, %d candle writes into Redis (%d trades already there)\n",
			counting.trades.Load(), counting.quotes.Load(), counting.candles.Load(), counting.duplicates.Load())
		return ctx.Err()
	})
}

// progressBar draws replay progress: a bar redrawn in place on a terminal, a line per
// tenth elsewhere (logs stay readable).
type progressBar struct {
	mu       sync.Mutex
	w        io.Writer
	what     string
	terminal bool
	start    time.Time
	lastTick int64
	drawn    bool
}

func newProgressBar(w io.Writer, what string) *progressBar {
	b := &progressBar{w: w, what: what, start: time.Now(), lastTick: -1}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			b.terminal = true
		}
	}
	return b
}

func (b *progressBar) update(read, total int64) {
	if total <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	frac := float64(read) / float64(total)
	rate := float64(read) / 1e6 / max(time.Since(b.start).Seconds(), 1e-9)
	if b.terminal {
		const width = 30
		n := int(frac * width)
		fmt.Fprintf(b.w, "\r%s [%s%s] %3.0f%%  %.1f/%.1f MB  %.1f MB/s", b.what,
			strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100, float64(read)/1e6, float64(total)/1e6, rate)
		b.drawn = true
		return
	}
	if tick := int64(frac * 10); tick > b.lastTick {
		b.lastTick = tick
		fmt.Fprintf(b.w, "%s: %3.0f%% (%.1f of %.1f MB, %.1f MB/s)\n", b.what, frac*100, float64(read)/1e6, float64(total)/1e6, rate)
	}
}

func (b *progressBar) done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}
