package gateway

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// A token with a namespace has a database of its own on /redis. The gateway prefixes
// every key argument with the namespace's key prefix, <store prefix>:rns:{<namespace>}:,
// and strips it from every reply that carries key names (KEYS, SCAN, RANDOMKEY, the
// stream names of XREAD and XREADGROUP, the key of LMPOP and ZMPOP). The hash tag puts a
// whole namespace in one Redis Cluster slot, so every multi-key command, transaction and
// script of a client works on a cluster; the price is that one namespace lives on one
// master (a namespace is bounded by one node's memory and throughput).
//
// Keyspace-wide commands act on the namespace: DBSIZE, KEYS, SCAN (MATCH, COUNT, TYPE)
// and RANDOMKEY scan the namespace's keys on the master that holds its slot, FLUSHDB and
// FLUSHALL delete them in batches on every master. They cost a scan of the node's
// keyspace, as KEYS does in Redis.

// namespacePrefix is the key prefix of namespace ns under the store prefix.
func (k keyspace) namespace(ns string) string { return k.prefix + ":rns:{" + ns + "}:" }

// globEscape escapes the glob characters of s for a MATCH or KEYS pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		switch c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}

// namespaced returns args with every key argument prefixed with nsp.
func namespaced(args []string, c checkedCommand, nsp string) []string {
	if len(c.keyAt) == 0 {
		return args
	}
	out := append([]string(nil), args...)
	for _, i := range c.keyAt {
		out[i] = nsp + out[i]
	}
	return out
}

// stripReply removes nsp from the key names of a reply of command name.
func stripReply(name string, v any, nsp string) any {
	strip := func(x any) any {
		if s, ok := x.(string); ok {
			return strings.TrimPrefix(s, nsp)
		}
		return x
	}
	switch name {
	case "keys":
		if a, ok := v.([]any); ok {
			for i := range a {
				a[i] = strip(a[i])
			}
		}
	case "randomkey":
		return strip(v)
	case "scan":
		if a, ok := v.([]any); ok && len(a) == 2 {
			if ks, ok := a[1].([]any); ok {
				for i := range ks {
					ks[i] = strip(ks[i])
				}
			}
		}
	case "lmpop", "zmpop":
		if a, ok := v.([]any); ok && len(a) > 0 {
			a[0] = strip(a[0])
		}
	case "xread", "xreadgroup":
		switch a := v.(type) {
		case []any: // RESP2: [[name, entries], ...]
			for _, e := range a {
				if pair, ok := e.([]any); ok && len(pair) > 0 {
					pair[0] = strip(pair[0])
				}
			}
		case map[any]any: // RESP3
			out := make(map[any]any, len(a))
			for k, e := range a {
				out[strip(k)] = e
			}
			return out
		}
	}
	return v
}

func wrongArgs(name string) error {
	return replyError(fmt.Sprintf("ERR wrong number of arguments for '%s' command", name))
}

// nsNode returns the client of the node that holds namespace prefix nsp: its slot's
// master on a cluster.
func nsNode(ctx context.Context, cli redis.UniversalClient, nsp string) (*redis.Client, error) {
	switch c := cli.(type) {
	case *redis.ClusterClient:
		return c.MasterForKey(ctx, nsp)
	case *redis.Client:
		return c, nil
	}
	return nil, fmt.Errorf("gateway: a namespace needs a *redis.Client or *redis.ClusterClient, not %T", cli)
}

// forEachNode runs fn on every master of a cluster, or on the one server.
func forEachNode(ctx context.Context, cli redis.UniversalClient, fn func(context.Context, *redis.Client) error) error {
	switch c := cli.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, fn)
	case *redis.Client:
		return fn(ctx, c)
	}
	return fmt.Errorf("gateway: a namespace needs a *redis.Client or *redis.ClusterClient, not %T", cli)
}

// nsScanBatch is the COUNT of the scans of keyspace-wide commands, and the size of
// FLUSHDB's UNLINK batches.
const nsScanBatch = 1000

// scanNamespace calls fn with each batch of the namespace's keys (full names) on node c.
func scanNamespace(ctx context.Context, c *redis.Client, nsp string, fn func([]string) error) error {
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, globEscape(nsp)+"*", nsScanBatch).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			if err := fn(keys); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// runKeyspace runs a keyspace-wide command over namespace prefix nsp.
func runKeyspace(ctx context.Context, cli redis.UniversalClient, args []string, nsp string) (any, error) {
	name := strings.ToLower(args[0])
	switch name {
	case "dbsize", "randomkey":
		if len(args) != 1 {
			return nil, wrongArgs(name)
		}
		node, err := nsNode(ctx, cli, nsp)
		if err != nil {
			return nil, err
		}
		var n int64
		var pick any
		err = scanNamespace(ctx, node, nsp, func(keys []string) error {
			n += int64(len(keys))
			if name == "randomkey" {
				pick = strings.TrimPrefix(keys[rand.IntN(len(keys))], nsp)
				return errStopScan
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStopScan) {
			return nil, err
		}
		if name == "dbsize" {
			return n, nil
		}
		return pick, nil
	case "keys":
		if len(args) != 2 {
			return nil, wrongArgs(name)
		}
		node, err := nsNode(ctx, cli, nsp)
		if err != nil {
			return nil, err
		}
		v, err := node.Do(ctx, "keys", globEscape(nsp)+args[1]).Result()
		return stripReply(name, v, nsp), err
	case "scan":
		if len(args) < 2 || len(args)%2 != 0 {
			return nil, wrongArgs(name)
		}
		out := []any{"scan", args[1]}
		match := "*"
		for i := 2; i < len(args); i += 2 {
			switch strings.ToLower(args[i]) {
			case "match":
				match = args[i+1]
			case "count", "type":
				out = append(out, args[i], args[i+1])
			default:
				return nil, replyError("ERR syntax error")
			}
		}
		out = append(out, "match", globEscape(nsp)+match)
		node, err := nsNode(ctx, cli, nsp)
		if err != nil {
			return nil, err
		}
		v, err := node.Do(ctx, out...).Result()
		return stripReply(name, v, nsp), err
	case "flushdb", "flushall":
		if len(args) > 2 || len(args) == 2 && !strings.EqualFold(args[1], "async") && !strings.EqualFold(args[1], "sync") {
			return nil, replyError("ERR syntax error")
		}
		err := forEachNode(ctx, cli, func(ctx context.Context, c *redis.Client) error {
			return scanNamespace(ctx, c, nsp, func(keys []string) error {
				return c.Unlink(ctx, keys...).Err()
			})
		})
		if err != nil {
			return nil, err
		}
		return "OK", nil
	}
	return nil, replyError("ERR unknown keyspace command " + strconv.Quote(name))
}

var errStopScan = errors.New("stop scan")

// replyError is an error reply the gateway makes itself, in Redis's shape (a redis.Error).
type replyError string

func (e replyError) Error() string { return string(e) }

// RedisError marks replyError as a Redis error reply.
func (e replyError) RedisError() {}
