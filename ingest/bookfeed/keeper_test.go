package bookfeed_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tickstash/tickstash/book"
	"github.com/tickstash/tickstash/ingest/bookfeed"
	"github.com/tickstash/tickstash/ingest/capture"
	"github.com/tickstash/tickstash/ingest/kraken"
	"github.com/tickstash/tickstash/market"
)

// TestDisconnectedBooksAreStale applies the Kraken capture's book connection, then ends
// the connection: every book handed to Offer last is stale, saying why, so a reader
// never takes a book that no longer receives updates for live.
func TestDisconnectedBooksAreStale(t *testing.T) {
	r, err := capture.Open("../../../shared/testdata/captures/kraken-v1-2021.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	last := map[market.Symbol]book.Status{}
	k := bookfeed.New(bookfeed.Config{Exchange: market.Kraken, Rules: book.RulesKraken,
		NewDecoder: func() bookfeed.Decoder { return kraken.NewDepthDecoder(0) },
		Options:    bookfeed.Options{Offer: func(b *book.Book) { last[b.Symbol()] = b.Status() }}})
	k.Connected(context.Background())
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Type == capture.TypeRecv && rec.Conn == "KRAKEN.ws.50" {
			if err := k.Handle(rec.Data, time.Now()); err != nil {
				t.Fatalf("a clean capture ended the connection: %v", err)
			}
		}
	}
	if len(last) != 10 {
		t.Fatalf("%d books offered, want the capture's 10", len(last))
	}
	for sym, st := range last {
		if st.State != book.StateLive {
			t.Fatalf("%s: %s before the disconnect: %s", sym, st.State, st.Reason)
		}
	}
	k.Disconnected()
	for sym, st := range last {
		if st.State != book.StateStale || !strings.Contains(st.Reason, "connection lost") {
			t.Errorf("%s after the disconnect: %s %q, want stale for the lost connection", sym, st.State, st.Reason)
		}
	}
}
