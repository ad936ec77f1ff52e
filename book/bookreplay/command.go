package bookreplay

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

// Usage is the help text of `tickstash books`.
const Usage = `usage: tickstash books [--depth N] FILE...

Replays capture files (plain or .zst) through the exchanges' depth decoders, verifies
every order book by the exchange's rules (Binance update ids against the REST snapshot,
Coinbase sequence numbers, Kraken checksums, no crossed book) and prints each market's
final book as one JSON line, best level first, decimals exact:

  {"type":"book","exchange":"coinbase","symbol":"BTC-USD","time":"...","sequence":123,"bids":[["65083.66","0.23929087"]],"asks":[["65083.67","0.29040961"]]}

A book that ended stale or never synced is printed with "state" and "reason" instead of
levels. Verification failures and resyncs are reported on stderr with a count.

Exit status: 0 every book verified; 1 a book ended stale or never synced; 2 bad usage or
an unreadable capture.

Flags:
  --depth N   levels per side to print (0: all; default 10)
`

// Command runs `tickstash books` with its arguments (after "books") and returns the
// exit status: 0 when every book verified, 1 when a book ended stale or never synced,
// 2 for bad usage or a capture that cannot be read. Books go to stdout, reports and
// errors to stderr. Wiring it is one line:
//
//	case "books":
//		os.Exit(bookreplay.Command(ctx, args[1:], os.Stdout, os.Stderr))
func Command(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("books", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, Usage) }
	depth := fs.Int("depth", 10, "levels per side to print (0: all)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 || *depth < 0 {
		fmt.Fprint(stderr, Usage)
		return 2
	}
	_, err := Run(ctx, fs.Args(), Config{Depth: *depth, Out: stdout, Log: stderr})
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrNotLive):
		fmt.Fprintf(stderr, "tickstash books: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "tickstash books: %v\n", err)
	return 2
}
