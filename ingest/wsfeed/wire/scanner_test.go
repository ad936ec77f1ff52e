package wire

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// walk reads the next value with the typed calls the decoders use and returns it as
// encoding/json would decode it with UseNumber: map[string]any, []any, string, Number
// text (as json.Number), bool or nil.
func walk(s *Scanner, depth int) any {
	if depth > maxDepth {
		s.fail("nesting too deep")
		return nil
	}
	switch s.Peek() {
	case '{':
		s.Object()
		m := map[string]any{}
		for k, ok := s.Key(); ok; k, ok = s.Key() {
			key := string(k) // k may alias scratch that a nested string extends
			m[key] = walk(s, depth+1)
		}
		return m
	case '[':
		s.Array()
		a := []any{}
		for s.Next() {
			a = append(a, walk(s, depth+1))
		}
		return a
	case '"':
		return string(s.Str())
	case 't', 'f':
		return s.Bool()
	case 'n':
		b, ok := s.StrOrNull()
		if ok || b != nil {
			s.fail("null read as a string")
		}
		return nil
	default:
		return jsonNumber(s.Number())
	}
}

type jsonNumber string

func TestScannerValues(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{`{}`, map[string]any{}},
		{`[]`, []any{}},
		{` { "a" : 1 , "b":[true,false,null] } `, map[string]any{"a": jsonNumber("1"), "b": []any{true, false, nil}}},
		{`"plain"`, "plain"},
		{`""`, ""},
		{`"q\"b\\s\/n\nt\tr\rb\bf\f"`, "q\"b\\s/n\nt\tr\rb\bf\f"},
		{`"\u00e9\u20AC"`, "é€"},
		{`"\ud83d\ude00"`, "😀"},
		{`"\ud83d"`, "\uFFFD"},           // a lone high surrogate
		{`"\ude00x"`, "\uFFFDx"},         // a lone low surrogate
		{`"\ud83d\u0041"`, "\uFFFDA"},    // a high surrogate followed by no low one
		{`"é raw UTF-8"`, "é raw UTF-8"}, // kept as is
		{`-0`, jsonNumber("-0")},
		{`0.000001`, jsonNumber("0.000001")},
		{`65000.12345678`, jsonNumber("65000.12345678")},
		{`1.5e-05`, jsonNumber("1.5e-05")},
		{`2E+3`, jsonNumber("2E+3")},
		{`[[[[1]]]]`, []any{[]any{[]any{[]any{jsonNumber("1")}}}}},
		{`{"a":{"b":"\u0031","c":"x\ty"},"d":"\u0032"}`, map[string]any{"a": map[string]any{"b": "1", "c": "x\ty"}, "d": "2"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var s Scanner
			s.Reset([]byte(tt.in))
			got := walk(&s, 0)
			s.End()
			if err := s.Err(); err != nil {
				t.Fatalf("Err() = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("value (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScannerRejects(t *testing.T) {
	tests := []struct{ in, msg string }{
		{``, "want number"},
		{`{`, "unexpected end"},
		{`{"a"}`, "want ':'"},
		{`{"a":1,}`, "trailing ','"},
		{`[1,]`, "trailing ','"},
		{`[1 2]`, "want ','"},
		{`{a:1}`, "want string"},
		{`"abc`, "unterminated string"},
		{`"ab\`, "unterminated string"},
		{"\"a\nb\"", "control character in string"},
		{"\"a\\n\x01\"", "control character in string"},
		{`"\x"`, "bad escape"},
		{`"\u12"`, "bad \\u escape"},
		{`"\u12g4"`, "bad \\u escape"},
		{`01`, "data after document"},
		{`-`, "want number"},
		{`+1`, "want number"},
		{`.5`, "want number"},
		{`1.`, "want digit after '.'"},
		{`1e`, "want exponent digits"},
		{`1e+`, "want exponent digits"},
		{`tru`, "want true"},
		{`nul`, "want null"},
		{`falsy`, "want false"},
		{`false1`, "data after document"},
		{`{} {}`, "data after document"},
		{strings.Repeat("[", maxDepth+2) + strings.Repeat("]", maxDepth+2), "nesting too deep"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var s Scanner
			s.Reset([]byte(tt.in))
			walk(&s, 0)
			s.End()
			err := s.Err()
			if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Err() = %v, want ErrSyntax with %q", err, tt.msg)
			}
			// The first error sticks, and every later call returns a zero value.
			if s.Peek() != 0 || s.Str() != nil || s.Number() != nil || s.Raw() != nil || s.Int() != 0 || s.Bool() || s.Next() {
				t.Error("a call after the error returned a value")
			}
			if _, ok := s.Key(); ok {
				t.Error("Key after the error reported a member")
			}
			if s.Err() != err {
				t.Errorf("error changed from %v to %v", err, s.Err())
			}
		})
	}
}

func TestScannerTypedReads(t *testing.T) {
	var s Scanner
	s.Reset([]byte(`{"id":"12345","n":-42,"big":"1234567890123456789","p":"0.1","q":0.25,"s":null,"x":{"deep":[1,{"y":"\u0041"}]},"b":true}`))
	s.Object()
	got := map[string]any{}
	for k, ok := s.Key(); ok; k, ok = s.Key() {
		switch key := string(k); key {
		case "id", "n":
			got[key] = s.Int()
		case "big":
			before := s.Pos()
			got[key] = s.Int()
			if s.Err() == nil {
				t.Fatal("Int of 19 digits: no error")
			}
			if before == 0 {
				t.Fatal("Pos did not move")
			}
			return
		case "p", "q":
			got[key] = string(s.NumOrStr())
		case "s":
			b, ok := s.StrOrNull()
			got[key] = ok || b != nil
		case "x":
			got[key] = string(s.Raw())
		case "b":
			got[key] = s.Bool()
		}
	}
	t.Fatalf("did not reach \"big\": %v, %v", got, s.Err())
}

func TestScannerRawAndSkip(t *testing.T) {
	var s Scanner
	s.Reset([]byte(`{"a": [1, "two", {"three": null}] , "b":"\u0041\n", "c": 3}`))
	s.Object()
	var keys []string
	for k, ok := s.Key(); ok; k, ok = s.Key() {
		keys = append(keys, string(k))
		switch string(k) {
		case "a":
			if raw := string(s.Raw()); raw != `[1, "two", {"three": null}]` {
				t.Errorf("Raw() = %q", raw)
			}
		case "b":
			s.Skip()
		case "c":
			if n := s.Int(); n != 3 {
				t.Errorf("Int() = %d, want 3", n)
			}
		}
	}
	s.End()
	if err := s.Err(); err != nil || strings.Join(keys, ",") != "a,b,c" {
		t.Fatalf("keys %v, err %v", keys, err)
	}
}

// TestScannerUnescapeKeepsEarlierStrings: escaped strings are appended to one scratch
// buffer, so each returned slice stays intact while the document is read.
func TestScannerUnescapeKeepsEarlierStrings(t *testing.T) {
	var s Scanner
	s.Reset([]byte(`["a\tb","c\nd","\u0065"]`))
	s.Array()
	var got [][]byte
	for s.Next() {
		got = append(got, s.Str())
	}
	want := []string{"a\tb", "c\nd", "e"}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Fatalf("string %d = %q, want %q (all: %q)", i, got[i], want[i], got)
		}
	}
	// Appending to a returned slice must not overwrite the next one.
	_ = append(got[0], 'X')
	if string(got[1]) != "c\nd" {
		t.Fatalf("appending to one string changed the next: %q", got[1])
	}
	// Reset reuses the scratch space and clears the error.
	s.Reset([]byte(`[`))
	s.Array()
	s.Next()
	if s.Err() == nil {
		t.Fatal("no error for '['")
	}
	s.Reset([]byte(`"\u0066"`))
	if v := string(s.Str()); v != "f" || s.Err() != nil {
		t.Fatalf("after Reset: %q, %v", v, s.Err())
	}
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"7", 7, true}, {"-7", -7, true},
		{"999999999999999999", 999999999999999999, true}, {"-999999999999999999", -999999999999999999, true},
		{"1000000000000000000", 0, false}, // 19 digits: refused rather than overflowed
		{"", 0, false}, {"-", 0, false}, {"1.0", 0, false}, {"1e3", 0, false}, {" 1", 0, false}, {"+1", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseInt([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseInt(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
