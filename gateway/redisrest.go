package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/internal/jsonerr"
	"github.com/tickstash/tickstash/ratelimit"
)

// The Redis REST endpoint speaks the protocol of Upstash's REST API, which the
// @upstash/redis and @upstash/ratelimit SDKs use:
//
//	POST /redis               body ["SET","k","v","EX",100]     -> {"result":"OK"}
//	GET|POST /redis/set/k/v?EX=100   (POST: the body, if any, is the last argument)
//	POST /redis/pipeline      body [["INCR","a"],["GET","b"]]  -> [{"result":1},{"error":"..."}]
//	POST /redis/multi-exec    the same, run in MULTI/EXEC
//
// The token comes as "Authorization: Bearer <token>" or the _token query parameter.
// With "Upstash-Encoding: base64" every string in a result is base64 (standard
// alphabet), so binary values survive JSON. Command errors answer 400 {"error":...};
// refused commands or keys 403; a bad token 401; all in the same {"error"} shape. In
// /redis/pipeline every command gets its own {"result"} or {"error"}; in
// /redis/multi-exec a refused command aborts the whole transaction (EXECABORT). A
// token's key mode (a namespace, or key prefixes) is in namespace.go.

func writeUpstashError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Length")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(map[string]string{"error": msg})
}

// decodeCommand decodes one command: a JSON array of strings, numbers and booleans
// (true and false become "true" and "false", as Upstash stores them).
func decodeCommand(raw json.RawMessage) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var vals []any
	if err := dec.Decode(&vals); err != nil {
		return nil, fmt.Errorf("ERR a command is a JSON array of strings, numbers and booleans: %v", err)
	}
	if len(vals) == 0 {
		return nil, errors.New("ERR empty command")
	}
	args := make([]string, len(vals))
	for i, v := range vals {
		switch v := v.(type) {
		case string:
			args[i] = v
		case bool: // the SDKs send redis.set(k, true) and hset fields as JSON booleans
			args[i] = strconv.FormatBool(v)
		case json.Number:
			args[i] = v.String()
		default:
			return nil, fmt.Errorf("ERR argument %d is %s: arguments are strings, numbers or booleans", i, jsonerr.Kind(reflect.TypeOf(v)))
		}
	}
	return args, nil
}

// DecodeCommands decodes the body of /redis (one = true: one command) or of
// /redis/pipeline and /redis/multi-exec (a JSON array of commands). A body that is not
// valid UTF-8, or holds a \u escape of half a surrogate pair, is an error: JSON strings
// carry text, and Go's decoder would silently store U+FFFD in place of such bytes.
// Binary values go as the raw body of the path form (POST /redis/set/<key>), which is
// taken byte for byte.
func DecodeCommands(body []byte, one bool) ([][]string, error) {
	if err := checkJSONText(body); err != nil {
		return nil, fmt.Errorf("ERR %v; send binary values as the raw body of the path form, e.g. POST /redis/set/<key>", err)
	}
	if one {
		args, err := decodeCommand(body)
		if err != nil {
			return nil, err
		}
		return [][]string{args}, nil
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, fmt.Errorf("ERR a pipeline is a JSON array of commands: %v", err)
	}
	if len(raws) == 0 {
		return nil, errors.New("ERR empty pipeline")
	}
	out := make([][]string, len(raws))
	for i, r := range raws {
		args, err := decodeCommand(r)
		if err != nil {
			return nil, fmt.Errorf("%v (command %d)", err, i)
		}
		out[i] = args
	}
	return out, nil
}

// pathCommand reads the path form: /redis/<cmd>/<arg>/... plus query parameters in
// order (?EX=100&NX gives EX 100 NX), plus the body of a POST.
func pathCommand(r *http.Request) ([]string, error) {
	rest := strings.TrimPrefix(r.URL.EscapedPath(), "/redis/")
	var args []string
	for _, seg := range strings.Split(rest, "/") {
		v, err := url.PathUnescape(seg)
		if err != nil {
			return nil, fmt.Errorf("ERR bad path segment %q", seg)
		}
		args = append(args, v)
	}
	if r.URL.RawQuery != "" {
		for _, kv := range strings.Split(r.URL.RawQuery, "&") {
			k, v, hasV := strings.Cut(kv, "=")
			k, err1 := url.QueryUnescape(k)
			v, err2 := url.QueryUnescape(v)
			if err1 != nil || err2 != nil {
				return nil, errors.New("ERR bad query string")
			}
			if k == "_token" || k == "" {
				continue
			}
			args = append(args, k)
			if hasV && v != "" {
				args = append(args, v)
			}
		}
	}
	if r.Method == http.MethodPost {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		if len(body) > 0 {
			args = append(args, string(body))
		}
	}
	if args[0] == "" {
		return nil, errors.New("ERR empty command")
	}
	return args, nil
}

type restMode int

const (
	restOne restMode = iota
	restPath
	restPipeline
	restMulti
)

// preparedCommand is one command of a /redis request, checked and rewritten.
type preparedCommand struct {
	c        checkedCommand
	args     []string // as sent to Redis (keys namespaced)
	keyspace bool     // run by the gateway over the namespace (runKeyspace)
	refused  *CommandError
}

// policyOf is the /redis policy of tok.
func (s *Server) policyOf(tok *Token) CommandPolicy {
	p := CommandPolicy{Class: tok.Redis, Scripts: tok.RedisScripts, KeyPrefixes: tok.KeyPrefixes,
		StorePrefix: s.keys.prefix, MaxValueBytes: s.cfg.RedisMaxValueBytes}
	if tok.Namespace != "" {
		p.Namespace = s.keys.namespace(tok.Namespace)
		p.Scripts = p.Scripts || s.acl.confines()
	}
	if p.MaxValueBytes < 0 {
		p.MaxValueBytes = 0
	}
	return p
}

func (s *Server) handleRedis(mode restMode) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		st := stateOf(r)
		if r.Method == http.MethodHead {
			// The Go mux routes HEAD to GET patterns; a command must not run for it.
			w.Header().Set("Allow", "GET, POST")
			writeUpstashError(w, http.StatusMethodNotAllowed, "ERR HEAD is not a Redis command method: use GET or POST")
			return
		}
		if sync := r.Header.Get("Upstash-Sync-Token"); sync != "" {
			// One Redis primary answers every read, so reads always see the writes
			// before them: the token is handed back as it came.
			w.Header().Set("Upstash-Sync-Token", sync)
		} else {
			w.Header().Set("Upstash-Sync-Token", strconv.FormatInt(s.cfg.Now().UnixNano(), 10))
		}
		var cmds [][]string
		var err error
		if mode == restPath {
			var args []string
			args, err = pathCommand(r)
			cmds = [][]string{args}
		} else {
			var body []byte
			if body, err = io.ReadAll(r.Body); err == nil {
				cmds, err = DecodeCommands(body, mode == restOne)
			}
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				st.denial = "body too large"
				writeUpstashError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("ERR request body exceeds %d bytes", mbe.Limit))
				return
			}
			s.m.redisCommands.WithLabelValues("refused").Inc()
			writeUpstashError(w, http.StatusBadRequest, err.Error())
			return
		}
		// A pipeline or transaction of N commands costs N: the middleware charged one.
		st.cost = int64(len(cmds))
		if st.limiter != nil && len(cmds) > 1 {
			res, err := st.limiter.lim.AllowN(r.Context(), st.token.ID, int64(len(cmds)-1))
			if errors.Is(err, ratelimit.ErrInvalidCost) {
				// More commands than the token's limit holds: never allowed.
				st.denial = "rate cost"
				writeUpstashError(w, http.StatusTooManyRequests, fmt.Sprintf("ERR %d commands exceed what this token's rate limit allows at once (%v); send fewer per request", len(cmds), err))
				return
			}
			if err != nil {
				s.writeErrorFor(w, r, st, fmt.Errorf("%w: rate limiter: %w", ErrUnavailable, err))
				return
			}
			if len(res.Policies) > 0 {
				w.Header().Set("RateLimit", ratelimit.StatusHeader(res))
			}
			if !res.Allowed {
				secs := int64((res.RetryAfter + time.Second - 1) / time.Second)
				w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
				st.denial = "rate " + res.Policy
				writeUpstashError(w, http.StatusTooManyRequests, fmt.Sprintf("ERR rate limit %q exceeded by %d commands; retry in %ds", res.Policy, len(cmds), secs))
				return
			}
		}
		firstRefused := -1
		authFailed := false
		defer func() { // whatever the outcome, an audited write names every write command
			if st.mutating && st.target == "" || firstRefused >= 0 {
				st.target = auditTarget(cmds, firstRefused)
			}
		}()
		tok := st.token
		pol := s.policyOf(tok)
		cli, err := s.clientFor(r.Context(), tok, pol)
		if err != nil {
			s.writeErrorFor(w, r, st, fmt.Errorf("%w: %w", ErrUnavailable, err))
			return
		}
		defer func() {
			if tok.Namespace != "" && s.acl.confines() && authFailed {
				s.acl.forget(tok.Namespace) // the next request sets the ACL user up again
			}
		}()
		prep := make([]preparedCommand, len(cmds))
		slot := -1
		for i, args := range cmds {
			pc := &prep[i]
			c, err := checkCommand(args, pol)
			if err != nil {
				ce := err.(*CommandError)
				pc.refused = ce
				if firstRefused < 0 {
					firstRefused = i
				}
				s.m.redisCommands.WithLabelValues("refused").Inc()
				if ce.Status() == http.StatusForbidden {
					s.m.authFailures.WithLabelValues(ce.Reason).Inc()
					st.denial = strings.ReplaceAll(ce.Reason, "_", " ")
				}
				continue
			}
			pc.c, pc.args = c, args
			st.mutating = st.mutating || c.spec.write
			if pol.Namespace != "" {
				pc.keyspace = c.spec.keys == keysKeyspace || c.name == "scan"
				pc.args = namespaced(args, c, pol.Namespace)
			}
			s.scripts.adapt(pc.args)
			if mode == restMulti {
				if pc.keyspace {
					ce := &CommandError{refuseCommand, fmt.Sprintf("ERR %s is not allowed in /multi-exec: send it alone or in /pipeline", strings.ToUpper(c.name))}
					pc.refused = ce
					if firstRefused < 0 {
						firstRefused = i
					}
					continue
				}
				if _, ok := cli.(*redis.ClusterClient); ok {
					for _, k := range c.keyAt {
						if ks := keySlot(pc.args[k]); slot == -1 {
							slot = ks
						} else if ks != slot {
							writeUpstashError(w, http.StatusBadRequest, "ERR CROSSSLOT the keys of a multi-exec must hash to one Redis Cluster slot: give them a common hash tag, e.g. {user:1}:a and {user:1}:b")
							return
						}
					}
				}
			}
		}
		b64 := strings.EqualFold(r.Header.Get("Upstash-Encoding"), "base64")
		ctx := r.Context()
		if mode == restOne || mode == restPath || mode == restMulti {
			if firstRefused >= 0 {
				// One command alone is refused as a request; in a transaction, as Redis
				// does for a command refused while queued, the whole transaction is.
				ce := prep[firstRefused].refused
				msg := ce.Msg
				if mode == restMulti {
					msg = "EXECABORT Transaction discarded because of a refused command: " + ce.Msg + fmt.Sprintf(" (command %d)", firstRefused)
				}
				writeUpstashError(w, ce.Status(), msg)
				return
			}
		}
		if mode == restOne || mode == restPath {
			pc := prep[0]
			var v any
			if pc.keyspace {
				v, err = runKeyspace(ctx, s.rest, pc.args, pol.Namespace)
			} else {
				v, err = cli.Do(ctx, toAny(pc.args)...).Result()
			}
			if pol.Namespace != "" && err == nil {
				v = stripReply(pc.c.name, v, pol.Namespace)
			}
			authFailed = isAuthError(err)
			res := s.restResult(v, err, b64)
			status := http.StatusOK
			if res.Error != nil {
				status = http.StatusBadRequest
				if !isRedisError(err) {
					status = http.StatusServiceUnavailable
				}
			}
			writeUpstash(w, status, res)
			return
		}
		out := make([]restReply, len(cmds))
		// The commands run in order: runs of ordinary commands in one pipeline each,
		// keyspace-wide ones by the gateway between them; refused ones answer their error.
		for i := 0; i < len(prep); {
			pc := prep[i]
			switch {
			case pc.refused != nil:
				msg := pc.refused.Msg
				out[i] = restReply{Error: &msg}
				i++
				continue
			case pc.keyspace:
				v, err := runKeyspace(ctx, s.rest, pc.args, pol.Namespace)
				out[i] = s.restResult(v, err, b64)
				i++
				continue
			}
			j := i
			for j < len(prep) && prep[j].refused == nil && !prep[j].keyspace {
				j++
			}
			run := func(p redis.Pipeliner) error {
				for _, pc := range prep[i:j] {
					p.Do(ctx, toAny(pc.args)...)
				}
				return nil
			}
			var results []redis.Cmder
			if mode == restMulti {
				results, err = cli.TxPipelined(ctx, run)
			} else {
				results, err = cli.Pipelined(ctx, run)
			}
			authFailed = authFailed || isAuthError(err)
			if err != nil && len(results) != j-i {
				s.m.redisCommands.WithLabelValues("error").Add(float64(len(cmds)))
				writeUpstashError(w, http.StatusServiceUnavailable, "ERR "+err.Error())
				return
			}
			if err != nil && mode == restMulti && strings.Contains(err.Error(), "EXECABORT") {
				writeUpstashError(w, http.StatusBadRequest, err.Error())
				return
			}
			for k, c := range results {
				v, err := c.(*redis.Cmd).Result()
				if pol.Namespace != "" && err == nil {
					v = stripReply(prep[i+k].c.name, v, pol.Namespace)
				}
				out[i+k] = s.restResult(v, err, b64)
			}
			i = j
		}
		writeUpstash(w, http.StatusOK, out)
	}
}

func isRedisError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}

// restReply is {"result": ...} or {"error": "..."}.
type restReply struct {
	Result any     `json:"result"`
	Error  *string `json:"error,omitempty"`
}

func (r restReply) MarshalJSON() ([]byte, error) {
	if r.Error != nil {
		return json.Marshal(map[string]string{"error": *r.Error})
	}
	return json.Marshal(map[string]any{"result": r.Result})
}

func (s *Server) restResult(v any, err error, b64 bool) restReply {
	if errors.Is(err, redis.Nil) {
		s.m.redisCommands.WithLabelValues("ok").Inc()
		return restReply{}
	}
	if err != nil {
		s.m.redisCommands.WithLabelValues("error").Inc()
		msg := err.Error()
		return restReply{Error: &msg}
	}
	s.m.redisCommands.WithLabelValues("ok").Inc()
	return restReply{Result: encodeReply(v, b64)}
}

// encodeReply turns a RESP2 reply into JSON values: strings (base64 when asked),
// integers, nulls and arrays. RESP3 shapes, should a client deliver them, are flattened
// the way RESP2 would send them.
func encodeReply(v any, b64 bool) any {
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		if b64 {
			return base64.StdEncoding.EncodeToString([]byte(v))
		}
		return v
	case int64:
		return v
	case bool:
		if v {
			return int64(1)
		}
		return int64(0)
	case float64:
		return encodeReply(strconv.FormatFloat(v, 'g', -1, 64), b64)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = encodeReply(e, b64)
		}
		return out
	case map[any]any:
		out := make([]any, 0, 2*len(v))
		for k, e := range v {
			out = append(out, encodeReply(k, b64), encodeReply(e, b64))
		}
		return out
	case redis.Error:
		return encodeReply(v.Error(), b64)
	case error:
		return encodeReply(v.Error(), b64)
	}
	return encodeReply(fmt.Sprint(v), b64)
}

func toAny(args []string) []any {
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = a
	}
	return out
}

func writeUpstash(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
