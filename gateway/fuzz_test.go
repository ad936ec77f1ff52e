package gateway

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
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
	f.Add([]byte("[\"SET\",\"p:a\",\"\xff\"]"), true)
	f.Add([]byte(`["SET","p:a","\ud800"]`), true)
	f.Add([]byte(`[["SET","p:a","\ud83d\ude00"],["DEL","p:a","p:b"],["FLUSHALL"]]`), false)
	f.Fuzz(func(t *testing.T, body []byte, one bool) {
		cmds, err := DecodeCommands(body, one)
		if err != nil {
			return
		}
		if !utf8.Valid(body) {
			t.Fatalf("%q: invalid UTF-8 decoded", body)
		}
		for _, i := range []int{-1, 0, len(cmds) - 1} {
			if tg := auditTarget(cmds, i); len(tg) > maxAuditTarget+len("…") {
				t.Fatalf("audit target of %d bytes", len(tg))
			}
		}
		for _, args := range cmds {
			if len(args) == 0 {
				t.Fatal("decoded an empty command")
			}
			for _, a := range args {
				if strings.ContainsRune(a, utf8.RuneError) && !bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`)) &&
					!bytes.Contains(body, []byte("\xef\xbf\xbd")) {
					t.Fatalf("%q: U+FFFD in %q that the body did not send", body, a)
				}
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
		if tg := auditTarget([][]string{args}, 0); len(tg) > maxAuditTarget+len("…") {
			t.Fatalf("audit target of %d bytes", len(tg))
		}
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

// The signature verifier's fixed world: two active secrets, a server clock.
var (
	fuzzSecrets = []string{"tss_current", "tss_previous"}
	fuzzNow     = time.Unix(1_700_000_000, 0)
)

func fuzzSigned(ts string, body []byte, header string) signedRequest {
	return signedRequest{timestamps: []string{ts}, signatures: []string{header}, method: "POST", pathWithQuery: "/redis", body: body}
}

// FuzzCheckSignature: whatever the headers hold, the verifier accepts only a header of
// at most two v1= values of which one is the request's HMAC under an active secret, and
// then names the request by the SHA-256 of its signed string, never by the header text.
func FuzzCheckSignature(f *testing.F) {
	body := []byte(`["INCR","p:n"]`)
	ts := strconv.FormatInt(fuzzNow.Unix(), 10)
	good := Sign(fuzzSecrets[0], "POST", "/redis", fuzzNow, body)
	other := Sign(fuzzSecrets[1], "POST", "/redis", fuzzNow, body)
	for _, h := range []string{good, strings.ToUpper(good), "v1=" + strings.ToUpper(good[3:]), " " + good + " ", good + "," + good,
		good + "," + other, other + ",\t" + good, good + "," + good + "," + good, strings.Repeat(good+",", 20) + good,
		"", ",", "v1=", "v2=" + good[3:], good[:66], good + "0"} {
		f.Add(h, ts, body)
	}
	for _, t := range []string{"+" + ts, "0" + ts, " " + ts, "1e9", "-1", "99999999999999999999"} {
		f.Add(good, t, body)
	}
	f.Fuzz(func(t *testing.T, header, ts string, body []byte) {
		id, reason, err := checkSignature(fuzzSigned(ts, body, header), fuzzSecrets, fuzzNow, 5*time.Minute)
		if (err == nil) != (reason == "") {
			t.Fatalf("reason %q with error %v", reason, err)
		}
		if err != nil {
			return
		}
		vals, perr := parseSignatures(header)
		if perr != nil || len(vals) > maxSignatureValues {
			t.Fatalf("%q accepted with %d values (%v)", header, len(vals), perr)
		}
		msg := signedString(ts, "POST", "/redis", sha256.Sum256(body))
		found := false
		for _, s := range fuzzSecrets {
			for _, v := range vals {
				found = found || hmac.Equal(v, macOf(s, msg))
			}
		}
		if !found {
			t.Fatalf("%q accepted without the request's HMAC", header)
		}
		if id != sha256.Sum256(msg) {
			t.Fatalf("%q: replay id %x is not the request's", header, id)
		}
	})
}

// FuzzSignatureSpellings: every spelling of a valid signature header (letter case,
// spaces, a duplicate, the other secret's value, either order) is accepted with the
// same replay id, so a replay in another spelling is caught; a third value is refused.
func FuzzSignatureSpellings(f *testing.F) {
	f.Add([]byte(`["INCR","p:n"]`), uint64(0), uint8(0), uint8(0))
	f.Add([]byte(`["INCR","p:n"]`), ^uint64(0), uint8(3), uint8(1))
	f.Add([]byte{}, uint64(0xaaaaaaaaaaaaaaaa), uint8(9), uint8(7))
	f.Add(bytes.Repeat([]byte("x"), 4096), uint64(0x5555), uint8(200), uint8(15))
	ts := strconv.FormatInt(fuzzNow.Unix(), 10)
	f.Fuzz(func(t *testing.T, body []byte, mask uint64, pad, shape uint8) {
		msg := signedString(ts, "POST", "/redis", sha256.Sum256(body))
		want := sha256.Sum256(msg)
		sig := []byte(hex.EncodeToString(macOf(fuzzSecrets[shape>>3&1], msg)))
		for i := range sig {
			if mask>>(i%64)&1 == 1 && sig[i] >= 'a' {
				sig[i] -= 'a' - 'A'
			}
		}
		spaces := strings.Repeat(" \t"[pad&1:pad&1+1], int(pad>>1)%8)
		v := spaces + "v1=" + string(sig) + spaces
		vals := []string{v}
		switch shape & 3 {
		case 1:
			vals = append(vals, v)
		case 2:
			vals = append(vals, Sign(fuzzSecrets[1-shape>>3&1], "POST", "/redis", fuzzNow, body))
		case 3:
			vals = append(vals, "v1="+strings.Repeat("0", 64))
		}
		if shape&4 != 0 {
			vals[0], vals[len(vals)-1] = vals[len(vals)-1], vals[0]
		}
		header := strings.Join(vals, ",")
		id, reason, err := checkSignature(fuzzSigned(ts, body, header), fuzzSecrets, fuzzNow, 5*time.Minute)
		if err != nil {
			t.Fatalf("%q refused: %s %v", header, reason, err)
		}
		if id != want {
			t.Fatalf("%q: replay id %x, want %x", header, id, want)
		}
		if _, reason, err := checkSignature(fuzzSigned(ts, body, header+","+v), fuzzSecrets, fuzzNow, 5*time.Minute); err == nil && len(vals) == 2 {
			t.Fatalf("three values accepted (%s)", reason)
		}
	})
}

// FuzzCheckJSONText: a body checkJSONText passes decodes without U+FFFD of its own
// making; a valid JSON body it refuses would have been decoded with one.
func FuzzCheckJSONText(f *testing.F) {
	for _, s := range []string{`["a"]`, "[\"\xff\"]", `["\ud800"]`, `["\udc00\ud800"]`, `["\ud83d\ude00"]`, `["\\ud800"]`,
		`{"\ud800":1}`, "[\"\xef\xbf\xbd\"]", `["\ufffd"]`, `["\ud800\u0041"]`, `"\u"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v any
		if json.Unmarshal(body, &v) != nil {
			return
		}
		decoded := countFFFD(v)
		sent := bytes.Count(body, []byte("\xef\xbf\xbd")) + bytes.Count(bytes.ToLower(body), []byte(`\ufffd`))
		if err := checkJSONText(body); err == nil && decoded > sent {
			t.Fatalf("%q passed, and decodes with %d U+FFFD where it sent %d", body, decoded, sent)
		} else if err != nil && decoded == 0 {
			t.Fatalf("%q refused (%v), but decodes faithfully", body, err)
		}
	})
}

func countFFFD(v any) int {
	n := 0
	switch v := v.(type) {
	case string:
		n = strings.Count(v, "\ufffd")
	case []any:
		for _, e := range v {
			n += countFFFD(e)
		}
	case map[string]any:
		for k, e := range v {
			n += strings.Count(k, "\ufffd") + countFFFD(e)
		}
	}
	return n
}
