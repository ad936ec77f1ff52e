package bookreplay

import (
	"strconv"
	"time"

	"github.com/tickstash/tickstash/book"
)

// AppendJSON appends the book line Run writes for b, with depth levels per side (all
// if depth ≤ 0), without a newline. A book that is not live gets its state and reason
// instead of levels: it is never presented as good.
func AppendJSON(dst []byte, b *book.Book, depth int) []byte {
	st := b.Status()
	dst = append(dst, `{"type":"book","exchange":`...)
	dst = strconv.AppendQuote(dst, string(b.Exchange()))
	dst = append(dst, `,"symbol":`...)
	dst = strconv.AppendQuote(dst, string(b.Symbol()))
	dst = append(dst, `,"time":"`...)
	dst = st.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","sequence":`...)
	dst = strconv.AppendInt(dst, st.Sequence, 10)
	if st.State != book.StateLive {
		dst = append(dst, `,"state":`...)
		dst = strconv.AppendQuote(dst, st.State.String())
		dst = append(dst, `,"reason":`...)
		dst = strconv.AppendQuote(dst, st.Reason)
		return append(dst, '}')
	}
	for _, s := range [2]book.Side{book.Bid, book.Ask} {
		if s == book.Bid {
			dst = append(dst, `,"bids":[`...)
		} else {
			dst = append(dst, `,"asks":[`...)
		}
		first := true
		b.Levels(s, depth, func(p, q int64) bool {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = b.AppendLevel(dst, p, q)
			return true
		})
		dst = append(dst, ']')
	}
	return append(dst, '}')
}
