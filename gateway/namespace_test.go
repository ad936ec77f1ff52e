package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tickstash/tickstash/gateway"
)

// redisJSON sends one JSON command and decodes {"result"} or {"error"}.
func (e *env) redisJSON(token, path string, cmd ...any) (int, any, string) {
	e.t.Helper()
	body, _ := json.Marshal(cmd)
	if path == "/redis/pipeline" || path == "/redis/multi-exec" {
		body, _ = json.Marshal(cmd[0])
	}
	r := e.do("POST", path, token, body)
	var out struct {
		Result any    `json:"result"`
		Error  string `json:"error"`
	}
	if path == "/redis" {
		if err := json.Unmarshal(r.body, &out); err != nil {
			e.t.Fatalf("%s: %q: %v", path, r.body, err)
		}
		return r.status, out.Result, out.Error
	}
	var arr any
	_ = json.Unmarshal(r.body, &arr)
	if m, ok := arr.(map[string]any); ok {
		s, _ := m["error"].(string)
		return r.status, nil, s
	}
	return r.status, arr, ""
}

func nsToken(e *env, ns string, class gateway.RedisClass, rate string) string {
	raw, _, _ := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeRedis}, Redis: class, Namespace: ns, Rate: rate})
	return raw
}

func sortedStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	sort.Strings(out)
	return out
}

// TestNamespaceIsADatabase: a namespaced token sees a database of its own with plain
// keys; keyspace-wide commands act on it alone, and FLUSHDB leaves other namespaces.
func TestNamespaceIsADatabase(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	app1, app1b, app2 := nsToken(e, "app1", gateway.RedisWrite, ""), nsToken(e, "app1", gateway.RedisRead, ""), nsToken(e, "app2", gateway.RedisWrite, "")
	for _, k := range []string{"a", "b", "c"} {
		if st, res, msg := e.redisJSON(app1, "/redis", "SET", k, "1"); st != 200 || res != "OK" {
			t.Fatalf("SET %s: %d %v %s", k, st, res, msg)
		}
	}
	e.redisJSON(app1, "/redis", "HSET", "h", "f", "v")
	e.redisJSON(app2, "/redis", "SET", "a", "2")
	e.redisJSON(app2, "/redis", "SET", "z", "2")
	// stored under the namespace prefix
	if v, err := e.rdb.Get(ctx, e.prefix+":rns:{app1}:a").Result(); err != nil || v != "1" {
		t.Fatalf("namespaced key: %q %v", v, err)
	}
	// tokens sharing a namespace share the database
	if _, res, _ := e.redisJSON(app1b, "/redis", "GET", "a"); res != "1" {
		t.Fatalf("second token of app1 reads %v", res)
	}
	if _, res, _ := e.redisJSON(app2, "/redis", "GET", "a"); res != "2" {
		t.Fatalf("app2 reads %v", res)
	}
	// multi-key commands (one slot on a cluster)
	if st, _, msg := e.redisJSON(app1, "/redis", "MSET", "m1", "x", "m2", "y"); st != 200 {
		t.Fatalf("MSET: %d %s", st, msg)
	}
	if _, res, _ := e.redisJSON(app1, "/redis", "MGET", "m1", "m2", "none"); !reflect.DeepEqual(res, []any{"x", "y", nil}) {
		t.Fatalf("MGET: %v", res)
	}
	want := []string{"a", "b", "c", "h", "m1", "m2"}
	if _, res, _ := e.redisJSON(app1, "/redis", "DBSIZE"); res != float64(len(want)) {
		t.Fatalf("DBSIZE %v, want %d", res, len(want))
	}
	if _, res, _ := e.redisJSON(app1, "/redis", "KEYS", "*"); !reflect.DeepEqual(sortedStrings(res), want) {
		t.Fatalf("KEYS * = %v", res)
	}
	if _, res, _ := e.redisJSON(app1, "/redis", "KEYS", "m*"); !reflect.DeepEqual(sortedStrings(res), []string{"m1", "m2"}) {
		t.Fatalf("KEYS m* = %v", res)
	}
	// SCAN to the end, with and without MATCH, and with TYPE
	scanAll := func(extra ...any) []string {
		var got []string
		cursor := "0"
		for {
			st, res, msg := e.redisJSON(app1, "/redis", append([]any{"SCAN", cursor}, extra...)...)
			if st != 200 {
				t.Fatalf("SCAN: %d %s", st, msg)
			}
			a := res.([]any)
			got = append(got, sortedStrings(append(a[1].([]any), []any{}...))...)
			if cursor = a[0].(string); cursor == "0" {
				sort.Strings(got)
				return got
			}
		}
	}
	if got := scanAll("COUNT", 2); !reflect.DeepEqual(got, want) {
		t.Fatalf("SCAN = %v", got)
	}
	if got := scanAll("MATCH", "[ab]", "COUNT", 1000); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Fatalf("SCAN MATCH = %v", got)
	}
	if got := scanAll("TYPE", "hash"); !reflect.DeepEqual(got, []string{"h"}) {
		t.Fatalf("SCAN TYPE hash = %v", got)
	}
	if _, res, _ := e.redisJSON(app1, "/redis", "RANDOMKEY"); !strings.Contains(strings.Join(want, " "), fmt.Sprint(res)) || res == nil {
		t.Fatalf("RANDOMKEY %v", res)
	}
	// a pipeline mixes keyspace commands with others, in order
	if st, res, _ := e.redisJSON(app1, "/redis/pipeline", [][]any{{"SET", "p", "1"}, {"DBSIZE"}, {"DEL", "p"}, {"DBSIZE"}}); st != 200 ||
		!reflect.DeepEqual(res, []any{map[string]any{"result": "OK"}, map[string]any{"result": float64(7)}, map[string]any{"result": float64(1)}, map[string]any{"result": float64(6)}}) {
		t.Fatalf("pipeline: %d %v", st, res)
	}
	// read-only tokens may not flush
	if st, _, msg := e.redisJSON(app1b, "/redis", "FLUSHDB"); st != 403 || !strings.Contains(msg, "may only read") {
		t.Fatalf("read-only FLUSHDB: %d %s", st, msg)
	}
	if st, res, msg := e.redisJSON(app1, "/redis", "FLUSHDB"); st != 200 || res != "OK" {
		t.Fatalf("FLUSHDB: %d %v %s", st, res, msg)
	}
	if _, res, _ := e.redisJSON(app1, "/redis", "DBSIZE"); res != float64(0) {
		t.Fatalf("DBSIZE after FLUSHDB %v", res)
	}
	if _, res, _ := e.redisJSON(app1, "/redis", "RANDOMKEY"); res != nil {
		t.Fatalf("RANDOMKEY of an empty namespace %v", res)
	}
	if _, res, _ := e.redisJSON(app2, "/redis", "KEYS", "*"); !reflect.DeepEqual(sortedStrings(res), []string{"a", "z"}) {
		t.Fatalf("FLUSHDB of app1 touched app2: %v", res)
	}
	if st, _, _ := e.redisJSON(app2, "/redis", "FLUSHALL", "ASYNC"); st != 200 {
		t.Fatal("FLUSHALL ASYNC")
	}
	if _, res, _ := e.redisJSON(app2, "/redis", "DBSIZE"); res != float64(0) {
		t.Fatalf("DBSIZE after FLUSHALL %v", res)
	}
	// tickstash's own keys survived both flushes
	if n, _ := e.rdb.Exists(ctx, e.prefix+":gw:tokens").Result(); n != 1 {
		t.Fatal("FLUSHALL of a namespace deleted the token index")
	}
	// keyspace commands are refused in a transaction, and for key-prefix tokens
	if st, _, msg := e.redisJSON(app1, "/redis/multi-exec", [][]any{{"SET", "x", "1"}, {"KEYS", "*"}}); st != 403 || !strings.Contains(msg, "EXECABORT") {
		t.Fatalf("KEYS in multi-exec: %d %s", st, msg)
	}
}

// TestNamespaceReplies: key names in replies are the client's own.
func TestNamespaceReplies(t *testing.T) {
	e := start(t, nil)
	tok := nsToken(e, "app1", gateway.RedisWrite, "")
	e.redisJSON(tok, "/redis", "RPUSH", "l1", "x", "y")
	if _, res, msg := e.redisJSON(tok, "/redis", "LMPOP", 2, "none", "l1", "LEFT"); !reflect.DeepEqual(res, []any{"l1", []any{"x"}}) {
		t.Fatalf("LMPOP %v %s", res, msg)
	}
	e.redisJSON(tok, "/redis", "ZADD", "z1", 1, "m")
	if _, res, msg := e.redisJSON(tok, "/redis", "ZMPOP", 1, "z1", "MIN"); !reflect.DeepEqual(res, []any{"z1", []any{[]any{"m", "1"}}}) {
		t.Fatalf("ZMPOP %v %s", res, msg)
	}
	e.redisJSON(tok, "/redis", "XADD", "s1", "1-1", "f", "v")
	if _, res, msg := e.redisJSON(tok, "/redis", "XREAD", "STREAMS", "s1", "0"); !reflect.DeepEqual(res, []any{[]any{"s1", []any{[]any{"1-1", []any{"f", "v"}}}}}) {
		t.Fatalf("XREAD %v %s", res, msg)
	}
	// consumer groups (issue #13)
	steps := []struct {
		cmd  []any
		want any
	}{
		{[]any{"XGROUP", "CREATE", "s1", "g", "0"}, "OK"},
		{[]any{"XGROUP", "CREATECONSUMER", "s1", "g", "c2"}, float64(1)},
		{[]any{"XREADGROUP", "GROUP", "g", "c", "COUNT", 10, "STREAMS", "s1", ">"}, []any{[]any{"s1", []any{[]any{"1-1", []any{"f", "v"}}}}}},
		{[]any{"XPENDING", "s1", "g"}, []any{float64(1), "1-1", "1-1", []any{[]any{"c", "1"}}}},
		{[]any{"XCLAIM", "s1", "g", "c2", 0, "1-1", "JUSTID"}, []any{"1-1"}},
		{[]any{"XAUTOCLAIM", "s1", "g", "c", 0, "0", "JUSTID"}, []any{"0-0", []any{"1-1"}, []any{}}},
		{[]any{"XACK", "s1", "g", "1-1"}, float64(1)},
		{[]any{"XSETID", "s1", "5-0"}, "OK"},
		{[]any{"XGROUP", "SETID", "s1", "g", "$"}, "OK"},
		{[]any{"XGROUP", "DELCONSUMER", "s1", "g", "c2"}, float64(0)},
		{[]any{"XGROUP", "DESTROY", "s1", "g"}, float64(1)},
	}
	for _, s := range steps {
		st, res, msg := e.redisJSON(tok, "/redis", s.cmd...)
		if st != 200 || !reflect.DeepEqual(res, s.want) {
			t.Fatalf("%v: %d %#v %s, want %#v", s.cmd, st, res, msg, s.want)
		}
	}
	if _, res, _ := e.redisJSON(tok, "/redis", "XINFO", "STREAM", "s1"); res == nil {
		t.Fatal("XINFO STREAM answered nothing")
	}
	if st, _, msg := e.redisJSON(tok, "/redis", "XREADGROUP", "GROUP", "g", "c", "BLOCK", 0, "STREAMS", "s1", ">"); st != 403 || !strings.Contains(msg, "BLOCK") {
		t.Fatalf("XREADGROUP BLOCK: %d %s", st, msg)
	}
	if st, _, _ := e.redisJSON(tok, "/redis", "XINFO", "HELP"); st != 200 {
		t.Fatal("XINFO HELP")
	}
}

// TestRedisFindings are the findings of issue #13, each a regression test.
func TestRedisFindings(t *testing.T) {
	e := start(t, func(_ *gateway.Deps, c *gateway.Config) { c.RedisMaxValueBytes = 4096 })
	ctx := context.Background()
	tok := nsToken(e, "app1", gateway.RedisWrite, "")
	p := e.appPrefix()
	pfx, _, _ := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeRedis}, Redis: gateway.RedisWrite, KeyPrefixes: []string{p}})

	t.Run("prefixes overlapping the store are refused", func(t *testing.T) {
		for _, bad := range []string{e.prefix, e.prefix[:1], e.prefix + ":", e.prefix + ":gw:", ""} {
			_, _, _, err := e.srv.Tokens().Create(ctx, gateway.TokenSpec{Name: "x", TTL: time.Hour, Scopes: []gateway.Scope{gateway.ScopeRedis},
				Redis: gateway.RedisWrite, KeyPrefixes: []string{bad}})
			if !errors.Is(err, gateway.ErrInvalidTokenSpec) {
				t.Errorf("prefix %q: %v", bad, err)
			}
		}
		for _, spec := range []gateway.TokenSpec{
			{Name: "x", TTL: time.Hour, Scopes: []gateway.Scope{gateway.ScopeRedis}, Redis: gateway.RedisWrite},
			{Name: "x", TTL: time.Hour, Scopes: []gateway.Scope{gateway.ScopeRedis}, Redis: gateway.RedisWrite, Namespace: "a", KeyPrefixes: []string{"b:"}},
			{Name: "x", TTL: time.Hour, Scopes: []gateway.Scope{gateway.ScopeRedis}, Redis: gateway.RedisWrite, Namespace: "a*b"},
			{Name: "x", TTL: time.Hour, Scopes: []gateway.Scope{gateway.ScopeRedis}, Redis: gateway.RedisWrite, Namespace: "{a}"},
		} {
			if _, _, _, err := e.srv.Tokens().Create(ctx, spec); !errors.Is(err, gateway.ErrInvalidTokenSpec) {
				t.Errorf("%+v: %v", spec, err)
			}
		}
	})
	t.Run("no key under the store prefix", func(t *testing.T) {
		forged := e.prefix + ":gw:tok:" + strings.Repeat("0", 64)
		for _, tk := range []string{tok, pfx} {
			for _, cmd := range [][]any{{"GET", e.prefix + ":gw:tokens"}, {"HSET", forged, "id", "tok_x"}, {"EVAL", "return 1", 1, forged}} {
				if st, _, msg := e.redisJSON(tk, "/redis", cmd...); st != 403 {
					t.Errorf("%v: %d %s", cmd, st, msg)
				}
			}
		}
		if st, _, _ := e.redisJSON(pfx, "/redis", "SCAN", "0", "MATCH", e.prefix+":*"); st != 403 {
			t.Errorf("SCAN MATCH the store prefix: %d", st)
		}
		if n, _ := e.rdb.Exists(ctx, forged).Result(); n != 0 {
			t.Fatal("a forged token record was written")
		}
	})
	t.Run("database arguments", func(t *testing.T) {
		e.redisJSON(tok, "/redis", "SET", "src", "v")
		for _, cmd := range [][]any{{"COPY", "src", "dst", "DB", 1}, {"COPY", "src", "dst", "REPLACE", "db", "1"}, {"MOVE", "src", 1}, {"SELECT", 1}, {"SWAPDB", 0, 1}} {
			if st, _, msg := e.redisJSON(tok, "/redis", cmd...); st != 403 || !strings.Contains(msg, "database") {
				t.Errorf("%v: %d %s", cmd, st, msg)
			}
		}
		if st, res, _ := e.redisJSON(tok, "/redis", "COPY", "src", "dst"); st != 200 || res != float64(1) {
			t.Errorf("COPY in the namespace: %d %v", st, res)
		}
	})
	t.Run("value growth is capped", func(t *testing.T) {
		for _, cmd := range [][]any{
			{"SETRANGE", "big", 536870000, "x"}, {"SETBIT", "big", 4294967295, 1}, {"SETBIT", "big", 4096 * 8, 1},
			{"BITFIELD", "big", "SET", "u8", "#999999999", 1}, {"BITFIELD", "big", "INCRBY", "i64", 40000, 1},
			{"APPEND", "big", strings.Repeat("x", 4097)}, {"SET", "big", strings.Repeat("x", 4097)},
		} {
			if st, _, msg := e.redisJSON(tok, "/redis", cmd...); st != 400 || !strings.Contains(msg, "--redis-max-value-bytes") {
				t.Errorf("%v: %d %s", cmd[:3], st, msg)
			}
		}
		if n, _ := e.rdb.Exists(ctx, e.prefix+":rns:{app1}:big").Result(); n != 0 {
			t.Fatal("a capped command wrote its value")
		}
		if st, _, msg := e.redisJSON(tok, "/redis", "SETBIT", "small", 4095*8, 1); st != 200 {
			t.Fatalf("SETBIT within the cap: %d %s", st, msg)
		}
	})
	t.Run("booleans", func(t *testing.T) {
		if st, _, msg := e.redisJSON(tok, "/redis", "SET", "b", true); st != 200 {
			t.Fatalf("SET true: %d %s", st, msg)
		}
		e.redisJSON(tok, "/redis", "HSET", "bh", "f", false)
		if _, res, _ := e.redisJSON(tok, "/redis", "GET", "b"); res != "true" {
			t.Fatalf("GET %v", res)
		}
		if _, res, _ := e.redisJSON(tok, "/redis", "HGET", "bh", "f"); res != "false" {
			t.Fatalf("HGET %v", res)
		}
	})
	t.Run("per-command pipeline results", func(t *testing.T) {
		st, res, _ := e.redisJSON(tok, "/redis/pipeline", [][]any{{"SET", "pa", "1"}, {"CONFIG", "GET", "*"}, {"INCR", "pa"}, {"SELECT", 1}, {"GET", "pa"}})
		a, _ := res.([]any)
		if st != 200 || len(a) != 5 || a[0].(map[string]any)["result"] != "OK" || a[2].(map[string]any)["result"] != float64(2) ||
			a[4].(map[string]any)["result"] != "2" || a[1].(map[string]any)["error"] == nil || a[3].(map[string]any)["error"] == nil {
			t.Fatalf("%d %v", st, res)
		}
	})
	t.Run("HEAD is not a command", func(t *testing.T) {
		e.redisJSON(tok, "/redis", "SET", "ctr", 5)
		if r := e.do("HEAD", "/redis/incr/ctr", tok, nil); r.status != 405 {
			t.Fatalf("HEAD: %d", r.status)
		}
		if _, res, _ := e.redisJSON(tok, "/redis", "GET", "ctr"); res != "5" {
			t.Fatalf("HEAD incremented the counter: %v", res)
		}
	})
	t.Run("sync token", func(t *testing.T) {
		r := e.do("POST", "/redis", tok, []byte(`["GET","x"]`))
		if r.header.Get("Upstash-Sync-Token") == "" {
			t.Fatal("no upstash-sync-token header")
		}
		r = e.do("POST", "/redis", tok, []byte(`["GET","x"]`), "Upstash-Sync-Token", "abc")
		if r.header.Get("Upstash-Sync-Token") != "abc" {
			t.Fatalf("sync token %q", r.header.Get("Upstash-Sync-Token"))
		}
	})
}

// TestRedisPipelineCost: a pipeline or transaction of N commands costs N.
func TestRedisPipelineCost(t *testing.T) {
	e := start(t, nil)
	tok := nsToken(e, "app1", gateway.RedisWrite, "fixed:5/h")
	big := make([][]any, 1000)
	for i := range big {
		big[i] = []any{"INCR", "n"}
	}
	if st, _, msg := e.redisJSON(tok, "/redis/pipeline", big); st != 429 || !strings.Contains(msg, "rate limit") {
		t.Fatalf("1000-command pipeline on 5/h: %d %s", st, msg)
	}
	if st, _, _ := e.redisJSON(tok, "/redis/multi-exec", [][]any{{"INCR", "n"}, {"INCR", "n"}}); st != 200 {
		t.Fatal("a 2-command transaction within the limit")
	}
	// 1 (the refused pipeline's first unit) + 2 spent; 3 more is beyond 5
	if st, _, _ := e.redisJSON(tok, "/redis/pipeline", [][]any{{"INCR", "n"}, {"INCR", "n"}, {"INCR", "n"}}); st != 429 {
		t.Fatalf("3 commands beyond the limit: %d", st)
	}
	if _, res, _ := e.redisJSON(nsToken(e, "app1", gateway.RedisRead, ""), "/redis", "GET", "n"); res != "2" {
		t.Fatalf("counter %v: refused pipelines ran", res)
	}
}

// TestNamespaceScriptsConfinedByRedis: an ordinary namespaced token runs scripts (as the
// namespace's Redis ACL user), and a script that reaches outside the namespace fails
// with NOPERM, whatever key it names.
func TestNamespaceScriptsConfinedByRedis(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	tok := nsToken(e, "app1", gateway.RedisWrite, "")
	other := nsToken(e, "app2", gateway.RedisWrite, "")
	e.redisJSON(other, "/redis", "SET", "secret", "app2's")
	if st, res, msg := e.redisJSON(tok, "/redis", "EVAL", "return redis.call('SET', KEYS[1], ARGV[1])", 1, "k", "v"); st != 200 || res != "OK" {
		t.Fatalf("EVAL in the namespace: %d %v %s", st, res, msg)
	}
	if _, res, _ := e.redisJSON(tok, "/redis", "GET", "k"); res != "v" {
		t.Fatalf("GET after EVAL: %v", res)
	}
	sha := ""
	if st, res, msg := e.redisJSON(tok, "/redis", "SCRIPT", "LOAD", "return redis.call('GET', KEYS[1])"); st != 200 {
		t.Fatalf("SCRIPT LOAD: %d %s", st, msg)
	} else {
		sha = res.(string)
	}
	if _, res, _ := e.redisJSON(tok, "/redis", "EVALSHA", sha, 1, "k"); res != "v" {
		t.Fatalf("EVALSHA: %v", res)
	}
	escapes := [][]any{
		{"EVAL", "return redis.call('GET', ARGV[1])", 0, e.prefix + ":gw:tokens"},
		{"EVAL", "return redis.call('HSET', ARGV[1], 'id', 'tok_forged')", 0, e.prefix + ":gw:tok:" + strings.Repeat("0", 64)},
		{"EVAL", "return redis.call('GET', ARGV[1])", 0, e.prefix + ":rns:{app2}:secret"},
		{"EVAL", "return redis.call('SET', 'plain', 'x')", 0},
		{"EVAL", "redis.call('SELECT', 1) return redis.call('SET', KEYS[1], 'x')", 1, "k"},
		{"EVAL", "return redis.call('FLUSHALL')", 0},
		{"EVAL", "return redis.call('CONFIG', 'GET', 'dir')", 0},
		{"EVAL", "return redis.call('KEYS', '*')", 0},
		{"EVAL", "return redis.call('SCAN', '0', 'COUNT', 1000)", 0},
		{"EVAL", "return redis.call('RANDOMKEY')", 0},
		{"EVAL", "return redis.call('COPY', KEYS[1], ARGV[1])", 1, "k", e.prefix + ":gw:copied"},
		{"EVAL", "return redis.call('RENAME', KEYS[1], ARGV[1])", 1, "k", "plain"},
		{"EVAL", "return redis.call('PUBLISH', 'chan', 'x')", 0},
		{"EVAL", "return redis.call('ACL', 'SETUSER', 'x', 'on', '>x', '~*', '+@all')", 0},
	}
	for _, cmd := range escapes {
		st, res, msg := e.redisJSON(tok, "/redis", cmd...)
		// Redis says NOPERM, or (from a script) "can't access" a key, "can't run" a
		// command, or that the command is "not allowed from script".
		if st != 400 || !strings.Contains(msg, "NOPERM") && !strings.Contains(msg, "can't access") &&
			!strings.Contains(msg, "can't run") && !strings.Contains(msg, "not allowed from script") {
			t.Errorf("escape %v: %d %v %s", cmd[1], st, res, msg)
		}
	}
	if n, _ := e.rdb.Exists(ctx, "plain", e.prefix+":gw:tok:"+strings.Repeat("0", 64)).Result(); n != 0 {
		t.Fatal("an escaping script wrote outside its namespace")
	}
	if _, res, _ := e.redisJSON(other, "/redis", "GET", "secret"); res != "app2's" {
		t.Fatalf("app2's key: %v", res)
	}
	// the user exists on every master
	for _, users := range aclUsers(t, e.rdb, e.prefix+":rns:") {
		if !slicesContains(users, e.prefix+":rns:app1") {
			t.Fatalf("ACL users on a master: %v", users)
		}
	}
	// deleted behind the gateway's back (a restarted server): set up again
	deleteACLUsers(t, e.rdb, e.prefix+":rns:")
	for i := 0; i < 3; i++ {
		if st, res, _ := e.redisJSON(tok, "/redis", "GET", "k"); st == 200 && res == "v" {
			return
		}
	}
	t.Fatal("the gateway did not set the ACL user up again")
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestNamespaceScriptsWithoutACL: where no ACL user confines a namespace, scripts are
// refused unless the token is trusted.
func TestNamespaceScriptsWithoutACL(t *testing.T) {
	e := start(t, func(_ *gateway.Deps, c *gateway.Config) { c.NoRedisACL = true })
	tok := nsToken(e, "app1", gateway.RedisWrite, "")
	if st, _, msg := e.redisJSON(tok, "/redis", "EVAL", "return 1", 0); st != 403 || !strings.Contains(msg, "script") {
		t.Fatalf("EVAL without ACL: %d %s", st, msg)
	}
	trusted, _, _ := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeRedis}, Redis: gateway.RedisWrite, Namespace: "app1", RedisScripts: true})
	if st, res, msg := e.redisJSON(trusted, "/redis", "EVAL", "return redis.call('SET', KEYS[1], 'x')", 1, "k"); st != 200 || res != "OK" {
		t.Fatalf("trusted EVAL: %d %v %s", st, res, msg)
	}
	if _, res, _ := e.redisJSON(tok, "/redis", "GET", "k"); res != "x" {
		t.Fatalf("GET %v", res)
	}
	if users := aclUsers(t, e.rdb, e.prefix+":"); len(users[0]) != 0 {
		t.Fatalf("ACL users made with NoRedisACL: %v", users)
	}
}

// TestNamespaceUserFollowsTokens: token create sets the namespace's ACL user up on every
// master; revoking the namespace's last usable token deletes it.
func TestNamespaceUserFollowsTokens(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	has := func() bool {
		all := true
		for _, users := range aclUsers(t, e.rdb, e.prefix+":rns:") {
			all = all && slicesContains(users, e.prefix+":rns:app1")
		}
		return all
	}
	_, _, t1 := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeRedis}, Redis: gateway.RedisWrite, Namespace: "app1"})
	if !has() {
		t.Fatal("token create did not set the ACL user up on every master")
	}
	raw2, _, t2 := e.token(gateway.TokenSpec{Scopes: []gateway.Scope{gateway.ScopeRedis}, Redis: gateway.RedisWrite, Namespace: "app1"})
	if err := e.srv.Tokens().Revoke(ctx, t1.ID); err != nil {
		t.Fatal(err)
	}
	if !has() {
		t.Fatal("revoking one of two tokens deleted the namespace's user")
	}
	if st, _, msg := e.redisJSON(raw2, "/redis", "SET", "k", "v"); st != 200 {
		t.Fatalf("the other token: %d %s", st, msg)
	}
	if err := e.srv.Tokens().Revoke(ctx, t2.ID); err != nil {
		t.Fatal(err)
	}
	for _, users := range aclUsers(t, e.rdb, e.prefix+":rns:") {
		if len(users) != 0 {
			t.Fatalf("ACL users left after the last token was revoked: %v", users)
		}
	}
}

// TestStreamsKeywordAsAName: a group or consumer named "streams" is not taken for the
// STREAMS keyword, so the stream keys after the real one are namespaced.
func TestStreamsKeywordAsAName(t *testing.T) {
	e := start(t, nil)
	tok := nsToken(e, "app1", gateway.RedisWrite, "")
	e.redisJSON(tok, "/redis", "XADD", "s", "1-1", "f", "v")
	e.redisJSON(tok, "/redis", "XGROUP", "CREATE", "s", "streams", "0")
	want := []any{[]any{"s", []any{[]any{"1-1", []any{"f", "v"}}}}}
	if st, res, msg := e.redisJSON(tok, "/redis", "XREADGROUP", "GROUP", "streams", "streams", "COUNT", 5, "NOACK", "STREAMS", "s", ">"); st != 200 || !reflect.DeepEqual(res, want) {
		t.Fatalf("XREADGROUP GROUP streams streams: %d %v %s", st, res, msg)
	}
	if st, _, msg := e.redisJSON(tok, "/redis", "XREAD", "FOO", "STREAMS", "s", "0"); st != 400 || !strings.Contains(msg, "unexpected") {
		t.Fatalf("XREAD with an unknown option: %d %s", st, msg)
	}
}
