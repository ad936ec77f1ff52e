package main

import (
	"bufio"
	"context"
	"fmt"
	"os"

	"github.com/peterbourgon/ff/v4"

	"github.com/tickstash/tickstash/analysis/indicator"
)

func cmdIndicators(e env) *ff.Command {
	f := newFlags("indicators", "indicators --input FILE.csv --indicator SPEC [--indicator SPEC ...]\n\n"+
		"Computes technical indicators over an OHLCV CSV file (header time,open,high,low,close,volume;\n"+
		"time RFC 3339 or Unix seconds, strictly increasing) and writes a CSV to standard output:\n"+
		"one row per input row, first column time, then one column per output named\n"+
		"<indicator>[_<output>]_<params>, e.g. sma_20, macd_signal_12_26_9, bbands_upper_20_2;\n"+
		"empty where the indicator is not yet defined; full float64 precision.\n\n"+
		"SPEC is name[:params]: sma:20 ema:20 wma:20 rsi:14 atr:14 adx:14 macd:12,26,9\n"+
		"bbands:20,2 stoch:14,3,3 obv vwap:20 vwap:session (definitions as TA-Lib's).", e)
	var input string
	var specs []string
	f.String(&input, "input", "-", "OHLCV CSV file to read; - for standard input")
	f.List(&specs, "indicator", nil, "an indicator to compute, e.g. rsi:14")
	return f.Command("", func(_ context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("%w: unexpected arguments %q (the file goes in --input)", errUsage, args)
		}
		if len(specs) == 0 {
			return fmt.Errorf("%w: name at least one --indicator, e.g. --indicator sma:20", errUsage)
		}
		parsed := make([]indicator.Spec, len(specs))
		for i, s := range specs {
			sp, err := indicator.ParseSpec(s)
			if err != nil {
				return fmt.Errorf("%w: --indicator %q: %v", errUsage, s, err)
			}
			parsed[i] = sp
		}
		in := e.stdin
		if input != "-" {
			file, err := os.Open(input)
			if err != nil {
				return err
			}
			defer file.Close()
			in = file
		}
		bars, err := indicator.ReadBarsCSV(bufio.NewReader(in))
		if err != nil {
			return fmt.Errorf("%s: %w", input, err)
		}
		out := bufio.NewWriter(e.stdout)
		if err := indicator.WriteIndicatorsCSV(out, bars, parsed); err != nil {
			return err
		}
		return out.Flush()
	})
}
