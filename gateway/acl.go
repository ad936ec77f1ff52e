package gateway

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis confines namespaced tokens: the commands of a namespace run on connections
// authenticated as a Redis ACL user whose keys and channels are the namespace's and
// whose commands leave out admin and dangerous ones. So scripts (EVAL, EVALSHA, FCALL)
// may run for every namespaced token: a script that reaches a key outside its namespace,
// or SELECTs another database, fails with NOPERM.
//
// The user of namespace ns is "<store prefix>:rns:<ns>". Its password is derived with
// HMAC-SHA256 from the gateway's sealing key (Config.SecretKeys), so every gateway
// sharing the key file derives the same one and no password is stored; a gateway never
// shows it to clients. The gateway sets the user up (ACL SETUSER, on every master of a
// cluster) the first time it serves a namespace, and again when Redis refuses the
// password (a new master, a restarted server); the rules only add a password, so
// gateways under a rotated key work side by side. TokenStore.Create sets the user up
// too, and Revoke deletes it when the namespace has no usable token left (Redis then
// drops its connections). A user is reachable only through the gateway, which
// authenticates the token first.
//
// Without a sealing key, or where Redis refuses ACL SETUSER (the embedded miniredis, a
// managed Redis), namespaced tokens run as the gateway's own user, confined by the
// gateway's key rewriting alone, and scripts are refused unless the token is trusted
// with RedisScripts; New logs which case holds.

// aclRules are the ACL rules of a namespace user after its key and channel patterns.
// KEYS, SCAN, RANDOMKEY and DBSIZE are left out: Redis does not match the keys they
// return against the user's patterns, so a script could list every key with them. The
// gateway runs the client's keyspace-wide commands itself, confined to the namespace.
var aclRules = []string{"-@all", "+@read", "+@write", "+@keyspace", "+@string", "+@hash", "+@list", "+@set",
	"+@sortedset", "+@stream", "+@bitmap", "+@hyperloglog", "+@geo", "+@scripting", "+@transaction",
	"-@admin", "-@dangerous", "-@blocking", "-@pubsub", "-move", "-swapdb", "-select", "-migrate", "-script|flush",
	"-script|kill", "-function", "+ping", "+echo", "+time", "+xread", "+xreadgroup",
	"-keys", "-scan", "-dbsize", "-randomkey", // key patterns do not filter them: the gateway runs them itself
	"+script|load", "+script|exists", "+fcall", "+fcall_ro",
	"+cluster|slots", "+cluster|shards", "+cluster|info", "+readonly", "+asking"} // a cluster client learns the topology

// nsACL runs namespaced tokens' commands as their Redis ACL users.
type nsACL struct {
	enabled bool
	s       *Server
	idle    time.Duration

	mu        sync.Mutex
	clients   map[string]*nsClient // by namespace
	lastSweep time.Time
}

type nsClient struct {
	cli      redis.UniversalClient
	lastUsed time.Time
}

// confines reports whether Redis confines namespaced tokens (so their scripts may run).
func (a *nsACL) confines() bool { return a != nil && a.enabled }

func (s *Server) aclUser(ns string) string { return s.keys.aclUser(ns) }

// aclUser is the name of the Redis ACL user of namespace ns.
func (k keyspace) aclUser(ns string) string { return k.prefix + ":rns:" + ns }

// setupACL decides whether namespaces run as ACL users: it needs a sealing key and a
// Redis that takes ACL SETUSER (tried with a disabled probe user, deleted again).
func (s *Server) setupACL() *nsACL {
	a := &nsACL{s: s, clients: map[string]*nsClient{}, idle: s.cfg.RedisACLIdle}
	switch {
	case s.cfg.NoRedisACL:
		s.log.Info("gateway: /redis namespaces run as the gateway's Redis user (Config.NoRedisACL): scripts are refused to namespaced tokens unless trusted with --redis-scripts")
		return a
	case s.cfg.SecretKeys == nil:
		s.log.Warn("gateway: no secret key, so no Redis ACL user confines /redis namespaces: scripts are refused to namespaced tokens unless trusted with --redis-scripts; set --secret-key-file")
		return a
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	probe := s.keys.prefix + ":rns-probe:" + randomHex(4)
	err := forEachNode(ctx, s.rest, func(ctx context.Context, c *redis.Client) error {
		if err := c.Do(ctx, "acl", "setuser", probe, "reset", "off").Err(); err != nil {
			return err
		}
		return c.Do(ctx, "acl", "deluser", probe).Err()
	})
	if err != nil {
		s.log.Warn("gateway: Redis refuses ACL SETUSER, so no Redis ACL user confines /redis namespaces: scripts are refused to namespaced tokens unless trusted with --redis-scripts", "err", err)
		return a
	}
	a.enabled = true
	s.log.Info("gateway: /redis namespaces run as Redis ACL users confined to their keys; scripts allowed to namespaced tokens")
	return a
}

// ensureUser sets up the ACL user of namespace ns on every master.
func (a *nsACL) ensureUser(ctx context.Context, ns string) error {
	return setACLUser(ctx, a.s.rest, a.s.keys, a.s.cfg.SecretKeys, ns)
}

// setACLUser sets up the ACL user of namespace ns on every master of rdb.
func setACLUser(ctx context.Context, rdb redis.UniversalClient, keys keyspace, sk *SecretKeys, ns string) error {
	user := keys.aclUser(ns)
	pat := globEscape(keys.namespace(ns)) + "*"
	args := []any{"acl", "setuser", user, "on", ">" + sk.aclPassword(user), "resetkeys", "~" + pat, "resetchannels", "&" + pat}
	for _, r := range aclRules {
		args = append(args, r)
	}
	err := forEachNode(ctx, rdb, func(ctx context.Context, c *redis.Client) error {
		return c.Do(ctx, args...).Err()
	})
	if err != nil {
		return fmt.Errorf("gateway: set up the Redis ACL user of namespace %q: %w", ns, err)
	}
	return nil
}

// delACLUser deletes the ACL user of namespace ns on every master of rdb; Redis
// disconnects its connections.
func delACLUser(ctx context.Context, rdb redis.UniversalClient, keys keyspace, ns string) error {
	return forEachNode(ctx, rdb, func(ctx context.Context, c *redis.Client) error {
		return c.Do(ctx, "acl", "deluser", keys.aclUser(ns)).Err()
	})
}

// client returns the pooled client of namespace ns, authenticated as its ACL user,
// creating the user and the client on first use. Clients idle longer than the idle
// time are closed.
func (a *nsACL) client(ctx context.Context, ns string) (redis.UniversalClient, error) {
	now := time.Now()
	a.mu.Lock()
	if now.Sub(a.lastSweep) > a.idle/4 {
		a.lastSweep = now
		for k, c := range a.clients {
			if now.Sub(c.lastUsed) > a.idle {
				_ = c.cli.Close()
				delete(a.clients, k)
			}
		}
	}
	if c, ok := a.clients[ns]; ok {
		c.lastUsed = now
		a.mu.Unlock()
		return c.cli, nil
	}
	a.mu.Unlock()
	if err := a.ensureUser(ctx, ns); err != nil {
		return nil, err
	}
	user := a.s.aclUser(ns)
	pw := a.s.cfg.SecretKeys.aclPassword(user)
	var cli redis.UniversalClient
	switch c := a.s.rest.(type) {
	case *redis.Client:
		o := *c.Options()
		o.Username, o.Password = user, pw
		o.CredentialsProvider, o.CredentialsProviderContext, o.StreamingCredentialsProvider = nil, nil, nil
		o.PoolSize = 0
		cli = redis.NewClient(&o)
	case *redis.ClusterClient:
		o := *c.Options()
		o.Username, o.Password = user, pw
		o.CredentialsProvider, o.CredentialsProviderContext, o.StreamingCredentialsProvider = nil, nil, nil
		o.PoolSize = 0
		cli = redis.NewClusterClient(&o)
	default:
		return nil, fmt.Errorf("gateway: a namespace needs a *redis.Client or *redis.ClusterClient, not %T", a.s.rest)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.clients[ns]; ok { // another request made one meanwhile
		_ = cli.Close()
		c.lastUsed = now
		return c.cli, nil
	}
	a.clients[ns] = &nsClient{cli: cli, lastUsed: now}
	return cli, nil
}

// forget drops the client of ns (after Redis refused its password), so that the next
// request sets the user up again.
func (a *nsACL) forget(ns string) {
	a.mu.Lock()
	if c, ok := a.clients[ns]; ok {
		_ = c.cli.Close()
		delete(a.clients, ns)
	}
	a.mu.Unlock()
}

// close closes every pooled client.
func (a *nsACL) close() {
	if a == nil {
		return
	}
	a.mu.Lock()
	for k, c := range a.clients {
		_ = c.cli.Close()
		delete(a.clients, k)
	}
	a.mu.Unlock()
}

// pooled reports how many namespace clients are open.
func (a *nsACL) pooled() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.clients)
}

// isAuthError reports whether err says the connection's user or password was refused.
func isAuthError(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "WRONGPASS") || strings.Contains(msg, "WRONGPASS") || strings.HasPrefix(msg, "NOAUTH")
}

// clientFor returns the client that runs tok's commands: its namespace's ACL user's
// where Redis confines namespaces, else the gateway's own.
func (s *Server) clientFor(ctx context.Context, tok *Token, pol CommandPolicy) (redis.UniversalClient, error) {
	if tok.Namespace == "" || !s.acl.confines() {
		return s.rest, nil
	}
	cli, err := s.acl.client(ctx, tok.Namespace)
	if err != nil {
		return nil, err
	}
	return cli, nil
}
