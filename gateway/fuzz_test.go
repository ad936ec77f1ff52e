package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzDecodeCommands: any body either decodes to non-empty commands or errors, without
// panicking, and every decoded command passes through CheckCommand without panicking;
// a command CheckCommand allows has every key under the prefix.
func FuzzDecodeCommands(f *testing.F) {
	for _, s := range []string{`["GET","k"]`, `[["SET","p:a",1],["INCR","p:a"]]`, `["EVAL","return 1",1,"p:k"]`,
		`["XREAD","STREAMS","p:s","0"]`, `["SCAN",0,"MATCH","p:*"]`, `[]`, `[1.5e400]`, `{"a":1}`, `["mset","p:a","1","q","2"]`} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	pol := CommandPolicy{Class: RedisWrite, Scripts: true, KeyPrefixes: []string{"p:"}}
	f.Fuzz(func(t *testing.T, body []byte, one bool) {
		cmds, err := DecodeCommands(body, one)
		if err != nil {
			return
		}
		for _, args := range cmds {
			if len(args) == 0 {
				t.Fatal("decoded an empty command")
			}
			keys, _, err := CheckCommand(args, pol)
			if err != nil {
				continue
			}
			for _, k := range keys {
				if !strings.HasPrefix(k, "p:") {
					t.Fatalf("%q allowed with key %q outside the prefix", args, k)
				}
			}
		}
	})
}

// FuzzCheckCommand: the checker never panics, never lets a read-only token write, and
// never allows a key outside the prefix.
func FuzzCheckCommand(f *testing.F) {
	for _, s := range []string{"GET p:a", "SET p:a 1", "DEL p:a q", "EVAL x 2 p:a p:b", "EVALSHA x 9 p:a",
		"ZUNIONSTORE p:d 2 p:a q", "BITOP AND p:d p:a q", "XREAD COUNT 1 STREAMS p:s q 0 0", "SCAN 0 MATCH * MATCH p:*",
		"MSET p:a 1 q", "SCRIPT LOAD x", "FLUSHALL", "LMPOP 2 p:a q LEFT"} {
		f.Add(s)
	}
	read := CommandPolicy{Class: RedisRead, KeyPrefixes: []string{"p:"}}
	write := CommandPolicy{Class: RedisWrite, Scripts: true, KeyPrefixes: []string{"p:"}}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Fields(line)
		for _, pol := range []CommandPolicy{read, write} {
			keys, w, err := CheckCommand(args, pol)
			if err != nil {
				continue
			}
			if w && pol.Class == RedisRead {
				t.Fatalf("%q: read-only token allowed a write", args)
			}
			for _, k := range keys {
				if !strings.HasPrefix(k, "p:") {
					t.Fatalf("%q: key %q outside the prefix allowed", args, k)
				}
			}
		}
	})
}

// FuzzDecodeJSON: the /v1 body decoder never panics and only ever reports ErrInvalid
// or a size error.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"exchange":"binance","symbol":"BTC-USDT","interval":"1m"}`, `{"interval":5}`, `{} {}`, ``, `{"member":"a","score":"1.5"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/v1/jobs", strings.NewReader(string(body)))
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 1<<16)
		var v ScoreRequest
		if err := decodeJSON(r, &v); err != nil {
			if st, _ := statusOf(err); st != http.StatusBadRequest && st != http.StatusRequestEntityTooLarge {
				t.Fatalf("%q: error %v maps to %d", body, err, st)
			}
		}
	})
}
