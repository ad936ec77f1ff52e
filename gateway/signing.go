package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Request signing, for tokens created with signing. A signed request carries
//
//	X-Tickstash-Timestamp: <Unix seconds>
//	X-Tickstash-Signature: v1=<hex HMAC-SHA256>
//
// where the HMAC, keyed with the token's signing secret, is over the string
//
//	"v1\n" + timestamp + "\n" + METHOD + "\n" + path-with-query + "\n" + hex(SHA-256(raw body))
//
// (path-with-query as sent on the request line, e.g. "/v1/jobs?x=1"; the SHA-256 of an
// empty body for requests without one). The signature header may hold up to two
// comma-separated v1= values, which lets a client sign with both secrets during a
// rotation; one valid value is enough, and a header with more is refused before any
// hashing. Hex digits may be of either case. The timestamp (decimal digits only) must be
// within Config.SignatureSkew of the server's clock, and each signed request is accepted
// once: the SHA-256 of the signed string above is remembered in Redis (SET NX with a TTL
// of twice the skew window) until the request could no longer be valid. Recording the
// request rather than the signature text means no respelling of the header (case,
// whitespace, order, the other secret's value) gets the same request in twice.
const (
	HeaderTimestamp = "X-Tickstash-Timestamp"
	HeaderSignature = "X-Tickstash-Signature"
)

// maxSignatureValues is how many v1= values a signature header may hold: the current
// and the previous secret during a rotation.
const maxSignatureValues = 2

// maxSignatureHeader bounds the header's length: two values with room for spaces.
const maxSignatureHeader = maxSignatureValues*(len("v1=")+2*sha256.Size) + 32

// Sign returns the X-Tickstash-Signature value of a request: the client's half of the
// scheme above, used by tests, the bench and Go clients.
func Sign(secret, method, pathWithQuery string, ts time.Time, body []byte) string {
	bh := sha256.Sum256(body)
	return "v1=" + hex.EncodeToString(macOf(secret, signedString(strconv.FormatInt(ts.Unix(), 10), method, pathWithQuery, bh)))
}

func signedString(ts, method, pathWithQuery string, bodyHash [sha256.Size]byte) []byte {
	return []byte("v1\n" + ts + "\n" + method + "\n" + pathWithQuery + "\n" + hex.EncodeToString(bodyHash[:]))
}

func macOf(secret string, msg []byte) []byte {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(msg)
	return mac.Sum(nil)
}

// signedRequest is what checkSignature needs of a request.
type signedRequest struct {
	timestamps, signatures []string // the header values, one per header line
	method, pathWithQuery  string
	body                   []byte
}

// parseSignatures reads the signature header: one to maxSignatureValues comma-separated
// "v1=<64 hex digits>" values, spaces around each allowed.
func parseSignatures(h string) ([][]byte, error) {
	if len(h) > maxSignatureHeader || strings.Count(h, ",") >= maxSignatureValues {
		return nil, fmt.Errorf("%s: at most %d comma-separated v1= values (one per active secret)", HeaderSignature, maxSignatureValues)
	}
	var out [][]byte
	for _, part := range strings.Split(h, ",") {
		v, ok := strings.CutPrefix(strings.TrimSpace(part), "v1=")
		got, err := hex.DecodeString(v)
		if !ok || err != nil || len(got) != sha256.Size {
			return nil, fmt.Errorf("%s: want v1=<64 hex digits>[,v1=<64 hex digits>]", HeaderSignature)
		}
		out = append(out, got)
	}
	return out, nil
}

// parseTimestamp reads Unix seconds written as 1 to 12 decimal digits (no sign, no
// spaces), so that one instant has few spellings.
func parseTimestamp(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 12 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// checkSignature verifies a signed request against the token's secrets at now, without
// touching Redis. It returns the request's replay identity (the SHA-256 of the signed
// string), or the failure's reason (for metrics) and an error for the client. Its cost
// is bounded whatever the headers hold: the body is hashed once, and at most
// maxSignatureValues × len(secrets) MACs are compared.
func checkSignature(req signedRequest, secrets []string, now time.Time, skew time.Duration) (id [sha256.Size]byte, reason string, err error) {
	ts, sigs, reason, err := checkSignatureHeaders(req.timestamps, req.signatures, now, skew)
	if err != nil {
		return id, reason, err
	}
	msg := signedString(ts, req.method, req.pathWithQuery, sha256.Sum256(req.body))
	matched := false
	for _, secret := range secrets {
		want := macOf(secret, msg)
		for _, got := range sigs {
			if hmac.Equal(got, want) {
				matched = true
			}
		}
	}
	if !matched {
		return id, "mismatch", errors.New("signature does not match the request (method, path with query, timestamp, body)")
	}
	return sha256.Sum256(msg), "", nil
}

// checkSignatureHeaders is the part of checkSignature that needs neither the body nor
// a secret: one timestamp within the window, one signature header of at most
// maxSignatureValues well-formed values.
func checkSignatureHeaders(timestamps, signatures []string, now time.Time, skew time.Duration) (ts string, sigs [][]byte, reason string, err error) {
	if len(timestamps) == 0 || len(signatures) == 0 {
		return "", nil, "missing", fmt.Errorf("this token requires signed requests: send %s and %s", HeaderTimestamp, HeaderSignature)
	}
	if len(timestamps) > 1 || len(signatures) > 1 {
		return "", nil, "malformed", fmt.Errorf("send one %s and one %s header (put both signatures of a rotation in one, comma-separated)", HeaderTimestamp, HeaderSignature)
	}
	ts = timestamps[0]
	secs, ok := parseTimestamp(ts)
	if !ok {
		return "", nil, "malformed", fmt.Errorf("%s %q: want Unix seconds (decimal digits)", HeaderTimestamp, truncate(ts, 32))
	}
	if sigs, err = parseSignatures(signatures[0]); err != nil {
		return "", nil, "malformed", err
	}
	d := now.Sub(time.Unix(secs, 0))
	if d > skew || -d > skew {
		return "", nil, "stale", fmt.Errorf("%s is %v away from the server's clock (window ±%v)", HeaderTimestamp, d.Round(time.Second), skew)
	}
	return ts, sigs, "", nil
}

// signatureHeaders checks a signed request's headers before its body is read.
func (s *Server) signatureHeaders(r *http.Request, tok *Token) (string, error) {
	_, _, reason, err := checkSignatureHeaders(r.Header.Values(HeaderTimestamp), r.Header.Values(HeaderSignature), s.cfg.Now(), s.cfg.SignatureSkew)
	if reason == "missing" {
		err = fmt.Errorf("token %s requires signed requests: send %s and %s", tok.ID, HeaderTimestamp, HeaderSignature)
	}
	return reason, err
}

// verifySignature checks a signed request and records it against replay; the reason
// names the failure for metrics.
func (s *Server) verifySignature(r *http.Request, tok *Token, body []byte) (string, error) {
	id, reason, err := checkSignature(signedRequest{
		timestamps: r.Header.Values(HeaderTimestamp), signatures: r.Header.Values(HeaderSignature),
		method: r.Method, pathWithQuery: r.URL.RequestURI(), body: body,
	}, tok.Secrets, s.cfg.Now(), s.cfg.SignatureSkew)
	if err != nil {
		if reason == "missing" {
			err = fmt.Errorf("token %s requires signed requests: send %s and %s", tok.ID, HeaderTimestamp, HeaderSignature)
		}
		return reason, err
	}
	ok, err := s.deps.Redis.SetNX(r.Context(), s.keys.signature(tok.ID, hex.EncodeToString(id[:])), 1, 2*s.cfg.SignatureSkew+time.Second).Result()
	if err != nil {
		return "error", fmt.Errorf("signature replay check unavailable: %w", err)
	}
	if !ok {
		return "replay", errors.New("signed request already used: sign each request afresh (a new timestamp or body)")
	}
	return "", nil
}

// truncate cuts s to at most n bytes, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
