package book

import (
	"hash/crc32"
	"strconv"
)

// checksumLevels is how many levels per side Kraken's checksum covers.
const checksumLevels = 10

// KrakenChecksum returns Kraken's CRC32 of the book's top 10 levels (websocket v1 and
// v2 alike): for the asks from the best up, then the bids from the best down, the
// price and the quantity each written with the decimals of the wire text, the '.'
// removed and leading zeros stripped, all concatenated; CRC-32 (IEEE) of that.
//
// The decimals are the widest fraction the book has seen for prices and for
// quantities, which is the wire's when the exchange formats every level of a market
// alike, as Kraken does. It does not allocate.
func (b *Book) KrakenChecksum() uint32 {
	buf := b.scratch[:0]
	for _, s := range [2]Side{Ask, Bid} {
		sd := b.side(s)
		i := 0
		for x := sd.best; x != 0 && i < checksumLevels; x = sd.nodes[x].next {
			nd := &sd.nodes[x]
			buf = appendDigits(buf, b.price(s, nd), b.ptext-b.pscale)
			buf = appendDigits(buf, nd.qty, b.qtext-b.qscale)
			i++
		}
	}
	b.scratch = buf[:0] // keep a grown buffer
	return crc32.ChecksumIEEE(buf)
}

// appendDigits appends m's decimal digits followed by zeros trailing zeros; m = 0
// appends only the zeros' absence (Kraken strips every leading zero).
func appendDigits(dst []byte, m int64, zeros int) []byte {
	if m == 0 {
		return dst
	}
	dst = strconv.AppendInt(dst, m, 10)
	for ; zeros > 0; zeros-- {
		dst = append(dst, '0')
	}
	return dst
}
