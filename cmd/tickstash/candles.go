package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/peterbourgon/ff/v4"

	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/market"
)

// maxLine bounds one input line, so a file without newlines cannot exhaust memory.
const maxLine = 1 << 20

func cmdCandles(e env) *ff.Command {
	f := newFlags("candles", "candles [flags] [FILE|-]\n\n"+
		"Reads normalized trade JSON lines, one per line, e.g.\n"+
		`  {"type":"trade","exchange":"coinbase","symbol":"BTC-USD","id":"1","price":"95000.01","qty":"0.01","side":"buy","time":"2026-01-01T00:00:01.123456Z"}`+"\n"+
		"from FILE or standard input (- or no FILE), and writes closed candles as JSON lines to\n"+
		"standard output, in open-time order per symbol and interval. Quote and candle records\n"+
		"(as `tickstash replay --dry-run` prints) are passed over. Malformed lines are reported\n"+
		"on standard error with their line number and skipped; the exit status is then 1.\n"+
		"Trades older than a candle already closed by a later trade are late: counted, dropped,\n"+
		"and reported on standard error; so are trades whose numeric id is not above the last\n"+
		"one of their market (repeats).", e)
	var intervals, empty string
	f.String(&intervals, "interval", "1m", "candle interval, or several separated by commas, from 1s 1m 3m 5m 15m 30m 1h 4h 1d")
	f.String(&empty, "empty", "skip", "quiet intervals: skip (no candle) or flat (a candle at the previous close with no volume)")
	return f.Command("", func(ctx context.Context, args []string) error {
		ivs, err := market.ParseIntervals(intervals)
		if err != nil {
			return fmt.Errorf("%w: --interval: %v", errUsage, err)
		}
		mode, err := ingest.ParseEmptyMode(empty)
		if err != nil {
			return fmt.Errorf("%w: --empty: %v", errUsage, err)
		}
		in := e.stdin
		name := "standard input"
		switch len(args) {
		case 0:
		case 1:
			if p := args[0]; p != "-" {
				file, err := os.Open(p)
				if err != nil {
					return err
				}
				defer file.Close()
				in, name = file, p
			}
		default:
			return fmt.Errorf("%w: one input file at most, got %d", errUsage, len(args))
		}
		out := bufio.NewWriter(e.stdout)
		st, err := aggregateLines(ctx, in, out, ivs, mode, e.stderr)
		if ferr := out.Flush(); err == nil {
			err = ferr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if st.repeats > 0 {
			fmt.Fprintf(e.stderr, "candles: %d repeated trade id(s) skipped (a trade id not above the last one of its market)\n", st.repeats)
		}
		if st.late > 0 {
			fmt.Fprintf(e.stderr, "candles: %d late trade(s) dropped (their candle had already closed: input not in time order?)\n", st.late)
		}
		if st.bad > 0 {
			return &exitError{Code: 1, Msg: fmt.Sprintf("%s: %d malformed line(s) skipped, %d trade(s) aggregated", name, st.bad, st.trades)}
		}
		return nil
	})
}

type aggregateStats struct {
	trades, bad, late int
	repeats           int64
}

// aggregateLines runs the aggregator over trade lines and writes every candle it closes;
// at the end of input the forming candles close too.
func aggregateLines(ctx context.Context, in io.Reader, out io.Writer, ivs []market.Interval, mode ingest.EmptyMode, stderr io.Writer) (aggregateStats, error) {
	var st aggregateStats
	agg := ingest.NewAggregator(ingest.AggregatorConfig{Intervals: ivs, Empty: mode})
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), maxLine)
	var closed []market.Candle
	write := func(cs []market.Candle) error {
		for i := range cs {
			b, err := json.Marshal(cs[i])
			if err != nil {
				return err
			}
			b = append(b, '\n')
			if _, err := out.Write(b); err != nil {
				return err
			}
		}
		return nil
	}
	for line := 1; sc.Scan(); line++ {
		if line%4096 == 0 && ctx.Err() != nil {
			return st, ctx.Err()
		}
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var t market.Trade
		if err := json.Unmarshal(text, &t); err != nil {
			if kind, _ := recordType(text); kind == "quote" || kind == "candle" {
				continue
			}
			st.bad++
			fmt.Fprintf(stderr, "line %d: %v\n", line, strings.TrimPrefix(err.Error(), "market: "))
			continue
		}
		st.trades++
		var late int
		closed, late = agg.Add(&t, closed[:0])
		st.late += late
		if err := write(closed); err != nil {
			return st, err
		}
	}
	if err := sc.Err(); err != nil {
		return st, fmt.Errorf("read: %w (a line longer than %d bytes?)", err, maxLine)
	}
	st.repeats = agg.Stats().Repeats
	return st, write(agg.Flush(closed[:0]))
}

// recordType returns the "type" of a JSON record, "" when absent.
func recordType(line []byte) (string, error) {
	var r struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return "", fmt.Errorf("not a JSON object: %v", err)
	}
	return r.Type, nil
}
