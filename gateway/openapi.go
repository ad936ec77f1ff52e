package gateway

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

var pathParam = regexp.MustCompile(`\{([a-z]+)(\.\.\.)?\}`)

// OpenAPI returns the OpenAPI 3.1 document of the server's routes, built from the same
// route table that registers them.
func (s *Server) OpenAPI() map[string]any {
	paths := map[string]any{}
	for i := range s.routes {
		rt := &s.routes[i]
		p := pathParam.ReplaceAllString(rt.path, "{$1}")
		item, _ := paths[p].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[p] = item
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range rt.params {
			params = append(params, map[string]any{"name": q.name, "in": "query", "required": q.required,
				"description": q.desc, "schema": map[string]any{"type": q.typ}})
		}
		op := map[string]any{
			"summary":     rt.summary,
			"operationId": strings.ToLower(rt.method) + strings.NewReplacer("/", "_", "{", "", "}", "", ".", "", "-", "_").Replace(p),
			"tags":        []string{rt.tag},
			"responses":   responsesOf(rt),
		}
		if len(params) > 0 {
			op["parameters"] = params
		}
		if rt.scope != "" {
			op["security"] = []any{map[string]any{"bearer": []string{}}}
			op["x-scope"] = string(rt.scope)
		}
		if rt.body != "" {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/" + rt.body}}}}
		}
		item[strings.ToLower(rt.method)] = op
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "tickstash gateway", "version": "1",
			"description": "Market data, analysis jobs, signals, leaderboards, sessions, state, flags and an Upstash-compatible Redis REST endpoint. " +
				"Errors are application/problem+json (RFC 9457) except on /redis, which answers {\"error\": ...}. " +
				"Tokens created with signing must sign every request: see the X-Tickstash-Signature header."},
		"paths": paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
			"schemas":         schemas,
		},
	}
}

func responsesOf(rt *route) map[string]any {
	problem := map[string]any{"content": map[string]any{"application/problem+json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Problem"}}}}
	if rt.upstash {
		problem = map[string]any{"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/RedisReply"}}}}
	}
	ok := map[string]any{"description": "OK", "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}}
	if rt.stream {
		ok = map[string]any{"description": "A stream of Server-Sent Events", "content": map[string]any{"text/event-stream": map[string]any{"schema": map[string]any{"type": "string"}}}}
	}
	if rt.upstash {
		ok = map[string]any{"description": "Result(s)", "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/RedisReply"}}}}
	}
	out := map[string]any{"200": ok, "400": with(problem, "Bad input"), "404": with(problem, "Not found"), "413": with(problem, "Body too large")}
	if rt.scope != "" {
		out["401"] = with(problem, "Missing, unknown, expired or revoked token, or a bad signature")
		out["403"] = with(problem, "The token lacks the scope (or, on /redis, the command or key is refused)")
		out["429"] = with(problem, "Rate limited, or too many refused requests without a token from this address; see Retry-After (and RateLimit)")
		out["503"] = with(problem, "Backend unavailable or not configured")
		if rt.stream {
			out["429"] = with(problem, "Rate limited, or the token's or the server's cap of open streams is reached; see Retry-After")
		}
	}
	for _, code := range rt.errs {
		out[strconv.Itoa(code)] = with(problem, http.StatusText(code))
	}
	if rt.status != 0 && rt.status != http.StatusOK {
		desc := http.StatusText(rt.status)
		if rt.status == http.StatusNoContent {
			out[strconv.Itoa(rt.status)] = map[string]any{"description": desc}
		} else {
			out[strconv.Itoa(rt.status)] = with(ok, desc)
		}
		delete(out, "200")
	}
	return out
}

func with(base map[string]any, desc string) map[string]any {
	out := map[string]any{"description": desc}
	for k, v := range base {
		out[k] = v
	}
	return out
}

var schemas = map[string]any{
	"Problem": map[string]any{"type": "object", "properties": map[string]any{
		"type": str, "title": str, "status": map[string]any{"type": "integer"}, "detail": str, "instance": str, "request_id": str}},
	"JobSpec": map[string]any{"type": "object", "required": []string{"exchange", "symbol", "interval"}, "properties": map[string]any{
		"exchange": str, "symbol": str, "interval": str, "analyzer": str, "watermark": map[string]any{"type": "string", "format": "date-time"}}},
	"Score": map[string]any{"type": "object", "required": []string{"member", "score"}, "properties": map[string]any{
		"member": str, "score": decimalSchema,
		"op": map[string]any{"type": "string", "enum": []string{"increment", "set"}, "description": "increment (default) adds score; set replaces the value"}}},
	"PnLReport": map[string]any{"type": "object", "required": []string{"user", "report_id", "pnl"}, "properties": map[string]any{
		"user": str, "report_id": map[string]any{"type": "string", "description": "idempotency key: a report with a known id is not counted again"},
		"pnl": decimalSchema}},
	"Session": map[string]any{"type": "object", "properties": map[string]any{"data": map[string]any{"description": "any JSON value; absent means null"}}},
	"State": map[string]any{"type": "object", "required": []string{"state"}, "properties": map[string]any{
		"version": map[string]any{"type": "integer", "description": "the version read (0: no document yet); or send If-Match"},
		"state":   map[string]any{"description": "the whole new document: any JSON value"}}},
	"RedisCommand": map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"type": []string{"string", "number"}},
		"description": "A command and its arguments, e.g. [\"SET\",\"k\",\"v\"]"},
	"RedisCommands": map[string]any{"type": "array", "items": map[string]any{"$ref": "#/components/schemas/RedisCommand"}},
	"RedisReply": map[string]any{"description": "{\"result\": ...} or {\"error\": \"...\"}, or an array of them for pipeline and multi-exec; with Upstash-Encoding: base64 strings are base64",
		"oneOf": []any{map[string]any{"type": "object"}, map[string]any{"type": "array"}}},
}

var (
	str           = map[string]any{"type": "string"}
	decimalSchema = map[string]any{"type": []string{"string", "number"}, "description": "decimal, read exactly"}
)

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s.OpenAPI())
}
