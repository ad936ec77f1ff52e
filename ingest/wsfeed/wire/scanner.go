// Package wire reads exchange messages off the wire without allocating: a small JSON
// scanner, exact decimals from their source text, and the timestamp forms exchanges use.
//
// encoding/json's reflection costs several microseconds and a dozen allocations per
// exchange message; the feeds send small, flat objects whose fields the decoders pick
// one by one. A Scanner walks a message in place and hands out raw tokens: strings
// without their quotes (unescaped into a scratch buffer only when they hold escapes),
// numbers as their exact source text (so decimals never pass through float64).
//
//	var s wire.Scanner
//	s.Reset(msg)
//	s.Object()
//	for key, ok := s.Key(); ok; key, ok = s.Key() {
//		switch string(key) {
//		case "p":
//			price = s.Str()
//		default:
//			s.Skip()
//		}
//	}
//	if err := s.Err(); err != nil { ... }
//
// The first error sticks: later calls return zero values, and Err reports it.
package wire

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// ErrSyntax is wrapped by every error a Scanner reports.
var ErrSyntax = errors.New("wire: syntax error")

// maxDepth bounds nesting in Skip so hostile input cannot exhaust the stack.
const maxDepth = 64

// Scanner reads one JSON document from a byte slice. The zero value is ready after
// Reset. Returned slices alias the input or the scanner's scratch buffer and are valid
// until the next Reset.
type Scanner struct {
	buf     []byte
	pos     int
	err     error
	scratch []byte
	// first is set after '{' or '[' until the first member is read.
	first bool
}

// Reset points the scanner at b and clears any error.
func (s *Scanner) Reset(b []byte) {
	s.buf, s.pos, s.err, s.first = b, 0, nil, false
	s.scratch = s.scratch[:0]
}

// Err returns the first error met, or nil.
func (s *Scanner) Err() error { return s.err }

// Pos returns the offset of the next unread byte.
func (s *Scanner) Pos() int { return s.pos }

func (s *Scanner) fail(what string) {
	if s.err == nil {
		s.err = fmt.Errorf("%w: %s at offset %d", ErrSyntax, what, s.pos)
	}
	s.pos = len(s.buf)
}

func (s *Scanner) ws() {
	for s.pos < len(s.buf) {
		switch s.buf[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// Peek returns the first byte of the next value ('{', '[', '"', 't', 'f', 'n', '-' or a
// digit), or 0 at the end of input or after an error.
func (s *Scanner) Peek() byte {
	if s.err != nil {
		return 0
	}
	s.ws()
	if s.pos >= len(s.buf) {
		return 0
	}
	return s.buf[s.pos]
}

// Object consumes the '{' that opens an object. It reports false (and records an
// error) when the next value is not an object.
func (s *Scanner) Object() bool {
	if s.Peek() != '{' {
		s.fail("want object")
		return false
	}
	s.pos++
	s.first = true
	return true
}

// Array consumes the '[' that opens an array, reporting false (with an error) when
// the next value is not an array.
func (s *Scanner) Array() bool {
	if s.Peek() != '[' {
		s.fail("want array")
		return false
	}
	s.pos++
	s.first = true
	return true
}

// Key reads the next member name of the current object and the ':' after it. It
// returns false at the closing '}' (which it consumes) or on error. The caller must
// then read or Skip the value.
func (s *Scanner) Key() ([]byte, bool) {
	if !s.more('}') {
		return nil, false
	}
	k, ok := s.str()
	if !ok {
		return nil, false
	}
	s.ws()
	if s.pos >= len(s.buf) || s.buf[s.pos] != ':' {
		s.fail("want ':'")
		return nil, false
	}
	s.pos++
	return k, true
}

// Next reports whether the current array has another element, consuming the ','
// between elements, or the closing ']' when it returns false.
func (s *Scanner) Next() bool { return s.more(']') }

// more handles the separator before the next member of an object or array.
func (s *Scanner) more(end byte) bool {
	if s.err != nil {
		return false
	}
	s.ws()
	if s.pos >= len(s.buf) {
		s.fail("unexpected end")
		return false
	}
	if s.buf[s.pos] == end {
		s.pos++
		s.first = false
		return false
	}
	if !s.first {
		if s.buf[s.pos] != ',' {
			s.fail("want ','")
			return false
		}
		s.pos++
		s.ws()
		if s.pos < len(s.buf) && s.buf[s.pos] == end {
			s.fail("trailing ','")
			return false
		}
	}
	s.first = false
	return true
}

// Str reads a string value and returns its unescaped content.
func (s *Scanner) Str() []byte {
	if s.err != nil {
		return nil
	}
	s.ws()
	b, _ := s.str()
	return b
}

// StrOrNull reads a string or null; null gives nil and false.
func (s *Scanner) StrOrNull() ([]byte, bool) {
	if s.Peek() == 'n' {
		s.lit("null")
		return nil, false
	}
	b := s.Str()
	return b, s.err == nil
}

func (s *Scanner) str() ([]byte, bool) {
	if s.pos >= len(s.buf) || s.buf[s.pos] != '"' {
		s.fail("want string")
		return nil, false
	}
	s.pos++
	start := s.pos
	for i := start; i < len(s.buf); i++ {
		c := s.buf[i]
		switch {
		case c == '"':
			s.pos = i + 1
			return s.buf[start:i], true
		case c == '\\':
			return s.unescape(start)
		case c < 0x20:
			s.pos = i
			s.fail("control character in string")
			return nil, false
		}
	}
	s.fail("unterminated string")
	return nil, false
}

// unescape copies the string starting at start into scratch, resolving escapes. It
// appends, so strings returned earlier for the same document stay intact.
func (s *Scanner) unescape(start int) ([]byte, bool) {
	from := len(s.scratch)
	out := s.scratch
	i := start
	for i < len(s.buf) {
		c := s.buf[i]
		switch {
		case c == '"':
			s.pos = i + 1
			s.scratch = out
			return out[from:len(out):len(out)], true
		case c < 0x20:
			s.pos = i
			s.fail("control character in string")
			return nil, false
		case c != '\\':
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(s.buf) {
			break
		}
		e := s.buf[i+1]
		i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(s.buf, i)
			if !ok {
				s.pos = i
				s.fail("bad \\u escape")
				return nil, false
			}
			i += 4
			if r >= 0xD800 && r < 0xDC00 {
				// A surrogate pair, if the low half follows.
				if lo, ok := hex4(s.buf, i+2); ok && i+1 < len(s.buf) && s.buf[i] == '\\' && s.buf[i+1] == 'u' && lo >= 0xDC00 && lo < 0xE000 {
					r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
					i += 6
				} else {
					r = utf8.RuneError
				}
			} else if r >= 0xDC00 && r < 0xE000 {
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
		default:
			s.pos = i - 1
			s.fail("bad escape")
			return nil, false
		}
	}
	s.fail("unterminated string")
	return nil, false
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// Number reads a JSON number and returns its exact source text, checked against the
// JSON grammar.
func (s *Scanner) Number() []byte {
	if s.err != nil {
		return nil
	}
	s.ws()
	start := s.pos
	i := s.pos
	b := s.buf
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		s.pos = i
		s.fail("want number")
		return nil
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			s.pos = i
			s.fail("want digit after '.'")
			return nil
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			s.pos = i
			s.fail("want exponent digits")
			return nil
		}
	}
	s.pos = i
	return b[start:i]
}

// NumOrStr reads a number, or a string holding one (exchanges use both), and returns
// the text. The text of a string is not checked.
func (s *Scanner) NumOrStr() []byte {
	if s.Peek() == '"' {
		return s.Str()
	}
	return s.Number()
}

// Int reads an integer number (or a string holding one) as int64.
func (s *Scanner) Int() int64 {
	b := s.NumOrStr()
	if s.err != nil {
		return 0
	}
	v, ok := ParseInt(b)
	if !ok {
		s.fail("want integer")
		return 0
	}
	return v
}

// ParseInt parses an optionally negative decimal integer of at most 18 digits.
func ParseInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg, b = true, b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

// Bool reads true or false.
func (s *Scanner) Bool() bool {
	switch s.Peek() {
	case 't':
		s.lit("true")
		return s.err == nil
	case 'f':
		s.lit("false")
		return false
	}
	s.fail("want boolean")
	return false
}

func (s *Scanner) lit(w string) {
	if len(s.buf)-s.pos < len(w) || string(s.buf[s.pos:s.pos+len(w)]) != w {
		s.fail("want " + w)
		return
	}
	s.pos += len(w)
}

// Skip reads and discards the next value of any kind.
func (s *Scanner) Skip() { s.skip(0) }

// Raw reads the next value of any kind and returns its source text.
func (s *Scanner) Raw() []byte {
	if s.err != nil {
		return nil
	}
	s.ws()
	start := s.pos
	s.skip(0)
	if s.err != nil {
		return nil
	}
	return s.buf[start:s.pos]
}

func (s *Scanner) skip(depth int) {
	if depth > maxDepth {
		s.fail("nesting too deep")
		return
	}
	switch s.Peek() {
	case '{':
		s.pos++
		s.first = true
		for {
			if _, ok := s.Key(); !ok {
				return
			}
			s.skip(depth + 1)
		}
	case '[':
		s.pos++
		s.first = true
		for s.Next() {
			s.skip(depth + 1)
		}
	case '"':
		s.str()
	case 't':
		s.lit("true")
	case 'f':
		s.lit("false")
	case 'n':
		s.lit("null")
	case 0:
		s.fail("unexpected end")
	default:
		s.Number()
	}
}

// End checks that only white space follows the document.
func (s *Scanner) End() {
	if s.err != nil {
		return
	}
	s.ws()
	if s.pos != len(s.buf) {
		s.fail("data after document")
	}
}
