package gateway_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tickstash/tickstash/gateway"
)

func TestRedisREST(t *testing.T) {
	e := start(t, nil)
	p := e.appPrefix()
	rw, _, _ := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeRedis}, Redis: gateway.RedisWrite, KeyPrefixes: []string{p}})
	ro, _, _ := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeRedis}, Redis: gateway.RedisRead, KeyPrefixes: []string{p}})
	market, _, _ := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeMarketRead}})
	cases := []struct {
		name, method, path, token, body string
		hdr                             []string
		want                            int
		out                             string
	}{
		{"set via path and query", "POST", "/redis/set/" + p + "a/hello?EX=100", rw, "", nil, 200, `{"result":"OK"}`},
		{"get via path", "GET", "/redis/get/" + p + "a", rw, "", nil, 200, `{"result":"hello"}`},
		{"get base64", "GET", "/redis/get/" + p + "a", rw, "", []string{"Upstash-Encoding", "base64"}, 200, `{"result":"aGVsbG8="}`},
		{"post body is the value", "POST", "/redis/set/" + p + "b", rw, "a/b c", nil, 200, `{"result":"OK"}`},
		{"json command", "POST", "/redis", rw, `["GET","` + p + `b"]`, nil, 200, `{"result":"a/b c"}`},
		{"token as query", "GET", "/redis/get/" + p + "b?_token=" + rw, "", "", nil, 200, `{"result":"a/b c"}`},
		{"missing", "POST", "/redis", rw, `["GET","` + p + `none"]`, nil, 200, `{"result":null}`},
		{"command error", "POST", "/redis", rw, `["INCR","` + p + `b"]`, nil, 400, `{"error":"ERR value is not an integer or out of range"}`},
		{"pipeline", "POST", "/redis/pipeline", rw, `[["INCR","` + p + `n"],["INCR","` + p + `b"],["GET","` + p + `n"]]`, nil, 200,
			`[{"result":1},{"error":"ERR value is not an integer or out of range"},{"result":"1"}]`},
		{"multi-exec", "POST", "/redis/multi-exec", rw, `[["INCR","` + p + `n"],["HSET","` + p + `h","f","v"],["HGETALL","` + p + `h"]]`, nil, 200,
			`[{"result":2},{"result":1},{"result":["f","v"]}]`},
		{"no token", "POST", "/redis", "", `["GET","` + p + `a"]`, nil, 401, `{"error":"no token: send Authorization: Bearer <token>"}`},
		{"no redis scope", "POST", "/redis", market, `["GET","` + p + `a"]`, nil, 403, "lacks the scope redis"},
		{"read-only token writes", "POST", "/redis", ro, `["SET","` + p + `a","x"]`, nil, 403, "may only read"},
		{"read-only token reads", "POST", "/redis", ro, `["GET","` + p + `a"]`, nil, 200, `{"result":"hello"}`},
		{"key outside prefix", "POST", "/redis", rw, `["GET","other"]`, nil, 403, "outside this token's key prefixes"},
		{"second key outside", "POST", "/redis", rw, `["MSET","` + p + `x","1","other","2"]`, nil, 403, "outside"},
		{"flushall", "POST", "/redis", rw, `["FLUSHALL"]`, nil, 403, "not allowed"},
		{"config", "GET", "/redis/config/get/maxmemory", rw, "", nil, 403, "not allowed"},
		{"keys", "POST", "/redis", rw, `["KEYS","*"]`, nil, 403, "not allowed"},
		{"blpop", "POST", "/redis", rw, `["BLPOP","` + p + `l","0"]`, nil, 403, "not allowed"},
		{"xread block", "POST", "/redis", rw, `["XREAD","BLOCK","0","STREAMS","` + p + `s","$"]`, nil, 403, "BLOCK"},
		{"eval without scripts", "POST", "/redis", rw, `["EVAL","return 1","0"]`, nil, 403, "--redis-scripts"},
		{"scan without match", "POST", "/redis", rw, `["SCAN","0"]`, nil, 403, "MATCH"},
		{"scan under prefix", "POST", "/redis", rw, `["SCAN","0","MATCH","` + p + `*","COUNT","1000000"]`, nil, 200, `"result":["0",`},
		{"pipeline with a forbidden command", "POST", "/redis/pipeline", rw, `[["SET","` + p + `z","1"],["FLUSHDB"]]`, nil, 200, `[{"result":"OK"},{"error":"ERR command \"flushdb\" is not allowed`},
		{"multi-exec with a forbidden command", "POST", "/redis/multi-exec", rw, `[["SET","` + p + `zz","1"],["FLUSHDB"]]`, nil, 403, "EXECABORT"},
		{"malformed", "POST", "/redis", rw, `["GET",`, nil, 400, "JSON array"},
		{"wrong type", "POST", "/redis", rw, `["GET",{"a":1}]`, nil, 400, "strings, numbers or booleans"},
		{"empty", "POST", "/redis", rw, `[]`, nil, 400, "empty command"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body []byte
			if c.body != "" {
				body = []byte(c.body)
			}
			r := e.do(c.method, c.path, c.token, body, c.hdr...)
			if r.status != c.want || !strings.Contains(string(r.body), c.out) {
				t.Fatalf("%d %s, want %d with %s", r.status, r.body, c.want, c.out)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
		})
	}
	if e.onCluster() {
		// Keys of one transaction in different slots: refused with a clear message
		// before anything runs.
		untagged := e.prefix + "-app:"
		tok, _, _ := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeRedis}, Redis: gateway.RedisWrite, KeyPrefixes: []string{untagged}})
		r := e.do("POST", "/redis/multi-exec", tok, []byte(`[["SET","`+untagged+`a","1"],["SET","`+untagged+`b","2"],["SET","`+untagged+`c","3"]]`))
		if r.status != 400 || !strings.Contains(string(r.body), "must hash to one Redis Cluster slot") {
			t.Fatalf("cross-slot multi-exec: %d %s", r.status, r.body)
		}
		if n, _ := e.rdb.Exists(context.Background(), untagged+"a", untagged+"b", untagged+"c").Result(); n != 0 {
			t.Fatalf("a refused cross-slot multi-exec wrote %d keys", n)
		}
	}
	if n, _ := e.rdb.Exists(context.Background(), p+"z").Result(); n != 1 {
		t.Fatal("a pipeline with a refused command did not run its allowed part")
	}
	if n, _ := e.rdb.Exists(context.Background(), p+"zz").Result(); n != 0 {
		t.Fatal("a refused transaction wrote its allowed part")
	}
	entries, _ := gateway.NewAuditLog(e.rdb, e.prefix).Last(context.Background(), 100)
	var denied, writes int
	for _, en := range entries {
		if en.Denial != "" {
			denied++
		} else if en.Route == "POST /redis/{command...}" || en.Route == "POST /redis/multi-exec" {
			writes++
		}
	}
	if denied < 10 || writes < 2 {
		t.Fatalf("audit: %d denials, %d writes: %+v", denied, writes, entries)
	}
}
