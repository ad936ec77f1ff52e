package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/peterbourgon/ff/v4"

	"github.com/tickstash/tickstash/book/bookreplay"
)

func cmdBooks(e env) *ff.Command {
	f := newFlags("books", "books [--depth N] FILE...\n\n"+
		"Replays capture files (plain or .zst) through the exchanges' depth decoders, verifies\n"+
		"every order book by the exchange's rules (Binance update ids against the REST snapshot,\n"+
		"Coinbase sequence numbers, Kraken checksums, no crossed book) and prints each market's\n"+
		"final book as one JSON line, best level first, decimals exact:\n\n"+
		`  {"type":"book","exchange":"coinbase","symbol":"BTC-USD","time":"...","sequence":123,"bids":[["65083.66","0.23929087"]],"asks":[["65083.67","0.29040961"]]}`+"\n\n"+
		"A book that ended stale or never synced is printed with \"state\" and \"reason\" instead of\n"+
		"levels. Verification failures and resyncs are reported on stderr with a count.\n\n"+
		"Exit status: 0 every book verified; 1 a book ended stale or never synced; 2 bad usage or\n"+
		"an unreadable capture.", e)
	var depth int
	f.Int(&depth, "depth", 10, "levels per side to print (0: all)")
	return f.Command("", func(ctx context.Context, files []string) error {
		if len(files) == 0 {
			return fmt.Errorf("%w: name at least one capture file", errUsage)
		}
		if depth < 0 {
			return fmt.Errorf("%w: --depth %d: want 0 (all levels) or more", errUsage, depth)
		}
		for _, file := range files {
			if _, err := os.Stat(file); err != nil {
				return fmt.Errorf("%w: %v", errUsage, err)
			}
		}
		_, err := bookreplay.Run(ctx, files, bookreplay.Config{Depth: depth, Out: e.stdout, Log: e.stderr})
		if errors.Is(err, bookreplay.ErrNotLive) {
			return &exitError{Code: 1, Msg: "books: " + err.Error()}
		}
		return err
	})
}
