package gateway

import (
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// checkJSONText reports why a JSON text would not decode faithfully: invalid UTF-8, or
// a \u escape of a lone surrogate. encoding/json replaces both with U+FFFD without an
// error, so a value would be stored other than it was sent.
func checkJSONText(b []byte) error {
	if !utf8.Valid(b) {
		for i := 0; i < len(b); {
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 {
				return fmt.Errorf("the body is not valid UTF-8 (byte 0x%02x at offset %d)", b[i], i)
			}
			i += n
		}
	}
	// A backslash can only stand in a JSON string (anywhere else the text is malformed
	// and the decoder says so), and there it always starts an escape: scanning escapes
	// pairwise needs no tracking of string boundaries.
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if i+1 >= len(b) || b[i+1] != 'u' {
			i++
			continue
		}
		r, ok := hex4(b, i+2)
		if !ok {
			i++
			continue // the decoder reports it
		}
		switch {
		case utf16.IsSurrogate(r) && r < 0xdc00: // high: a low one must follow
			if lo, ok := hex4(b, i+8); ok && i+7 < len(b) && b[i+6] == '\\' && b[i+7] == 'u' && lo >= 0xdc00 && lo <= 0xdfff {
				i += 11
				continue
			}
			return fmt.Errorf("the body has a \\u escape of half a surrogate pair (\\u%04x at offset %d), which is no character", r, i)
		case utf16.IsSurrogate(r):
			return fmt.Errorf("the body has a \\u escape of half a surrogate pair (\\u%04x at offset %d), which is no character", r, i)
		}
		i += 5
	}
	return nil
}

// hex4 reads four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i < 0 || i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		r <<= 4
		switch {
		case '0' <= c && c <= '9':
			r |= rune(c - '0')
		case 'a' <= c && c <= 'f':
			r |= rune(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}
