package wsfeed

import (
	"errors"
	"fmt"
	"time"

	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/market"
)

// Decoder turns one raw message of an exchange into events. Implementations keep small
// caches (symbols) and are not safe for concurrent use; each connection or replay has
// its own.
type Decoder interface {
	// Exchange is the venue the decoder's events belong to.
	Exchange() market.Exchange
	// Decode appends the events in msg to dst, as drafts, and returns it; the Stream
	// validates them. recv is when the message
	// was read; it becomes the events' ReceivedAt and the time of quotes that carry
	// none. Messages that carry no market data (subscription acks, heartbeats, pongs)
	// add nothing and return nil. Messages that do not decode return a *DecodeError.
	// A message announcing that the server will close the connection returns an error
	// wrapping ErrReconnect. Decode must not retain msg.
	Decode(dst []ingest.Draft, msg []byte, recv time.Time) ([]ingest.Draft, error)
}

// ErrReconnect is returned (wrapped) by a Decoder when the server announced that it
// will close the connection; the Feed then reconnects at once.
var ErrReconnect = errors.New("wsfeed: server asked to reconnect")

// Reasons for decode errors, the values of the reason label of
// tickstash_feed_decode_errors_total.
const (
	ReasonJSON     = "json"     // not the JSON shape expected
	ReasonType     = "type"     // an unknown message type or channel
	ReasonField    = "field"    // a required field is missing or malformed
	ReasonNumber   = "number"   // a price or quantity is not a decimal
	ReasonTime     = "time"     // a timestamp does not parse
	ReasonSymbol   = "symbol"   // an instrument name cannot be made canonical
	ReasonInterval = "interval" // a kline interval tickstash does not support
	ReasonInvalid  = "invalid"  // decoded, but fails market validation
	ReasonBinary   = "binary"   // a binary websocket message
)

// DecodeError says why a message did not decode.
type DecodeError struct {
	Reason string // one of the Reason constants
	Err    error
}

func (e *DecodeError) Error() string { return "decode: " + e.Reason + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *DecodeError) Unwrap() error { return e.Err }

// Errorf returns a *DecodeError with the given reason and message.
func Errorf(reason, format string, args ...any) error {
	return &DecodeError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// Reason returns the reason of a decode error, or ReasonJSON for any other error.
func Reason(err error) string {
	var de *DecodeError
	if errors.As(err, &de) {
		return de.Reason
	}
	return ReasonJSON
}
