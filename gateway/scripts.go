package gateway

import (
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"sync"
)

// Scripts written for Upstash may declare shebang flags that Redis does not know
// (@upstash/ratelimit uses "#!lua flags=allow-key-locking"); Redis refuses them. The
// gateway drops flags other than Redis's own before EVAL, and remembers which SHA-1
// the client computed (of its script) for which SHA-1 Redis knows (of the rewritten
// one), so that the client's EVALSHA finds the script after its first EVAL.

var redisScriptFlags = map[string]bool{
	"no-writes": true, "allow-oom": true, "allow-stale": true, "no-cluster": true, "allow-cross-slot-keys": true,
}

// scriptAliases maps client SHA-1s to the SHA-1s of rewritten scripts. Bounded: it
// starts afresh when full (a forgotten alias costs one NOSCRIPT and one EVAL).
type scriptAliases struct {
	mu sync.Mutex
	m  map[string]string
}

const scriptAliasMax = 4096

func sha1Hex(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// rewriteScript returns the script with unknown shebang flags removed, and whether it
// changed.
func rewriteScript(script string) (string, bool) {
	if !strings.HasPrefix(script, "#!") {
		return script, false
	}
	line, rest, _ := strings.Cut(script, "\n")
	fields := strings.Fields(line)
	changed := false
	for i, f := range fields {
		v, ok := strings.CutPrefix(f, "flags=")
		if !ok {
			continue
		}
		var keep []string
		for _, fl := range strings.Split(v, ",") {
			if redisScriptFlags[fl] {
				keep = append(keep, fl)
			} else {
				changed = true
			}
		}
		fields[i] = "flags=" + strings.Join(keep, ",")
		if len(keep) == 0 {
			fields[i] = ""
		}
	}
	if !changed {
		return script, false
	}
	return strings.Join(strings.Fields(strings.Join(fields, " ")), " ") + "\n" + rest, true
}

// adaptScripts rewrites EVAL scripts and EVALSHA hashes of one command in place.
func (a *scriptAliases) adapt(args []string) {
	if len(args) < 2 {
		return
	}
	switch strings.ToLower(args[0]) {
	case "eval", "eval_ro":
		if s, ok := rewriteScript(args[1]); ok {
			a.mu.Lock()
			if len(a.m) >= scriptAliasMax {
				a.m = map[string]string{}
			}
			a.m[sha1Hex(args[1])] = sha1Hex(s)
			a.mu.Unlock()
			args[1] = s
		}
	case "evalsha", "evalsha_ro":
		a.mu.Lock()
		if to, ok := a.m[strings.ToLower(args[1])]; ok {
			args[1] = to
		}
		a.mu.Unlock()
	case "script":
		if strings.EqualFold(args[1], "load") && len(args) > 2 {
			if s, ok := rewriteScript(args[2]); ok {
				a.mu.Lock()
				if len(a.m) >= scriptAliasMax {
					a.m = map[string]string{}
				}
				a.m[sha1Hex(args[2])] = sha1Hex(s)
				a.mu.Unlock()
				args[2] = s
			}
		}
	}
}
