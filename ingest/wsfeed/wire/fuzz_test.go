package wire

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// FuzzScanner checks the scanner against encoding/json on any input: it accepts a
// document exactly when json.Valid does (nesting beyond maxDepth aside), reads the same
// values, and Raw and Skip agree with the typed walk. It must never panic or loop.
func FuzzScanner(f *testing.F) {
	for _, seed := range []string{
		`{"e":"trade","E":1714000000123,"s":"BTCUSDT","t":12345,"p":"65000.10","q":"0.001","T":1714000000120,"m":true}`,
		`{"channel":"market_trades","events":[{"type":"update","trades":[{"trade_id":"1","price":"95000.01"}]}]}`,
		`[0,[["5541.20000","0.15850568","1534614057.321597","s","l",""]],"trade","XBT/USD"]`,
		`{"a":"\u00e9\ud83d\ude00\ud800\"\\\/\b\f\n\r\t"}`,
		`[1.5e-05,-0,0.1E+2,true,false,null,"",{},[]]`,
		`{"a":1,}`, `[1 2]`, `"unterminated`, `{"a"`, `01`, `1.`, `-`, `"\u12"`,
		strings.Repeat("[", 70) + strings.Repeat("]", 70),
		"\"\xff\xfe\"", " \t\r\n{} ",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var s Scanner
		s.Reset(in)
		got := walk(&s, 0)
		s.End()
		walkErr := s.Err()

		var raw Scanner
		raw.Reset(in)
		text := raw.Raw()
		raw.End()
		if (raw.Err() == nil) != (walkErr == nil) {
			t.Fatalf("Raw error %v, walk error %v: they disagree", raw.Err(), walkErr)
		}
		var skip Scanner
		skip.Reset(in)
		skip.Skip()
		skip.End()
		if (skip.Err() == nil) != (walkErr == nil) {
			t.Fatalf("Skip error %v, walk error %v: they disagree", skip.Err(), walkErr)
		}
		if walkErr == nil && !bytes.Equal(text, bytes.TrimSpace(in)) && !bytes.Equal(text, bytes.Trim(in, " \t\r\n")) {
			t.Fatalf("Raw() = %q of %q", text, in)
		}

		if walkErr != nil && strings.Contains(walkErr.Error(), "nesting too deep") {
			return
		}
		if valid := json.Valid(in); valid != (walkErr == nil) {
			t.Fatalf("json.Valid = %v, scanner error %v, for %q", valid, walkErr, in)
		}
		if walkErr != nil || !utf8.Valid(in) {
			return // encoding/json replaces invalid UTF-8; the scanner keeps the bytes
		}
		d := json.NewDecoder(bytes.NewReader(in))
		d.UseNumber()
		var want any
		if err := d.Decode(&want); err != nil {
			t.Fatalf("json: %v, scanner accepted %q", err, in)
		}
		if diff := cmp.Diff(fromJSON(want), got); diff != "" {
			t.Fatalf("values differ for %q (-json +scanner):\n%s", in, diff)
		}
	})
}

// fromJSON turns encoding/json's numbers into the walk's type.
func fromJSON(v any) any {
	switch v := v.(type) {
	case json.Number:
		return jsonNumber(v)
	case map[string]any:
		for k, e := range v {
			v[k] = fromJSON(e)
		}
	case []any:
		for i, e := range v {
			v[i] = fromJSON(e)
		}
	}
	return v
}
