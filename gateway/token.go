package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Token errors. Authenticate returns exactly one of them (wrapped) for a token it
// refuses; the gateway answers 401 for each and counts the reason.
var (
	ErrTokenMalformed = errors.New("gateway: malformed token")
	ErrTokenUnknown   = errors.New("gateway: unknown token")
	ErrTokenExpired   = errors.New("gateway: token expired")
	ErrTokenRevoked   = errors.New("gateway: token revoked")
	// ErrInvalidTokenSpec is wrapped by Create for a spec that does not validate.
	ErrInvalidTokenSpec = errors.New("gateway: invalid token spec")
)

// Scope names what a token may call. A route needs exactly one scope.
type Scope string

// The scopes.
const (
	ScopeMarketRead       Scope = "market:read"
	ScopeJobsWrite        Scope = "jobs:write"
	ScopeJobsRead         Scope = "jobs:read"
	ScopeSignalsRead      Scope = "signals:read"
	ScopeLeaderboardRead  Scope = "leaderboard:read"
	ScopeLeaderboardWrite Scope = "leaderboard:write"
	ScopeSessionsRead     Scope = "sessions:read"
	ScopeSessionsWrite    Scope = "sessions:write"
	ScopeStateRead        Scope = "state:read"
	ScopeStateWrite       Scope = "state:write"
	ScopeFlagsRead        Scope = "flags:read"
	ScopeUsageRead        Scope = "usage:read"
	ScopeRedis            Scope = "redis"
)

// Scopes lists every scope, in a stable order.
var Scopes = []Scope{
	ScopeMarketRead, ScopeJobsWrite, ScopeJobsRead, ScopeSignalsRead, ScopeLeaderboardRead,
	ScopeLeaderboardWrite, ScopeSessionsRead, ScopeSessionsWrite, ScopeStateRead, ScopeStateWrite,
	ScopeFlagsRead, ScopeUsageRead, ScopeRedis,
}

// RedisClass is which commands a token may send to the Redis REST endpoint.
type RedisClass string

// The Redis command classes. The zero value allows none.
const (
	RedisNone  RedisClass = ""
	RedisRead  RedisClass = "read"
	RedisWrite RedisClass = "write" // reads and writes
)

// TokenSpec is what Create needs to issue a token.
type TokenSpec struct {
	// Name says who or what holds the token; required, at most 64 characters.
	Name string
	// Subject is the user the token acts for (signal entitlements, per-user state); "" means Name.
	Subject string
	// Scopes the token grants; at least one, each from Scopes.
	Scopes []Scope
	// TTL is how long the token lives; it must be positive (every key is bounded).
	TTL time.Duration
	// Rate is the token's rate policy in ParseRate's syntax; "" means the server's
	// Config.DefaultRate.
	Rate string
	// Redis is the token's command class on /redis; RedisNone with the redis scope is an error.
	Redis RedisClass
	// RedisScripts allows EVAL/EVALSHA (and SCRIPT LOAD/EXISTS) on /redis, with every
	// declared key under KeyPrefixes. Lua can reach keys it does not declare, so grant it
	// only to trusted callers.
	RedisScripts bool
	// KeyPrefixes bound every key argument on /redis (the key-prefix mode, for tokens
	// that share keys with an application). A /redis token needs either KeyPrefixes or a
	// Namespace; no prefix may overlap the store prefix (Create refuses it).
	KeyPrefixes []string
	// Namespace gives the token a private database on /redis: every key is stored as
	// <store prefix>:rns:{<namespace>}:<key> and replies show the client's own names
	// (namespace.go). Several tokens may share one. 1 to 64 of [A-Za-z0-9_.-]; "" means
	// the key-prefix mode. Exclusive with KeyPrefixes.
	Namespace string
	// Signing requires every request of the token to be signed (see signing.go).
	Signing bool
}

// Token is a stored token, without its secret.
type Token struct {
	ID           string     `json:"id"`
	Name         string     `json:"name"`
	Subject      string     `json:"subject"`
	Scopes       []Scope    `json:"scopes"`
	CreatedAt    time.Time  `json:"created_at"`
	ExpiresAt    time.Time  `json:"expires_at"`
	Revoked      bool       `json:"revoked,omitempty"`
	Rate         string     `json:"rate,omitempty"`
	Redis        RedisClass `json:"redis,omitempty"`
	RedisScripts bool       `json:"redis_scripts,omitempty"`
	KeyPrefixes  []string   `json:"key_prefixes,omitempty"`
	Namespace    string     `json:"namespace,omitempty"`
	Signing      bool       `json:"signing,omitempty"`
	// Secrets are the active signing secrets, newest first (two during a rotation), in
	// clear. Authenticate and Create fill them in; List leaves them out.
	Secrets []string `json:"-"`
	// SecretKey is the id of the key the stored secrets are sealed with; "" for none
	// (a token without signing, or secrets stored before encryption).
	SecretKey string `json:"secret_key,omitempty"`

	hash   string
	sealed []string // Secrets as stored (secretkeys.go)
}

// Has reports whether the token grants scope s.
func (t *Token) Has(s Scope) bool { return slices.Contains(t.Scopes, s) }

// TokenStoreConfig configures a TokenStore.
type TokenStoreConfig struct {
	// Prefix starts every key; "" means "ts".
	Prefix string
	// Now is the clock for expiry; nil means time.Now.
	Now func() time.Time
	// SecretKeys seal the signing secrets written and open those read; nil means none:
	// Create refuses signing tokens and Authenticate refuses a signing token whose
	// secret is sealed, each with an error wrapping ErrNoSecretKey.
	SecretKeys *SecretKeys
	// NoRedisACL makes Create and Revoke leave namespaces' Redis ACL users alone (the
	// gateway's Config.NoRedisACL); the zero value sets them up and deletes them.
	NoRedisACL bool
	// Publisher announces revocations and secret rotations to running gateways
	// (tokenevents.go); nil announces nothing, and gateways notice changes within their
	// token cache TTL.
	Publisher Publisher
}

// TokenStore keeps tokens in Redis as SHA-256 hashes of the secret token string: the
// string itself is returned once by Create and never stored. Safe for concurrent use.
type TokenStore struct {
	rdb  redis.UniversalClient
	keys keyspace
	now  func() time.Time
	pub  Publisher
	sk   *SecretKeys
	// noACL: leave namespaces' ACL users alone
	noACL bool
}

// NewTokenStore returns a store over rdb.
func NewTokenStore(rdb redis.UniversalClient, cfg TokenStoreConfig) *TokenStore {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &TokenStore{rdb: rdb, keys: newKeyspace(cfg.Prefix), now: cfg.Now, pub: cfg.Publisher, sk: cfg.SecretKeys, noACL: cfg.NoRedisACL}
}

const tokenPrefix = "tsk_"

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func hashToken(raw string) string {
	h := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(h[:])
}

// Validate reports the first problem of the spec, wrapping ErrInvalidTokenSpec.
func (s TokenSpec) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidTokenSpec, fmt.Sprintf(format, a...))
	}
	if s.Name == "" || len(s.Name) > 64 || strings.ContainsAny(s.Name, "\r\n") {
		return bad("name %q: want 1 to 64 characters on one line", s.Name)
	}
	if len(s.Subject) > 128 {
		return bad("subject: at most 128 characters")
	}
	if len(s.Scopes) == 0 {
		return bad("no scopes: give at least one of %s", scopeList())
	}
	for _, sc := range s.Scopes {
		if !slices.Contains(Scopes, sc) {
			return bad("unknown scope %q: want %s", sc, scopeList())
		}
	}
	if s.TTL <= 0 {
		return bad("ttl %v: must be positive", s.TTL)
	}
	if s.Rate != "" {
		if _, err := ParseRate(s.Rate); err != nil {
			return bad("rate: %v", err)
		}
	}
	switch s.Redis {
	case RedisNone, RedisRead, RedisWrite:
	default:
		return bad("redis class %q: want read or write", s.Redis)
	}
	if slices.Contains(s.Scopes, ScopeRedis) && s.Redis == RedisNone {
		return bad("the redis scope needs a command class (read or write)")
	}
	for _, p := range s.KeyPrefixes {
		if p == "" || strings.ContainsAny(p, "*?[]\\") {
			return bad("key prefix %q: must be non-empty and free of glob characters", p)
		}
	}
	if s.Namespace != "" {
		if !validNamespace(s.Namespace) {
			return bad("namespace %q: want 1 to 64 of A-Z a-z 0-9 _ . -", s.Namespace)
		}
		if len(s.KeyPrefixes) > 0 {
			return bad("a token has a namespace or key prefixes, not both")
		}
	}
	if s.Redis != RedisNone && s.Namespace == "" && len(s.KeyPrefixes) == 0 {
		return bad("a /redis token needs a namespace (a private database) or key prefixes: every key is otherwise reachable")
	}
	return nil
}

func validNamespace(ns string) bool {
	if ns == "" || len(ns) > 64 {
		return false
	}
	for _, c := range []byte(ns) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// overlapsStore reports whether keys under prefix p may be keys of the store whose
// prefix is store (every tickstash key starts with "<store>:").
func overlapsStore(p, store string) bool {
	return strings.HasPrefix(p, store+":") || strings.HasPrefix(store+":", p)
}

func scopeList() string {
	var b []string
	for _, s := range Scopes {
		b = append(b, string(s))
	}
	return strings.Join(b, ", ")
}

// ParseScopes parses a comma-separated scope list; unknown names are an error.
func ParseScopes(s string) ([]Scope, error) {
	var out []Scope
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !slices.Contains(Scopes, Scope(part)) {
			return nil, fmt.Errorf("unknown scope %q: want %s", part, scopeList())
		}
		out = append(out, Scope(part))
	}
	return out, nil
}

// Create issues a token. It returns the secret token string (shown once: only its hash
// is stored), the signing secret when spec.Signing (also shown once), and the record.
// The signing secret is stored sealed with the store's SecretKeys. It returns an error
// wrapping ErrInvalidTokenSpec for a bad spec, or ErrNoSecretKey for a signing token
// when the store has no secret key.
func (s *TokenStore) Create(ctx context.Context, spec TokenSpec) (raw, signingSecret string, tok Token, err error) {
	if err := spec.Validate(); err != nil {
		return "", "", Token{}, err
	}
	for _, p := range spec.KeyPrefixes {
		if overlapsStore(p, s.keys.prefix) {
			return "", "", Token{}, fmt.Errorf("%w: key prefix %q overlaps the store prefix %q: the token could read and forge tickstash's own keys (tokens, audit); choose another prefix or a --namespace",
				ErrInvalidTokenSpec, p, s.keys.prefix+":")
		}
	}
	if spec.Signing && s.sk == nil {
		return "", "", Token{}, fmt.Errorf("gateway: create a signing token: %w", ErrNoSecretKey)
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	raw = tokenPrefix + randomString(32)
	tok = Token{
		ID: "tok_" + randomHex(6), Name: spec.Name,
		Subject: spec.Subject, Scopes: spec.Scopes, CreatedAt: now, ExpiresAt: now.Add(spec.TTL),
		Rate: spec.Rate, Redis: spec.Redis, RedisScripts: spec.RedisScripts, KeyPrefixes: spec.KeyPrefixes,
		Namespace: spec.Namespace, Signing: spec.Signing, hash: hashToken(raw),
	}
	if tok.Subject == "" {
		tok.Subject = tok.Name
	}
	if spec.Signing {
		signingSecret = "tss_" + randomString(32)
		tok.Secrets = []string{signingSecret}
		sealed, err := s.sk.seal(tok.ID, signingSecret)
		if err != nil {
			return "", "", Token{}, fmt.Errorf("gateway: create token: %w", err)
		}
		tok.sealed, tok.SecretKey = []string{sealed}, s.sk.Current()
	}
	key := s.keys.token(tok.hash)
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, tok.fields())
		p.PExpireAt(ctx, key, tok.ExpiresAt)
		return nil
	})
	if err == nil {
		// The index is a separate key (another slot on a cluster); it is only for list
		// and revoke, so a crash between the two writes loses nothing that matters.
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, s.keys.tokens(), tok.ID, tok.hash)
			p.ExpireGT(ctx, s.keys.tokens(), spec.TTL)
			p.ExpireNX(ctx, s.keys.tokens(), spec.TTL)
			return nil
		})
	}
	if err != nil {
		return "", "", Token{}, fmt.Errorf("gateway: create token: %w", err)
	}
	if tok.Namespace != "" && s.sk != nil && !s.noACL {
		// Best effort: a Redis without ACLs runs namespaces as the gateway's user, and
		// the gateway sets the user up at first use anyway.
		_ = setACLUser(ctx, s.rdb, s.keys, s.sk, tok.Namespace)
	}
	return raw, signingSecret, tok, nil
}

func (t *Token) fields() map[string]any {
	scopes := make([]string, len(t.Scopes))
	for i, s := range t.Scopes {
		scopes[i] = string(s)
	}
	return map[string]any{
		"id": t.ID, "name": t.Name, "subject": t.Subject, "scopes": strings.Join(scopes, ","),
		"created": t.CreatedAt.UnixMilli(), "expires": t.ExpiresAt.UnixMilli(), "revoked": boolInt(t.Revoked),
		"rate": t.Rate, "redis": string(t.Redis), "scripts": boolInt(t.RedisScripts),
		"prefixes": strings.Join(t.KeyPrefixes, "\n"), "signing": boolInt(t.Signing), "ns": t.Namespace,
		"secrets": strings.Join(t.sealed, ","), "hash": t.hash,
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func tokenFromFields(h map[string]string) (Token, error) {
	t := Token{ID: h["id"], Name: h["name"], Subject: h["subject"], Rate: h["rate"],
		Redis: RedisClass(h["redis"]), RedisScripts: h["scripts"] == "1", Signing: h["signing"] == "1",
		Revoked: h["revoked"] == "1", hash: h["hash"], Namespace: h["ns"]}
	for _, s := range strings.Split(h["scopes"], ",") {
		if s != "" {
			t.Scopes = append(t.Scopes, Scope(s))
		}
	}
	if h["prefixes"] != "" {
		t.KeyPrefixes = strings.Split(h["prefixes"], "\n")
	}
	if h["secrets"] != "" {
		t.sealed = strings.Split(h["secrets"], ",")
		t.SecretKey = sealedWith(t.sealed[0])
	}
	c, err1 := strconv.ParseInt(h["created"], 10, 64)
	e, err2 := strconv.ParseInt(h["expires"], 10, 64)
	if t.ID == "" || err1 != nil || err2 != nil {
		return Token{}, errors.New("gateway: corrupt token record")
	}
	t.CreatedAt, t.ExpiresAt = time.UnixMilli(c).UTC(), time.UnixMilli(e).UTC()
	return t, nil
}

// Authenticate returns the token whose secret string is raw. It returns an error
// wrapping ErrTokenMalformed, ErrTokenUnknown, ErrTokenExpired or ErrTokenRevoked when
// the token cannot be used, ErrNoSecretKey or ErrSecretKey when its signing secrets do
// not open with the store's SecretKeys, or a Redis error.
func (s *TokenStore) Authenticate(ctx context.Context, raw string) (Token, error) {
	if !tokenShaped(raw) {
		return Token{}, ErrTokenMalformed
	}
	tok, err := s.byHash(ctx, hashToken(raw))
	if err != nil {
		return Token{}, err
	}
	if err := s.usable(&tok); err != nil {
		return tok, err
	}
	if err := s.openSecrets(&tok); err != nil {
		return Token{}, err
	}
	return tok, nil
}

// openSecrets fills in t.Secrets from the stored ones.
func (s *TokenStore) openSecrets(t *Token) error {
	t.Secrets = make([]string, 0, len(t.sealed))
	for _, stored := range t.sealed {
		secret, err := s.sk.open(t.ID, stored)
		if err != nil {
			return err
		}
		t.Secrets = append(t.Secrets, secret)
	}
	return nil
}

// sealSecrets seals secrets of token id with the current key.
func (s *TokenStore) sealSecrets(id string, secrets []string) (string, error) {
	out := make([]string, len(secrets))
	for i, secret := range secrets {
		var err error
		if out[i], err = s.sk.seal(id, secret); err != nil {
			return "", err
		}
	}
	return strings.Join(out, ","), nil
}

// usable checks expiry and revocation at the store's clock.
func (s *TokenStore) usable(t *Token) error {
	switch {
	case t.Revoked:
		return ErrTokenRevoked
	case !s.now().Before(t.ExpiresAt):
		return ErrTokenExpired
	}
	return nil
}

func (s *TokenStore) byHash(ctx context.Context, hash string) (Token, error) {
	h, err := s.rdb.HGetAll(ctx, s.keys.token(hash)).Result()
	if err != nil {
		return Token{}, fmt.Errorf("gateway: token lookup: %w", err)
	}
	if len(h) == 0 {
		return Token{}, ErrTokenUnknown
	}
	// The key is the hash, so Redis already matched it; compare again in constant time
	// so that no code path compares token material with a short-circuiting ==.
	if subtle.ConstantTimeCompare([]byte(h["hash"]), []byte(hash)) != 1 {
		return Token{}, ErrTokenUnknown
	}
	return tokenFromFields(h)
}

// List returns every token not yet expired from Redis (revoked ones included), by name.
func (s *TokenStore) List(ctx context.Context) ([]Token, error) {
	idx, err := s.rdb.HGetAll(ctx, s.keys.tokens()).Result()
	if err != nil {
		return nil, fmt.Errorf("gateway: list tokens: %w", err)
	}
	var out []Token
	for id, hash := range idx {
		t, err := s.byHash(ctx, hash)
		if errors.Is(err, ErrTokenUnknown) {
			s.rdb.HDel(ctx, s.keys.tokens(), id) // expired: prune the index
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func (s *TokenStore) hashOf(ctx context.Context, id string) (string, error) {
	hash, err := s.rdb.HGet(ctx, s.keys.tokens(), id).Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("%w: %s", ErrTokenUnknown, id)
	}
	if err != nil {
		return "", fmt.Errorf("gateway: token %s: %w", id, err)
	}
	return hash, nil
}

// Revoke marks token id revoked; the record stays until its expiry so that its use is
// reported as revoked. With a Publisher the revocation is announced, and running
// servers subscribed to it (Deps.NATS) refuse the token at once; others notice within
// Config.TokenCacheTTL. It returns an error wrapping ErrTokenUnknown for an id it does
// not know, or ErrTokenEventNotSent when the token is revoked but the announcement
// failed.
func (s *TokenStore) Revoke(ctx context.Context, id string) error {
	hash, err := s.hashOf(ctx, id)
	if err != nil {
		return err
	}
	n, err := s.rdb.Exists(ctx, s.keys.token(hash)).Result()
	if err != nil {
		return fmt.Errorf("gateway: revoke %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s (expired)", ErrTokenUnknown, id)
	}
	if err := s.rdb.HSet(ctx, s.keys.token(hash), "revoked", 1).Err(); err != nil {
		return fmt.Errorf("gateway: revoke %s: %w", id, err)
	}
	if ns, _ := s.rdb.HGet(ctx, s.keys.token(hash), "ns").Result(); ns != "" && !s.noACL {
		s.dropNamespaceUser(ctx, ns)
	}
	return s.announce(id, TokenRevoked)
}

// RotateSecret gives a signing token a new secret and keeps the newest previous one
// active beside it, so callers can switch over; the secret before that stops working.
// Both are stored sealed with the current secret key. The rotation is announced like a
// revocation. It returns the new secret, or an error wrapping ErrTokenUnknown,
// ErrInvalidTokenSpec (the token does not sign), ErrNoSecretKey or ErrSecretKey; with
// ErrTokenEventNotSent it returns the new secret too, which is stored.
func (s *TokenStore) RotateSecret(ctx context.Context, id string) (string, error) {
	hash, err := s.hashOf(ctx, id)
	if err != nil {
		return "", err
	}
	t, err := s.byHash(ctx, hash)
	if err != nil {
		return "", err
	}
	if !t.Signing {
		return "", fmt.Errorf("%w: token %s was not created with signing", ErrInvalidTokenSpec, id)
	}
	if s.sk == nil {
		return "", fmt.Errorf("gateway: rotate %s: %w", id, ErrNoSecretKey)
	}
	if err := s.openSecrets(&t); err != nil {
		return "", fmt.Errorf("gateway: rotate %s: %w", id, err)
	}
	secret := "tss_" + randomString(32)
	secrets := []string{secret}
	if len(t.Secrets) > 0 {
		secrets = append(secrets, t.Secrets[0])
	}
	sealed, err := s.sealSecrets(id, secrets)
	if err != nil {
		return "", fmt.Errorf("gateway: rotate %s: %w", id, err)
	}
	n, err := tokenSecretsCAS.Run(ctx, s.rdb, []string{s.keys.token(hash)}, strings.Join(t.sealed, ","), sealed).Int()
	if err != nil {
		return "", fmt.Errorf("gateway: rotate %s: %w", id, err)
	}
	if n == 0 {
		return "", fmt.Errorf("gateway: rotate %s: the token expired or was rotated meanwhile; run again", id)
	}
	return secret, s.announce(id, TokenRotated)
}

// Reseal seals every stored signing secret with the current secret key: after a key is
// added in front of the others, it moves every token to it, so that the old key can be
// dropped. Secrets already sealed with the current key are left alone, and a secret
// rotated meanwhile is not overwritten. It returns how many tokens it resealed, and an
// error (wrapping ErrNoSecretKey without a key, ErrSecretKey for secrets that do not
// open) naming every token it could not reseal; it reseals the others all the same.
func (s *TokenStore) Reseal(ctx context.Context) (int, error) {
	if s.sk == nil {
		return 0, fmt.Errorf("gateway: reseal: %w", ErrNoSecretKey)
	}
	idx, err := s.rdb.HGetAll(ctx, s.keys.tokens()).Result()
	if err != nil {
		return 0, fmt.Errorf("gateway: reseal: list tokens: %w", err)
	}
	n := 0
	var errs []error
	for id, hash := range idx {
		done, err := s.reseal(ctx, id, hash)
		if err != nil {
			errs = append(errs, err)
		}
		if done {
			n++
		}
	}
	return n, errors.Join(errs...)
}

//go:embed token_secrets_cas.lua
var tokenSecretsCASLua string

var tokenSecretsCAS = redis.NewScript(tokenSecretsCASLua)

// reseal reseals one token's secrets; a concurrent rotation wins (it seals with the
// current key too).
func (s *TokenStore) reseal(ctx context.Context, id, hash string) (bool, error) {
	key := s.keys.token(hash)
	stored, err := s.rdb.HGet(ctx, key, "secrets").Result()
	if errors.Is(err, redis.Nil) || (err == nil && stored == "") {
		return false, nil // expired, or no signing
	}
	if err != nil {
		return false, fmt.Errorf("gateway: reseal %s: %w", id, err)
	}
	t := Token{ID: id, sealed: strings.Split(stored, ",")}
	current := true
	for _, p := range t.sealed {
		current = current && sealedWith(p) == s.sk.Current()
	}
	if current {
		return false, nil
	}
	if err := s.openSecrets(&t); err != nil {
		return false, fmt.Errorf("gateway: reseal %s: %w", id, err)
	}
	sealed, err := s.sealSecrets(id, t.Secrets)
	if err != nil {
		return false, fmt.Errorf("gateway: reseal %s: %w", id, err)
	}
	n, err := tokenSecretsCAS.Run(ctx, s.rdb, []string{key}, stored, sealed).Int()
	if err != nil {
		return false, fmt.Errorf("gateway: reseal %s: %w", id, err)
	}
	return n == 1, nil
}

// dropNamespaceUser deletes the Redis ACL user of namespace ns when no usable token of
// the namespace is left. Best effort: a user left behind is reachable only through the
// gateway, which refuses revoked tokens.
func (s *TokenStore) dropNamespaceUser(ctx context.Context, ns string) {
	toks, err := s.List(ctx)
	if err != nil {
		return
	}
	for i := range toks {
		if toks[i].Namespace == ns && s.usable(&toks[i]) == nil {
			return
		}
	}
	_ = delACLUser(ctx, s.rdb, s.keys, ns)
}
