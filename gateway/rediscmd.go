package gateway

import (
	"fmt"
	"strconv"
	"strings"
)

// The command table of the Redis REST endpoint. A command not in it is refused: that
// covers the admin (CONFIG, DEBUG, SHUTDOWN, ACL, CLIENT, CLUSTER, MODULE, SAVE, ...),
// database (SWAPDB, SELECT, MOVE; COPY ... DB is refused too), WAIT, blocking (BLPOP, BRPOP, BLMOVE, BZPOPMIN, BLMPOP, XREAD BLOCK, ...), pub/sub
// (SUBSCRIBE, PSUBSCRIBE, PUBLISH, MONITOR), transaction (MULTI, EXEC, WATCH: use
// /redis/multi-exec) and pattern-reaching (SORT ... BY/GET, MIGRATE, OBJECT) commands.

type keyRule uint8

const (
	keysNone     keyRule = iota
	keysFirst            // args[1]
	keysTwo              // args[1], args[2]
	keysAll              // args[1:]
	keysPairs            // args[1], args[3], ... (MSET)
	keysFromTwo          // args[2:] (BITOP op dest src...)
	keysNum1             // numkeys at args[1], keys after it (ZUNION, LMPOP, ...)
	keysDestNum2         // args[1] and numkeys at args[2], keys after it (ZUNIONSTORE)
	keysScript           // numkeys at args[2], keys after it (EVAL, EVALSHA)
	keysStreams          // keys after STREAMS, half of the rest (XREAD)
	keysScan             // SCAN: MATCH must be under the token's key prefix
	keysSecond           // args[2] (XGROUP CREATE key ..., XINFO STREAM key)
	keysKeyspace         // keyspace-wide: run by the gateway over the token's namespace
)

type cmdSpec struct {
	write  bool
	keys   keyRule
	script bool // needs the token's RedisScripts (or a namespace confined by an ACL user)
}

var redisCommands = map[string]cmdSpec{}

func init() {
	add := func(write bool, rule keyRule, names string) {
		for _, n := range strings.Fields(names) {
			redisCommands[n] = cmdSpec{write: write, keys: rule}
		}
	}
	add(false, keysNone, "ping echo time")
	add(false, keysScan, "scan")
	add(false, keysFirst, `get getrange substr strlen ttl pttl type expiretime pexpiretime
		hget hgetall hmget hkeys hvals hlen hexists hstrlen hrandfield hscan
		lrange lindex llen lpos smembers sismember smismember scard srandmember sscan
		zrange zrangebyscore zrevrange zrevrangebyscore zrangebylex zrevrangebylex zscore
		zmscore zrank zrevrank zcard zcount zlexcount zscan zrandmember
		getbit bitcount bitpos xrange xrevrange xlen geopos geodist geohash geosearch dump`)
	add(false, keysAll, "mget exists sinter sunion sdiff pfcount touch")
	add(false, keysTwo, "lcs")
	add(false, keysNum1, "sintercard zunion zinter zdiff zintercard")
	add(false, keysStreams, "xread")
	add(false, keysFirst, "xpending")
	add(false, keysSecond, "xinfo")
	add(true, keysSecond, "xgroup")
	add(true, keysStreams, "xreadgroup")
	add(true, keysFirst, "xclaim xautoclaim xsetid")
	add(false, keysKeyspace, "dbsize keys randomkey")
	add(true, keysKeyspace, "flushdb flushall")
	add(true, keysFirst, `set setnx setex psetex getset getdel getex append incr incrby
		incrbyfloat decr decrby setrange expire pexpire expireat pexpireat persist
		hset hsetnx hmset hdel hincrby hincrbyfloat lpush rpush lpushx rpushx lpop rpop lset
		linsert lrem ltrim sadd srem spop zadd zincrby zrem zremrangebyrank zremrangebyscore
		zremrangebylex zpopmin zpopmax setbit bitfield pfadd xadd xtrim xdel xack geoadd`)
	add(true, keysAll, "del unlink sinterstore sunionstore sdiffstore pfmerge")
	add(true, keysPairs, "mset msetnx")
	add(true, keysTwo, "rename renamenx copy lmove rpoplpush smove zrangestore geosearchstore")
	add(true, keysNum1, "lmpop zmpop")
	add(true, keysDestNum2, "zunionstore zinterstore zdiffstore")
	add(true, keysFromTwo, "bitop")
	for _, n := range []string{"eval", "evalsha"} {
		redisCommands[n] = cmdSpec{write: true, keys: keysScript, script: true}
	}
	for _, n := range []string{"eval_ro", "evalsha_ro"} {
		redisCommands[n] = cmdSpec{keys: keysScript, script: true}
	}
}

// Refusal reasons of CheckCommand, for metrics and the audit log.
const (
	refuseCommand = "redis_command"
	refuseKey     = "redis_key"
	refuseSyntax  = "redis_syntax"
)

// CommandError is why CheckCommand refuses a command. Reason is one of redis_command,
// redis_key (both 403) or redis_syntax (400).
type CommandError struct {
	Reason string
	Msg    string
}

func (e *CommandError) Error() string { return e.Msg }

// Status is the HTTP status of the refusal.
func (e *CommandError) Status() int {
	if e.Reason == refuseSyntax {
		return 400
	}
	return 403
}

// CommandPolicy is what a token allows on /redis.
type CommandPolicy struct {
	Class       RedisClass
	Scripts     bool
	KeyPrefixes []string
	// Namespace is the token's namespace; "" means the key-prefix mode, where
	// keyspace-wide commands are refused.
	Namespace string
	// StorePrefix is tickstash's own key prefix: no key under "<StorePrefix>:" is
	// accepted, in either mode. "" means "ts".
	StorePrefix string
	// MaxValueBytes caps every argument and the offsets of SETRANGE, SETBIT and
	// BITFIELD; 0 means no cap.
	MaxValueBytes int64
}

// dbCommands name another database; they are refused with a reason of their own.
var dbCommands = map[string]bool{"select": true, "move": true, "swapdb": true}

// CheckCommand reports whether p allows the command args (args[0] its name, any case).
// It returns the command's keys and whether it writes, or a *CommandError. It does not
// check arity beyond what finding the keys needs: Redis itself answers arity errors.
func CheckCommand(args []string, p CommandPolicy) (keys []string, write bool, err error) {
	c, err := checkCommand(args, p)
	if err != nil {
		return nil, false, err
	}
	for _, i := range c.keyAt {
		keys = append(keys, args[i])
	}
	return keys, c.spec.write, nil
}

// checkedCommand is a command CheckCommand allowed.
type checkedCommand struct {
	name  string
	spec  cmdSpec
	keyAt []int // indexes of its key arguments
}

func checkCommand(args []string, p CommandPolicy) (checkedCommand, error) {
	if len(args) == 0 {
		return checkedCommand{}, &CommandError{refuseSyntax, "ERR empty command"}
	}
	name := strings.ToLower(args[0])
	if p.MaxValueBytes > 0 {
		if err := checkSizes(name, args, p.MaxValueBytes); err != nil {
			return checkedCommand{}, err
		}
	}
	if name == "script" {
		sub := ""
		if len(args) > 1 {
			sub = strings.ToLower(args[1])
		}
		if (sub == "load" || sub == "exists") && p.Scripts && p.Class != RedisNone {
			return checkedCommand{name: name}, nil
		}
		return checkedCommand{}, &CommandError{refuseCommand, fmt.Sprintf("ERR SCRIPT %s is not allowed for this token", strings.ToUpper(sub))}
	}
	if dbCommands[name] {
		return checkedCommand{}, &CommandError{refuseCommand, fmt.Sprintf("ERR command %q names another database: a token has one database", name)}
	}
	spec, ok := redisCommands[name]
	if !ok {
		return checkedCommand{}, &CommandError{refuseCommand, fmt.Sprintf("ERR command %q is not allowed on the REST endpoint (admin, blocking and unknown commands are refused)", name)}
	}
	switch {
	case p.Class == RedisNone:
		return checkedCommand{}, &CommandError{refuseCommand, "ERR this token has no Redis command class"}
	case spec.write && p.Class != RedisWrite:
		return checkedCommand{}, &CommandError{refuseCommand, fmt.Sprintf("ERR command %q writes; this token may only read", name)}
	case spec.script && !p.Scripts:
		return checkedCommand{}, &CommandError{refuseCommand, fmt.Sprintf("ERR command %q runs a script; this token may not (scripts need a namespace confined by a Redis ACL user, or a token trusted with --redis-scripts)", name)}
	case spec.keys == keysKeyspace && p.Namespace == "":
		return checkedCommand{}, &CommandError{refuseCommand, fmt.Sprintf("ERR command %q is not allowed without a namespace: it reaches the whole keyspace (create the token with a namespace, a database of its own)", name)}
	case name == "copy":
		for _, a := range args[min(3, len(args)):] {
			if strings.EqualFold(a, "db") {
				return checkedCommand{}, &CommandError{refuseCommand, "ERR COPY ... DB names another database: a token has one database"}
			}
		}
	}
	at, err := keyIndexes(name, spec.keys, args, p)
	if err != nil {
		return checkedCommand{}, err
	}
	store := p.StorePrefix
	if store == "" {
		store = "ts"
	}
	for _, i := range at {
		k := args[i]
		if strings.HasPrefix(k, store+":") {
			return checkedCommand{}, &CommandError{refuseKey, fmt.Sprintf("ERR key %q is under tickstash's own prefix %q, which no /redis token reaches", k, store+":")}
		}
		if len(p.KeyPrefixes) > 0 && !underPrefix(k, p.KeyPrefixes) {
			return checkedCommand{}, &CommandError{refuseKey, fmt.Sprintf("ERR key %q is outside this token's key prefixes %q", k, p.KeyPrefixes)}
		}
	}
	return checkedCommand{name: name, spec: spec, keyAt: at}, nil
}

// checkSizes caps value growth: every argument, and the byte a SETRANGE, SETBIT or
// BITFIELD offset would make Redis allocate.
func checkSizes(name string, args []string, limit int64) error {
	tooBig := func(what string, n int64) error {
		return &CommandError{refuseSyntax, fmt.Sprintf("ERR %s would make a value of %d bytes; this gateway caps values at %d bytes (--redis-max-value-bytes)", what, n, limit)}
	}
	for _, a := range args {
		if int64(len(a)) > limit {
			return tooBig("an argument of "+strings.ToUpper(name), int64(len(a)))
		}
	}
	offset := func(s string) (int64, bool) {
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil && n >= 0
	}
	switch name {
	case "setrange":
		if len(args) == 4 {
			if n, ok := offset(args[2]); ok && n+int64(len(args[3])) > limit {
				return tooBig("SETRANGE at offset "+args[2], n+int64(len(args[3])))
			}
		}
	case "setbit":
		if len(args) >= 3 {
			if n, ok := offset(args[2]); ok && n/8+1 > limit {
				return tooBig("SETBIT at bit "+args[2], n/8+1)
			}
		}
	case "bitfield":
		for i := 2; i+2 < len(args); i++ {
			op := strings.ToLower(args[i])
			if op != "set" && op != "incrby" { // GET reads past the end without growing
				continue
			}
			typ, off := args[i+1], args[i+2]
			width, err := strconv.ParseInt(typ[min(1, len(typ)):], 10, 64)
			if err != nil || width < 1 || width > 64 {
				i += 2
				continue
			}
			mul := int64(1)
			if strings.HasPrefix(off, "#") {
				off, mul = off[1:], width
			}
			if n, ok := offset(off); ok && (n > (1<<62)/max(mul, 1) || (n*mul+width+7)/8 > limit) {
				return tooBig("BITFIELD at offset "+args[i+2], (n*mul+width+7)/8)
			}
			i += 2
		}
	}
	return nil
}

func underPrefix(key string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

func numkeys(args []string, at int) (int, error) {
	if at >= len(args) {
		return 0, &CommandError{refuseSyntax, "ERR wrong number of arguments"}
	}
	n, err := strconv.Atoi(args[at])
	if err != nil || n < 0 || at+1+n > len(args) {
		return 0, &CommandError{refuseSyntax, fmt.Sprintf("ERR numkeys %q: not a count of the keys that follow", args[at])}
	}
	return n, nil
}

func commandKeys(name string, rule keyRule, args []string, p CommandPolicy) ([]string, error) {
	at, err := keyIndexes(name, rule, args, p)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(at))
	for i, j := range at {
		out[i] = args[j]
	}
	return out, nil
}

func span(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// keyIndexes returns the indexes of the key arguments of a command.
func keyIndexes(name string, rule keyRule, args []string, p CommandPolicy) ([]int, error) {
	switch rule {
	case keysNone, keysKeyspace:
		return nil, nil
	case keysFirst:
		return span(1, min(2, len(args))), nil
	case keysTwo:
		return span(1, min(3, len(args))), nil
	case keysSecond:
		if len(args) > 1 && strings.EqualFold(args[1], "help") {
			return nil, nil
		}
		return span(2, min(3, len(args))), nil
	case keysAll:
		return span(1, len(args)), nil
	case keysFromTwo:
		return span(2, len(args)), nil
	case keysPairs:
		var out []int
		for i := 1; i < len(args); i += 2 {
			out = append(out, i)
		}
		return out, nil
	case keysNum1:
		n, err := numkeys(args, 1)
		if err != nil {
			return nil, err
		}
		return span(2, 2+n), nil
	case keysDestNum2, keysScript:
		n, err := numkeys(args, 2)
		if err != nil {
			return nil, err
		}
		out := span(3, 3+n)
		if rule == keysDestNum2 {
			out = append([]int{1}, out...)
		}
		return out, nil
	case keysStreams:
		// Options are read with their values, so that a group, consumer or count
		// spelled "streams" is not taken for the keyword (and the keys after it missed).
		for i := 1; i < len(args); i++ {
			switch strings.ToLower(args[i]) {
			case "block":
				return nil, &CommandError{refuseCommand, "ERR blocking reads (BLOCK) are not allowed on the REST endpoint"}
			case "group":
				i += 2
			case "count":
				i++
			case "noack":
			default:
				return nil, &CommandError{refuseSyntax, fmt.Sprintf("ERR %s: unexpected %q before STREAMS", strings.ToUpper(name), args[i])}
			case "streams":
				rest := len(args) - i - 1
				if rest == 0 || rest%2 != 0 {
					return nil, &CommandError{refuseSyntax, "ERR STREAMS needs as many ids as keys"}
				}
				return span(i+1, i+1+rest/2), nil
			}
		}
		return nil, &CommandError{refuseSyntax, "ERR " + strings.ToUpper(name) + " needs STREAMS"}
	case keysScan:
		if len(p.KeyPrefixes) == 0 {
			return nil, nil // a namespace: the gateway confines the MATCH
		}
		matched := false
		for i := 2; i < len(args); i++ {
			if strings.EqualFold(args[i], "match") {
				if i+1 >= len(args) || !underPrefix(args[i+1], p.KeyPrefixes) {
					return nil, &CommandError{refuseKey, fmt.Sprintf("ERR SCAN must MATCH a pattern under this token's key prefixes %q", p.KeyPrefixes)}
				}
				matched = true
				i++
			}
		}
		if !matched {
			return nil, &CommandError{refuseKey, fmt.Sprintf("ERR SCAN without MATCH reaches the whole keyspace; MATCH a pattern under %q", p.KeyPrefixes)}
		}
		return nil, nil
	}
	return nil, &CommandError{refuseCommand, "ERR unsupported command"}
}

// keySlot is the Redis Cluster hash slot of a key: CRC16 (XMODEM) of its hash tag (the
// part between the first '{' and the next '}' if non-empty) or of the whole key, mod 16384.
func keySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % 16384
}

// Bounds of a /redis request's audit target.
const (
	targetMaxCommands = 16  // commands listed
	targetMaxKeys     = 8   // keys listed per command
	targetMaxKey      = 128 // bytes of a key listed
)

// containerCommands take a subcommand as their first argument, which the audit target
// names beside them (CONFIG SET); their other arguments are not logged.
var containerCommands = map[string]bool{"acl": true, "client": true, "cluster": true, "command": true,
	"config": true, "debug": true, "function": true, "latency": true, "memory": true, "module": true,
	"object": true, "pubsub": true, "script": true, "slowlog": true, "xgroup": true, "xinfo": true}

// auditTarget describes a /redis request for the audit record: every command that
// writes, and the refused one (refused is its index, -1 for none), each with its keys
// (values are never logged). Reads are counted, not listed. It is bounded: at most
// targetMaxCommands commands of targetMaxKeys keys of targetMaxKey bytes, each cut
// marked with "…" and what it left out, and maxAuditTarget bytes in all.
func auditTarget(cmds [][]string, refused int) string {
	var b strings.Builder
	if len(cmds) > 1 {
		fmt.Fprintf(&b, "%d commands:", len(cmds))
	}
	listed, reads := 0, 0
	for i, args := range cmds {
		if len(args) == 0 {
			continue
		}
		name := strings.ToLower(args[0])
		spec, known := redisCommands[name]
		if known && !spec.write && i != refused {
			reads++
			continue
		}
		if listed == targetMaxCommands {
			fmt.Fprintf(&b, " …+%d more", len(cmds)-i)
			break
		}
		if listed > 0 {
			b.WriteString(";")
		}
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		listed++
		b.WriteString(strings.ToUpper(truncate(args[0], 32)))
		var keys []string
		switch {
		case known:
			keys, _ = commandKeys(name, spec.keys, args, CommandPolicy{})
		case containerCommands[name] && len(args) > 1:
			b.WriteString(" " + strings.ToUpper(truncate(args[1], 32)))
		}
		for j, k := range keys {
			if j == targetMaxKeys {
				fmt.Fprintf(&b, " …+%d keys", len(keys)-j)
				break
			}
			b.WriteString(" ")
			if len(k) > targetMaxKey {
				fmt.Fprintf(&b, "%s…(%d bytes)", k[:targetMaxKey], len(k))
			} else {
				b.WriteString(k)
			}
		}
		if i == refused {
			b.WriteString(" (refused)")
		}
		if b.Len() > maxAuditTarget {
			break
		}
	}
	if reads > 0 && len(cmds) > 1 {
		fmt.Fprintf(&b, "; +%d reads", reads)
	}
	return truncate(b.String(), maxAuditTarget)
}
