package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/peterbourgon/ff/v4"
	"golang.org/x/term"

	"github.com/tickstash/tickstash/book/bookreplay"
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
		rc := replay.Config{Files: files, Speed: speed}
		if bar != nil {
			rc.Progress = bar.update
		}
		src := replay.New(rc, p.log, p.reg)
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
		if w := plan.bookWriter; w != nil {
			// The books go through the decoders and syncers of `tickstash books`, and
			// into Redis through the writer live ingest uses.
			sum, err := bookreplay.Run(ctx, files, bookreplay.Config{Offer: w.Offer})
			if err != nil && !errors.Is(err, bookreplay.ErrNotLive) {
				return err
			}
			if err := w.Flush(ctx); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "replay: %d order books into Redis (%d not live), %d verification failures, %d resyncs\n",
				sum.Books, sum.NotLive, sum.Sync.Stale, sum.Sync.Resynced)
		}
		return ctx.Err()
	})
}

// progressBar draws replay progress as a bar redrawn in place. It draws only on a
// terminal: elsewhere (a log file, a pipe, /dev/null) newProgressBar returns nil, whose
// methods do nothing, so logs and captured output carry no progress at all.
type progressBar struct {
	mu    sync.Mutex
	w     io.Writer
	what  string
	start time.Time
	drawn bool
}

// newProgressBar returns a bar drawing on w when w is a terminal, nil otherwise. The
// test is a real isatty (a terminal ioctl): a file mode's ModeCharDevice is no test,
// since /dev/null is a character device too.
func newProgressBar(w io.Writer, what string) *progressBar {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return &progressBar{w: w, what: what, start: time.Now()}
}

// update is a replay.Config.Progress callback; on a nil bar it does nothing.
func (b *progressBar) update(read, total int64) {
	if b == nil || total <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	frac := float64(read) / float64(total)
	rate := float64(read) / 1e6 / max(time.Since(b.start).Seconds(), 1e-9)
	const width = 30
	n := min(max(int(frac*width), 0), width)
	fmt.Fprintf(b.w, "\r%s [%s%s] %3.0f%%  %.1f/%.1f MB  %.1f MB/s", b.what,
		strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100, float64(read)/1e6, float64(total)/1e6, rate)
	b.drawn = true
}

// count draws progress in units of work (candles) with an estimated time left; on a nil
// bar it does nothing.
func (b *progressBar) count(label string, done, total int64, unit string, eta time.Duration) {
	if b == nil || total <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	frac := min(max(float64(done)/float64(total), 0), 1)
	const width = 30
	n := int(frac * width)
	left := "ETA --"
	if eta > 0 {
		left = "ETA " + eta.Round(time.Second).String()
	}
	// The trailing spaces wipe what a longer previous line left.
	fmt.Fprintf(b.w, "\r%s %s [%s%s] %3.0f%%  %d/%d %s  %s    ", b.what, label,
		strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100, done, total, unit, left)
	b.drawn = true
}

// done ends the bar's line; on a nil bar it does nothing.
func (b *progressBar) done() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}
