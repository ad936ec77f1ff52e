package gateway_test

// Regression tests of issue #11: each reproduces an attack on a gateway over the real
// Redis and checks that it now fails.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickstash/tickstash/gateway"
	"github.com/tickstash/tickstash/internal/metricstest"
)

// flipCase returns hex with the case of each letter flipped where mask's bit is set.
func flipCase(hex string, mask *big.Int) string {
	b := []byte(hex)
	for i, c := range b {
		if mask.Bit(i) == 1 && c >= 'a' && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// TestSignatureVariantsAcceptedOnce: one signed INCR, replayed with its signature
// respelled every way the header allows, increments once.
func TestSignatureVariantsAcceptedOnce(t *testing.T) {
	e := start(t, func(_ *gateway.Deps, c *gateway.Config) { c.SignatureSkew = time.Minute })
	p := e.appPrefix()
	raw, secret, tok := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeRedis}, Redis: gateway.RedisWrite,
		KeyPrefixes: []string{p}, Signing: true})
	body := []byte(`["INCR","` + p + `n"]`)
	at := e.clock.Now()
	ts := strconv.FormatInt(at.Unix(), 10)
	sig := strings.TrimPrefix(gateway.Sign(secret, "POST", "/redis", at, body), "v1=")
	other := strings.Repeat("0", 64)
	send := func(hdr ...string) resp {
		return e.do("POST", "/redis", raw, body, append([]string{gateway.HeaderTimestamp, ts}, hdr...)...)
	}
	if r := send(gateway.HeaderSignature, "v1="+sig); r.status != 200 || string(r.body) != "{\"result\":1}\n" {
		t.Fatalf("signed INCR: %d %s", r.status, r.body)
	}
	variants := []string{
		"v1=" + sig,
		"v1=" + strings.ToUpper(sig),
		" v1=" + sig + " ",
		"v1=" + sig + ",v1=" + sig,
		"v1=" + strings.ToUpper(sig) + ", v1=" + sig,
		"v1=" + other + ",v1=" + sig,
		"v1=" + sig + ",v1=" + other,
		"v1=" + sig + "\t,\tv1=" + strings.ToUpper(other),
	}
	for i := 0; i < 50; i++ { // the attack: 50 case variants
		mask, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
		variants = append(variants, "v1="+flipCase(sig, mask))
	}
	for _, v := range variants {
		r := send(gateway.HeaderSignature, v)
		if r.status != 401 || !strings.Contains(string(r.body), "already used") {
			t.Fatalf("variant %q: %d %s, want 401 already used", v, r.status, r.body)
		}
	}
	// Two header lines are refused, whatever they hold.
	req, _ := http.NewRequest("POST", e.url+"/redis", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+raw)
	req.Header.Set(gateway.HeaderTimestamp, ts)
	req.Header.Add(gateway.HeaderSignature, "v1="+sig)
	req.Header.Add(gateway.HeaderSignature, "v1="+other)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 401 {
		t.Fatalf("two signature headers: %v %v", res, err)
	} else {
		res.Body.Close()
	}

	// During a rotation a client signs with both secrets: that request, too, is taken
	// once, whichever of its values comes back and in whatever order.
	newSecret, err := e.srv.Tokens().RotateSecret(context.Background(), tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	at = at.Add(time.Second)
	ts = strconv.FormatInt(at.Unix(), 10)
	a := strings.TrimPrefix(gateway.Sign(newSecret, "POST", "/redis", at, body), "v1=")
	b := strings.TrimPrefix(gateway.Sign(secret, "POST", "/redis", at, body), "v1=")
	if r := send(gateway.HeaderSignature, "v1="+a+",v1="+b); r.status != 200 {
		t.Fatalf("signed with both secrets: %d %s", r.status, r.body)
	}
	for _, v := range []string{"v1=" + b + ",v1=" + a, "v1=" + b, "v1=" + a, "v1=" + strings.ToUpper(b)} {
		if r := send(gateway.HeaderSignature, v); r.status != 401 || !strings.Contains(string(r.body), "already used") {
			t.Fatalf("rotation variant %q: %d %s", v, r.status, r.body)
		}
	}
	if n, err := e.rdb.Get(context.Background(), p+"n").Int(); err != nil || n != 2 {
		t.Fatalf("counter %d (%v), want 2: a replay got through", n, err)
	}
	if got := metricstest.Counter(t, e.reg, "tickstash_gateway_signature_failures_total", "reason", "replay"); got != float64(len(variants)+4) {
		t.Fatalf("replay failures counted %v, want %d", got, len(variants)+4)
	}
}

// TestSignatureValuesBounded: 950 v1= values over a 1 MiB body are refused before any
// of them is checked, and so are three; two still work.
func TestSignatureValuesBounded(t *testing.T) {
	e := start(t, nil)
	p := e.appPrefix()
	raw, secret, _ := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeRedis}, Redis: gateway.RedisWrite,
		KeyPrefixes: []string{p}, Signing: true})
	prefix := `["SET","` + p + `big","`
	body := []byte(prefix + strings.Repeat("x", 1<<20-len(prefix)-2) + `"]`)
	at := e.clock.Now()
	good := gateway.Sign(secret, "POST", "/redis", at, body)
	junk := "v1=" + strings.Repeat("ab", 32)
	for _, n := range []int{950, 3} {
		vals := make([]string, n)
		for i := range vals {
			vals[i] = junk
		}
		vals[n-1] = good // even with the right one among them
		r := e.do("POST", "/redis", raw, body, gateway.HeaderTimestamp, strconv.FormatInt(at.Unix(), 10),
			gateway.HeaderSignature, strings.Join(vals, ","))
		if r.status != 401 || !strings.Contains(string(r.body), "at most 2") {
			t.Fatalf("%d values: %d %.200s", n, r.status, r.body)
		}
	}
	if n, _ := e.rdb.Exists(context.Background(), p+"big").Result(); n != 0 {
		t.Fatal("a refused request wrote")
	}
	r := e.do("POST", "/redis", raw, body, gateway.HeaderTimestamp, strconv.FormatInt(at.Unix(), 10),
		gateway.HeaderSignature, junk+","+good)
	if r.status != 200 {
		t.Fatalf("two values: %d %s", r.status, r.body)
	}
}

// forgedToken is a token-shaped credential that matches no token.
func forgedToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "tsk_" + base64.RawURLEncoding.EncodeToString(b)
}

// countsBy waits until the refusal counts of 127.0.0.1 and token with the given
// reasons (all when none is given) add up to want, and returns them by reason. Counts
// are written when their minute ends: the test clock is moved on for that.
func countsBy(t *testing.T, e *env, token string, want int64, reasons ...string) map[string]int64 {
	t.Helper()
	e.clock.Add(time.Minute)
	deadline := time.Now().Add(15 * time.Second)
	for {
		cs, err := gateway.NewAuditLog(e.rdb, e.prefix).Counts(context.Background(), 10_000)
		if err != nil {
			t.Fatal(err)
		}
		by := map[string]int64{}
		var sum int64
		for _, c := range cs {
			if c.Client == "127.0.0.1" && c.TokenID == token && (len(reasons) == 0 || slices.Contains(reasons, c.Reason)) {
				by[c.Reason] += c.Count
				sum += c.Count
			}
		}
		if sum == want {
			return by
		}
		if time.Now().After(deadline) {
			t.Fatalf("refusal counts for token %q add up to %d, want %d: %v", token, sum, want, by)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// flood sends n requests from workers goroutines and returns the statuses seen.
func flood(t *testing.T, e *env, n, workers int, mk func(i int) *http.Request) map[int]int {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	var next atomic.Int64
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				res, err := client.Do(mk(i))
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				mu.Lock()
				statuses[res.StatusCode]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return statuses
}

// TestTokenlessFloodEvictsNothing: the attack of the issue (a flood of token-less
// requests after a forged-token attempt) against audit streams bounded at 50 entries:
// the forged-token record and the record of a mutating request survive; the flood is
// counted per minute, costs one counts entry, and is answered 429 past its allowance;
// forged tokens from one address are recorded one by one only within their allowance;
// a valid token from the same address keeps working.
func TestTokenlessFloodEvictsNothing(t *testing.T) {
	jobs := &fakeJobs{}
	e := start(t, func(d *gateway.Deps, c *gateway.Config) {
		d.Jobs = jobs
		c.AuditMaxLen, c.AuditRefusalMaxLen = 50, 50
	})
	raw, _, tok := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeJobsWrite, gateway.ScopeMarketRead}})
	body := []byte(`{"exchange":"binance","symbol":"BTC-USDT","interval":"1m","analyzer":"default"}`)
	if r := e.do("POST", "/v1/jobs", raw, body, "X-Request-Id", "mutating-1"); r.status != 202 {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/jobs", forgedToken(), body, "X-Request-Id", "forged-1"); r.status != 401 {
		t.Fatalf("forged token: %d %s", r.status, r.body)
	}
	const n = 3000
	st := flood(t, e, n, 8, func(i int) *http.Request {
		r, _ := http.NewRequest("POST", e.url+"/v1/jobs", bytes.NewReader(body))
		if i%3 == 0 {
			r.Header.Set("Authorization", "Bearer not-a-token") // malformed: no lookup either
		}
		return r
	})
	if st[401] != 20 || st[429] != n-20 {
		t.Fatalf("statuses %v: want the allowance (20) answered 401, the rest 429", st)
	}
	ctx := context.Background()
	if l := e.rdb.XLen(ctx, e.prefix+":gw:{audit}").Val(); l != 1 {
		t.Fatalf("the authenticated audit stream holds %d entries, want the mutating request's only", l)
	}
	entries, err := gateway.NewAuditLog(e.rdb, e.prefix).Last(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].RequestID != "mutating-1" || entries[0].TokenID != tok.ID ||
		entries[1].RequestID != "forged-1" || !entries[1].Unauthenticated || entries[1].Denial != "token unknown" {
		t.Fatalf("entries after the flood: %+v", entries)
	}
	by := countsBy(t, e, "", n)
	if by["token missing"]+by["token malformed"] != 20 || by["throttled: token missing"]+by["throttled: token malformed"] != n-20 {
		t.Fatalf("counts %v", by)
	}
	if c, _ := e.rdb.XLen(ctx, e.prefix+":gw:{audit}:counts").Result(); c > 4 {
		t.Fatalf("the flood took %d count entries, want one per reason", c)
	}
	if got := metricstest.Counter(t, e.reg, "tickstash_gateway_clients_throttled_total"); got != n-20 {
		t.Fatalf("throttled counted %v", got)
	}

	// Forged tokens from one address: the first ones, up to its allowance (full again:
	// a minute went by), are recorded one by one, the rest only counted; the valid
	// token still works from the throttled address, and its writes are still recorded.
	st = flood(t, e, 100, 4, func(i int) *http.Request {
		r, _ := http.NewRequest("GET", e.url+"/v1/markets", nil)
		r.Header.Set("Authorization", "Bearer "+forgedToken())
		return r
	})
	if st[401] != 100 {
		t.Fatalf("forged tokens: %v", st)
	}
	if r := e.do("POST", "/v1/jobs", raw, body, "X-Request-Id", "mutating-2"); r.status != 202 {
		t.Fatalf("a valid token from a throttled address: %d %s", r.status, r.body)
	}
	if l := e.rdb.XLen(ctx, e.prefix+":gw:{audit}:anon").Val(); l != 1+20 {
		t.Fatalf("%d forged-token records, want forged-1 and the allowance of 20", l)
	}
	if by := countsBy(t, e, "", 80, "token unknown"); by["token unknown"] != 80 {
		t.Fatalf("forged tokens counted %v, want 80", by)
	}
	entries, _ = gateway.NewAuditLog(e.rdb, e.prefix).Last(ctx, 100)
	if entries[0].RequestID != "mutating-1" || entries[1].RequestID != "forged-1" || entries[len(entries)-1].RequestID != "mutating-2" {
		t.Fatalf("records evicted: first %+v, last %+v", entries[0], entries[len(entries)-1])
	}
}

// TestRefusalsOfATokenBounded: a token hammering past its rate limit gets its first
// refusals recorded one by one and the rest counted, so it cannot flush the records of
// other tokens out of the bounded stream either.
func TestRefusalsOfATokenBounded(t *testing.T) {
	e := start(t, func(_ *gateway.Deps, c *gateway.Config) { c.RefusalBurst = 5 })
	raw, _, tok := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeUsageRead}, Rate: "fixed:1/m"})
	st := flood(t, e, 60, 4, func(int) *http.Request {
		r, _ := http.NewRequest("GET", e.url+"/v1/usage", nil)
		r.Header.Set("Authorization", "Bearer "+raw)
		return r
	})
	if st[200] != 1 || st[429] != 59 {
		t.Fatalf("statuses %v", st)
	}
	if l := e.rdb.XLen(context.Background(), e.prefix+":gw:{audit}").Val(); l != 5 {
		t.Fatalf("%d refusal records of one token, want its allowance of 5", l)
	}
	by := countsBy(t, e, tok.ID, 54)
	if len(by) != 1 {
		t.Fatalf("counts %v", by)
	}
}

// TestAuditRetention: entries older than the retention are trimmed as new ones come,
// and the stream carries the retention as its TTL.
func TestAuditRetention(t *testing.T) {
	e := start(t, func(d *gateway.Deps, c *gateway.Config) {
		d.Jobs = &fakeJobs{}
		c.Now = time.Now // stream ids are Redis time: trim against the real clock
		c.AuditRetention = 2 * time.Second
	})
	raw, _, _ := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeJobsWrite}})
	body := []byte(`{"exchange":"binance","symbol":"BTC-USDT","interval":"1m","analyzer":"default"}`)
	ctx := context.Background()
	key := e.prefix + ":gw:{audit}"
	e.do("POST", "/v1/jobs", raw, body, "X-Request-Id", "old")
	first := e.rdb.XRange(ctx, key, "-", "+").Val()
	if len(first) != 1 {
		t.Fatalf("entries %v", first)
	}
	if ttl := e.rdb.PTTL(ctx, key).Val(); ttl <= 0 || ttl > 2*time.Second {
		t.Fatalf("TTL %v, want the retention", ttl)
	}
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		if r := e.do("POST", "/v1/jobs", raw, body, "X-Request-Id", fmt.Sprint("new-", i)); r.status != 202 {
			t.Fatalf("submit: %d", r.status)
		}
		msgs := e.rdb.XRange(ctx, key, "-", "+").Val()
		if len(msgs) > 0 && msgs[0].ID != first[0].ID {
			if last := msgs[len(msgs)-1]; last.Values["rid"] != fmt.Sprint("new-", i) {
				t.Fatalf("newest entry %v", last)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the entry older than the retention is still there after %d writes", i+1)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAuditMaxLen: the stream of authenticated requests stays near its hard bound
// (approximate trimming removes whole nodes of 100 entries).
func TestAuditMaxLen(t *testing.T) {
	e := start(t, func(_ *gateway.Deps, c *gateway.Config) { c.AuditMaxLen = 10 })
	p := e.appPrefix()
	raw, _, _ := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeRedis}, Redis: gateway.RedisWrite, KeyPrefixes: []string{p}})
	st := flood(t, e, 300, 4, func(i int) *http.Request {
		r, _ := http.NewRequest("POST", e.url+"/redis", strings.NewReader(`["INCR","`+p+`n"]`))
		r.Header.Set("Authorization", "Bearer "+raw)
		return r
	})
	if st[200] != 300 {
		t.Fatalf("statuses %v", st)
	}
	if l := e.rdb.XLen(context.Background(), e.prefix+":gw:{audit}").Val(); l > 10+100 {
		t.Fatalf("audit stream of %d entries, bound 10 (+ one node)", l)
	}
}

// TestRedisAuditTargets: the audit target of a /redis request names every write
// command with its keys and the refused command with its keys, within bounds.
func TestRedisAuditTargets(t *testing.T) {
	e := start(t, nil)
	p := e.appPrefix()
	raw, _, tok := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeRedis}, Redis: gateway.RedisWrite, KeyPrefixes: []string{p}})
	long := p + strings.Repeat("k", 300)
	var many []string
	for i := range 40 {
		many = append(many, fmt.Sprintf(`["SET","%sm%d","v"]`, p, i))
	}
	var manyKeys []string
	for i := range 12 {
		manyKeys = append(manyKeys, fmt.Sprintf(`"%sd%d"`, p, i))
	}
	cases := []struct {
		name, path, body string
		status           int
		want             string
	}{
		{"pipeline", "/redis/pipeline", `[["SET","` + p + `a","1"],["GET","` + p + `a"],["DEL","` + p + `b","` + p + `c"],["INCR","` + p + `n"]]`, 200,
			"4 commands: SET " + p + "a; DEL " + p + "b " + p + "c; INCR " + p + "n; +1 reads"},
		{"refused read", "/redis", `["GET","other:secret"]`, 403, "GET other:secret (refused)"},
		{"refused in a pipeline", "/redis/pipeline", `[["SET","` + p + `a","1"],["SET","other:x","v"],["FLUSHDB"]]`, 200,
			"3 commands: SET " + p + "a; SET other:x (refused); FLUSHDB"},
		{"admin command", "/redis", `["CONFIG","SET","dir","/tmp"]`, 403, "CONFIG SET (refused)"},
		{"key with a newline", "/redis", `["SET","` + p + `x\n2026 200 POST forged\u001b[2K","v"]`, 200, "SET " + p + "x\n2026 200 POST forged\x1b[2K"},
		{"long key", "/redis", `["SET","` + long + `","v"]`, 200, "SET " + long[:128] + "…(" + strconv.Itoa(len(long)) + " bytes)"},
		{"many commands", "/redis/pipeline", "[" + strings.Join(many, ",") + "]", 200, "; SET " + p + "m15 …+24 more"},
		{"many keys", "/redis", `["DEL",` + strings.Join(manyKeys, ",") + `]`, 200, "d7 …+4 keys"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rid := "target-" + strings.ReplaceAll(c.name, " ", "-")
			if r := e.do("POST", c.path, raw, []byte(c.body), "X-Request-Id", rid); r.status != c.status {
				t.Fatalf("%d %s", r.status, r.body)
			}
			entries, err := gateway.NewAuditLog(e.rdb, e.prefix).Last(context.Background(), 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, en := range entries {
				if en.RequestID == rid {
					if !strings.Contains(en.Target, c.want) || en.TokenID != tok.ID || len(en.Target) > 2048+3 {
						t.Fatalf("target %q, want it to contain %q", en.Target, c.want)
					}
					return
				}
			}
			t.Fatalf("no audit entry %s", rid)
		})
	}
}

// TestInvalidUTF8Refused: JSON bodies with invalid UTF-8 or half a surrogate pair are
// refused, on /redis and /v1, instead of being stored with U+FFFD; binary values still
// travel byte for byte through the path form and come back through base64.
func TestInvalidUTF8Refused(t *testing.T) {
	jobs := &fakeJobs{}
	e := start(t, func(d *gateway.Deps, _ *gateway.Config) { d.Jobs = jobs })
	p := e.appPrefix()
	raw, _, _ := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeRedis, gateway.ScopeJobsWrite}, Redis: gateway.RedisWrite, KeyPrefixes: []string{p}})
	ctx := context.Background()
	for _, c := range []struct{ name, path, body, want string }{
		{"raw byte", "/redis", "[\"SET\",\"" + p + "a\",\"x\xffy\"]", "not valid UTF-8 (byte 0xff"},
		{"raw byte in a key", "/redis/pipeline", "[[\"SET\",\"" + p + "\xc3\",\"v\"]]", "not valid UTF-8"},
		{"lone high surrogate", "/redis", `["SET","` + p + `a","\ud800x"]`, "half a surrogate pair"},
		{"lone low surrogate", "/redis/multi-exec", `[["SET","` + p + `a","\uDC00"]]`, "half a surrogate pair"},
		{"v1 body", "/v1/jobs", "{\"exchange\":\"binance\",\"symbol\":\"BTC-USDT\",\"interval\":\"1m\",\"analyzer\":\"d\xe9faut\"}", "not valid UTF-8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("POST", c.path, raw, []byte(c.body))
			if r.status != 400 || !strings.Contains(string(r.body), c.want) {
				t.Fatalf("%d %s, want 400 with %q", r.status, r.body, c.want)
			}
			if strings.HasPrefix(c.path, "/v1") && r.header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("Content-Type %q", r.header.Get("Content-Type"))
			}
		})
	}
	if n, _ := e.rdb.Exists(ctx, p+"a", p+"\xc3").Result(); n != 0 || jobs.n() != 0 {
		t.Fatal("a refused body was stored")
	}
	// A real surrogate pair and a literal U+FFFD are text, and stored as sent.
	if r := e.do("POST", "/redis", raw, []byte(`["SET","`+p+`a","\ud83d\ude00 \ufffd �"]`)); r.status != 200 {
		t.Fatalf("surrogate pair: %d %s", r.status, r.body)
	}
	if v := e.rdb.Get(ctx, p+"a").Val(); v != "😀 \ufffd \ufffd" {
		t.Fatalf("stored %q", v)
	}
	// Binary: the raw body of the path form, read back base64-encoded.
	bin := []byte{0, 0xff, 0xfe, '\n', 0xc3, '"', '\\'}
	if r := e.do("POST", "/redis/set/"+p+"bin", raw, bin); r.status != 200 {
		t.Fatalf("binary set: %d %s", r.status, r.body)
	}
	r := e.do("POST", "/redis", raw, []byte(`["GET","`+p+`bin"]`), "Upstash-Encoding", "base64")
	var out struct{ Result string }
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatalf("%s: %v", r.body, err)
	}
	if got, err := base64.StdEncoding.DecodeString(out.Result); err != nil || !bytes.Equal(got, bin) {
		t.Fatalf("binary read back %q (%v), want %q", got, err, bin)
	}
}

// TestForgedTokensFromManyAddresses: an attacker spreading forged tokens over many
// addresses gets each address's allowance recorded one by one only up to the bound
// across all addresses; the rest is counted per address.
func TestForgedTokensFromManyAddresses(t *testing.T) {
	e := start(t, func(_ *gateway.Deps, c *gateway.Config) { c.RefusalBurst, c.RefusalRecordsPerMinute = 5, 30 })
	const addrs, each = 20, 10
	var wg sync.WaitGroup
	var refused atomic.Int64
	for a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ip := net.IPv4(127, 0, 0, byte(2+a))
			tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}).DialContext}
			defer tr.CloseIdleConnections()
			for range each {
				r, _ := http.NewRequest("GET", e.url+"/v1/markets", nil)
				r.Header.Set("Authorization", "Bearer "+forgedToken())
				res, err := (&http.Client{Transport: tr}).Do(r)
				if err != nil {
					t.Error(err)
					return
				}
				res.Body.Close()
				if res.StatusCode == 401 {
					refused.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if refused.Load() != addrs*each {
		t.Fatalf("%d of %d forged tokens refused", refused.Load(), addrs*each)
	}
	ctx := context.Background()
	entries, err := gateway.NewAuditLog(e.rdb, e.prefix).Last(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, en := range entries {
		per[en.Client]++
		if !en.Unauthenticated || en.Denial != "token unknown" {
			t.Fatalf("entry %+v", en)
		}
	}
	if len(entries) != 30 {
		t.Fatalf("%d forged-token records, want the bound of 30 across addresses", len(entries))
	}
	for a, n := range per {
		if n > 5 {
			t.Fatalf("%s recorded %d times, beyond its allowance of 5", a, n)
		}
	}
	e.clock.Add(time.Minute)
	deadline := time.Now().Add(15 * time.Second)
	for {
		cs, _ := gateway.NewAuditLog(e.rdb, e.prefix).Counts(ctx, 1000)
		var sum int64
		clients := map[string]bool{}
		for _, c := range cs {
			if c.Reason == "token unknown" {
				sum += c.Count
				clients[c.Client] = true
			}
		}
		if sum == addrs*each-30 {
			if len(clients) != addrs {
				t.Fatalf("counts of %d addresses, want %d", len(clients), addrs)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("counted %d, want %d", sum, addrs*each-30)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAuditFollow: following the audit record sees new entries of both record streams,
// in order, and none written before it started.
func TestAuditFollow(t *testing.T) {
	e := start(t, func(d *gateway.Deps, _ *gateway.Config) { d.Jobs = &fakeJobs{} })
	raw, _, _ := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeJobsWrite}})
	body := []byte(`{"exchange":"binance","symbol":"BTC-USDT","interval":"1m","analyzer":"default"}`)
	e.do("POST", "/v1/jobs", raw, body, "X-Request-Id", "before")
	e.do("POST", "/v1/jobs", forgedToken(), body, "X-Request-Id", "before-anon")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan string, 10)
	started := make(chan struct{})
	go func() {
		log := gateway.NewAuditLog(e.rdb, e.prefix)
		close(started)
		_ = log.Follow(ctx, "$", func(en gateway.AuditEntry) error { got <- en.RequestID; return nil })
	}()
	<-started
	want := []string{"a1", "f1", "a2"}
	// Follow resolves "$" when it starts: send until the first entry shows, then the rest.
	for i := 0; ; i++ {
		e.do("POST", "/v1/jobs", raw, body, "X-Request-Id", fmt.Sprint("probe-", i))
		select {
		case id := <-got:
			if !strings.HasPrefix(id, "probe-") {
				t.Fatalf("followed %q, written before", id)
			}
		case <-time.After(200 * time.Millisecond):
			continue
		case <-ctx.Done():
			t.Fatal("nothing followed")
		}
		break
	}
	for len(got) > 0 {
		<-got
	}
	e.do("POST", "/v1/jobs", raw, body, "X-Request-Id", "a1")
	e.do("POST", "/v1/jobs", forgedToken(), body, "X-Request-Id", "f1")
	e.do("POST", "/v1/jobs", raw, body, "X-Request-Id", "a2")
	var seen []string
	for len(seen) < len(want) {
		select {
		case id := <-got:
			if !strings.HasPrefix(id, "probe-") {
				seen = append(seen, id)
			}
		case <-ctx.Done():
			t.Fatalf("followed %v, want %v", seen, want)
		}
	}
	if strings.Join(seen, " ") != strings.Join(want, " ") {
		t.Fatalf("followed %v, want %v", seen, want)
	}
}
