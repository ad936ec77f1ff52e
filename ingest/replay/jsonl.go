package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/tickstash/tickstash/ingest"
)

// WriteJSON writes ev as one line of normalized JSON: trades in market.Trade's record
// shape (the one `tickstash candles` reads), quotes in market.Quote's, exchange candles
// in market.Candle's. Gap events are not records and are skipped (they are logged and
// counted by the stream).
func WriteJSON(w io.Writer, ev ingest.Event) error {
	var v any
	switch ev.Kind() {
	case ingest.KindTrade:
		v = ev.Trade()
	case ingest.KindQuote:
		v = ev.Quote()
	case ingest.KindCandle:
		v = ev.Candle()
	default:
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("replay: encode: %w", err)
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("replay: write: %w", err)
	}
	return nil
}

// DryRun runs src and writes every event to w with WriteJSON until src is exhausted
// or ctx is done. It returns src's error or the first write error.
func DryRun(ctx context.Context, src ingest.Source, w io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make(chan ingest.Event, 256)
	errc := make(chan error, 1)
	go func() {
		errc <- src.Run(ctx, out)
		close(out) // Run has returned: nothing else sends on out
	}()
	var werr error
	for ev := range out {
		if werr != nil {
			continue // drain until Run returns
		}
		if werr = WriteJSON(w, ev); werr != nil {
			cancel()
		}
	}
	if err := <-errc; err != nil {
		return err
	}
	return werr
}
