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

	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/internal/jsonerr"
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
// refused commands or keys 403; a bad token 401; all in the same {"error"} shape.

func writeUpstashError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Length")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(map[string]string{"error": msg})
}

// decodeCommand decodes one command: a JSON array of strings and numbers.
func decodeCommand(raw json.RawMessage) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var vals []any
	if err := dec.Decode(&vals); err != nil {
		return nil, fmt.Errorf("ERR a command is a JSON array of strings and numbers: %v", err)
	}
	if len(vals) == 0 {
		return nil, errors.New("ERR empty command")
	}
	args := make([]string, len(vals))
	for i, v := range vals {
		switch v := v.(type) {
		case string:
			args[i] = v
		case json.Number:
			args[i] = v.String()
		default:
			return nil, fmt.Errorf("ERR argument %d is %s: arguments are strings or numbers", i, jsonerr.Kind(reflect.TypeOf(v)))
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

func (s *Server) handleRedis(mode restMode) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		st := stateOf(r)
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
		defer func() { // whatever the outcome, an audited write names every write command
			if st.mutating && st.target == "" {
				st.target = auditTarget(cmds, -1)
			}
		}()
		tok := st.token
		pol := CommandPolicy{Class: tok.Redis, Scripts: tok.RedisScripts, KeyPrefixes: tok.KeyPrefixes}
		slot := -1
		for i, args := range cmds {
			keys, write, err := CheckCommand(args, pol)
			if err != nil {
				st.target = auditTarget(cmds, i)
				ce := err.(*CommandError)
				s.m.redisCommands.WithLabelValues("refused").Inc()
				if ce.Status() == http.StatusForbidden {
					s.m.authFailures.WithLabelValues(ce.Reason).Inc()
					st.denial = strings.ReplaceAll(ce.Reason, "_", " ")
				}
				writeUpstashError(w, ce.Status(), ce.Msg)
				return
			}
			st.mutating = st.mutating || write
			if mode == restMulti {
				if _, ok := s.rest.(*redis.ClusterClient); ok {
					for _, k := range keys {
						if ks := keySlot(k); slot == -1 {
							slot = ks
						} else if ks != slot {
							writeUpstashError(w, http.StatusBadRequest, "ERR CROSSSLOT the keys of a multi-exec must hash to one Redis Cluster slot: give them a common hash tag, e.g. {user:1}:a and {user:1}:b")
							return
						}
					}
				}
			}
		}
		for _, args := range cmds {
			s.scripts.adapt(args)
		}
		b64 := strings.EqualFold(r.Header.Get("Upstash-Encoding"), "base64")
		ctx := r.Context()
		if mode == restOne || mode == restPath {
			v, err := s.rest.Do(ctx, toAny(cmds[0])...).Result()
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
		run := func(p redis.Pipeliner) error {
			for _, args := range cmds {
				p.Do(ctx, toAny(args)...)
			}
			return nil
		}
		var results []redis.Cmder
		if mode == restMulti {
			results, err = s.rest.TxPipelined(ctx, run)
		} else {
			results, err = s.rest.Pipelined(ctx, run)
		}
		if err != nil && len(results) != len(cmds) {
			s.m.redisCommands.WithLabelValues("error").Add(float64(len(cmds)))
			writeUpstashError(w, http.StatusServiceUnavailable, "ERR "+err.Error())
			return
		}
		if err != nil && mode == restMulti && strings.Contains(err.Error(), "EXECABORT") {
			writeUpstashError(w, http.StatusBadRequest, err.Error())
			return
		}
		for i, c := range results {
			v, err := c.(*redis.Cmd).Result()
			out[i] = s.restResult(v, err, b64)
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
