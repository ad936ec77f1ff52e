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
// empty body for requests without one). The signature header may hold several
// comma-separated v1= values; one valid value is enough, which lets a client sign with
// both secrets during a rotation. The timestamp must be within Config.SignatureSkew of
// the server's clock, and each signature is accepted once: it is remembered in Redis
// (SET NX with a TTL of twice the skew window) until it could no longer be valid.
const (
	HeaderTimestamp = "X-Tickstash-Timestamp"
	HeaderSignature = "X-Tickstash-Signature"
)

// Sign returns the X-Tickstash-Signature value of a request: the client's half of the
// scheme above, used by tests, the bench and Go clients.
func Sign(secret, method, pathWithQuery string, ts time.Time, body []byte) string {
	return "v1=" + hex.EncodeToString(signature(secret, method, pathWithQuery, strconv.FormatInt(ts.Unix(), 10), body))
}

func signature(secret, method, pathWithQuery, ts string, body []byte) []byte {
	bh := sha256.Sum256(body)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v1\n" + ts + "\n" + method + "\n" + pathWithQuery + "\n" + hex.EncodeToString(bh[:])))
	return mac.Sum(nil)
}

// verifySignature checks a signed request; the reason names the failure for metrics.
func (s *Server) verifySignature(r *http.Request, tok *Token, body []byte) (string, error) {
	tsHeader, sigHeader := r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature)
	if tsHeader == "" || sigHeader == "" {
		return "missing", fmt.Errorf("token %s requires signed requests: send %s and %s", tok.ID, HeaderTimestamp, HeaderSignature)
	}
	secs, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return "malformed", fmt.Errorf("%s %q: want Unix seconds", HeaderTimestamp, tsHeader)
	}
	skew := s.cfg.Now().Sub(time.Unix(secs, 0))
	if skew > s.cfg.SignatureSkew || -skew > s.cfg.SignatureSkew {
		return "stale", fmt.Errorf("%s is %v away from the server's clock (window ±%v)", HeaderTimestamp, skew.Round(time.Second), s.cfg.SignatureSkew)
	}
	var matched string
	for _, part := range strings.Split(sigHeader, ",") {
		v, ok := strings.CutPrefix(strings.TrimSpace(part), "v1=")
		got, err := hex.DecodeString(v)
		if !ok || err != nil || len(got) != sha256.Size {
			return "malformed", fmt.Errorf("%s: want v1=<64 hex digits>", HeaderSignature)
		}
		for _, secret := range tok.Secrets {
			if hmac.Equal(got, signature(secret, r.Method, r.URL.RequestURI(), tsHeader, body)) {
				matched = v
			}
		}
	}
	if matched == "" {
		return "mismatch", errors.New("signature does not match the request (method, path with query, timestamp, body)")
	}
	ok, err := s.deps.Redis.SetNX(r.Context(), s.keys.signature(tok.ID, matched), 1, 2*s.cfg.SignatureSkew+time.Second).Result()
	if err != nil {
		return "error", fmt.Errorf("signature replay check unavailable: %w", err)
	}
	if !ok {
		return "replay", errors.New("signature already used: sign each request afresh")
	}
	return "", nil
}
