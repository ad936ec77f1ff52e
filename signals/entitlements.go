package signals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/market"
)

// Any, in Entitlement.Strategies or Entitlement.Symbols, grants every one.
const Any = "*"

// ErrNoEntitlement is returned by EntitlementStore.Get for a user without entitlements.
var ErrNoEntitlement = errors.New("signals: no entitlement")

// ErrGrantsNothing is returned by EntitlementStore.Put for an entitlement with no
// strategies or no symbols: it would allow nothing (Any grants all).
var ErrGrantsNothing = errors.New("signals: entitlement grants nothing")

// Entitlement says which signals a user may receive: those of one of Strategies on one
// of Symbols. Empty lists grant nothing; Any grants all.
type Entitlement struct {
	User       string   `json:"user"`
	Strategies []string `json:"strategies"`
	Symbols    []string `json:"symbols"`
}

// Allows reports whether the entitlement covers a signal of strategy on sym.
func (e *Entitlement) Allows(strategy string, sym market.Symbol) bool {
	return (slices.Contains(e.Strategies, Any) || slices.Contains(e.Strategies, strategy)) &&
		(slices.Contains(e.Symbols, Any) || slices.Contains(e.Symbols, string(sym)))
}

// Validate checks the user name (non-empty, at most 128 bytes, no whitespace, '.', '*'
// or '>'), the strategy names and the symbols.
func (e *Entitlement) Validate() error {
	if e.User == "" || len(e.User) > 128 {
		return fmt.Errorf("signals: entitlement: user %q: want 1 to 128 bytes", e.User)
	}
	for _, c := range e.User {
		if c <= ' ' || c == '.' || c == '*' || c == '>' || c == 0x7f {
			return fmt.Errorf("signals: entitlement: user %q: no spaces, '.', '*' or '>'", e.User)
		}
	}
	for _, s := range e.Strategies {
		if s == Any {
			continue
		}
		if err := market.ValidateStrategyName(s); err != nil {
			return fmt.Errorf("signals: entitlement of %s: %w", e.User, err)
		}
	}
	for _, s := range e.Symbols {
		if s == Any {
			continue
		}
		if err := market.Symbol(s).Validate(); err != nil {
			return fmt.Errorf("signals: entitlement of %s: %w", e.User, err)
		}
	}
	return nil
}

// EntitlementConfig configures an EntitlementStore.
type EntitlementConfig struct {
	// Prefix starts the store's Redis keys. The zero value means "ts".
	Prefix string
	// TTL is how long a stored entitlement lives unless Put again. The zero value
	// means 30 days.
	TTL time.Duration
	// CacheTTL is how long Allowed trusts an entitlement it read. The zero value means
	// 5s; a negative value reads Redis every time.
	CacheTTL time.Duration
	// Now is the clock of the cache and of the user index. The zero value means time.Now.
	Now func() time.Time
}

// EntitlementStore keeps entitlements in Redis, one key per user with a TTL, plus an
// index of users bounded by the same TTL. It is safe for concurrent use.
type EntitlementStore struct {
	rdb  redis.UniversalClient
	cfg  EntitlementConfig
	keys keyspace

	mu    sync.Mutex
	cache map[string]cachedEntitlement
}

type cachedEntitlement struct {
	e     *Entitlement // nil: none
	until time.Time
}

// NewEntitlementStore returns a store over rdb.
func NewEntitlementStore(rdb redis.UniversalClient, cfg EntitlementConfig) *EntitlementStore {
	if cfg.TTL <= 0 {
		cfg.TTL = 30 * 24 * time.Hour
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &EntitlementStore{rdb: rdb, cfg: cfg, keys: newKeyspace(cfg.Prefix), cache: map[string]cachedEntitlement{}}
}

// Put stores e, replacing the user's previous entitlement, for EntitlementConfig.TTL.
// It returns a validation error, an error wrapping ErrGrantsNothing if e lists no
// strategy or no symbol, or the Redis error. (To take a user's signals away, Delete.)
func (s *EntitlementStore) Put(ctx context.Context, e Entitlement) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if len(e.Strategies) == 0 || len(e.Symbols) == 0 {
		return fmt.Errorf("%w: %s has %d strategies and %d symbols; list at least one of each, or %q for all",
			ErrGrantsNothing, e.User, len(e.Strategies), len(e.Symbols), Any)
	}
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("signals: entitlement of %s: %w", e.User, err)
	}
	now := s.cfg.Now()
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.keys.entitlement(e.User), data, s.cfg.TTL)
		p.ZAdd(ctx, s.keys.entitlementUsers(), redis.Z{Score: float64(now.Add(s.cfg.TTL).UnixMilli()), Member: e.User})
		p.ZRemRangeByScore(ctx, s.keys.entitlementUsers(), "-inf", "("+strconv.FormatInt(now.UnixMilli(), 10))
		p.Expire(ctx, s.keys.entitlementUsers(), s.cfg.TTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("signals: put entitlement of %s: %w", e.User, err)
	}
	s.forget(e.User)
	return nil
}

// Delete removes the user's entitlement.
func (s *EntitlementStore) Delete(ctx context.Context, user string) error {
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.keys.entitlement(user))
		p.ZRem(ctx, s.keys.entitlementUsers(), user)
		return nil
	})
	if err != nil {
		return fmt.Errorf("signals: delete entitlement of %s: %w", user, err)
	}
	s.forget(user)
	return nil
}

func (s *EntitlementStore) forget(user string) {
	s.mu.Lock()
	delete(s.cache, user)
	s.mu.Unlock()
}

// Get reads the user's entitlement from Redis. It returns an error wrapping
// ErrNoEntitlement if there is none.
func (s *EntitlementStore) Get(ctx context.Context, user string) (Entitlement, error) {
	data, err := s.rdb.Get(ctx, s.keys.entitlement(user)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Entitlement{}, fmt.Errorf("%w for user %s", ErrNoEntitlement, user)
	}
	if err != nil {
		return Entitlement{}, fmt.Errorf("signals: entitlement of %s: %w", user, err)
	}
	var e Entitlement
	if err := json.Unmarshal(data, &e); err != nil {
		return Entitlement{}, fmt.Errorf("signals: entitlement of %s: %w", user, err)
	}
	return e, nil
}

// List returns every stored entitlement, ordered by user.
func (s *EntitlementStore) List(ctx context.Context) ([]Entitlement, error) {
	now := strconv.FormatInt(s.cfg.Now().UnixMilli(), 10)
	users, err := s.rdb.ZRangeByScore(ctx, s.keys.entitlementUsers(), &redis.ZRangeBy{Min: now, Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("signals: list entitlements: %w", err)
	}
	slices.Sort(users)
	var out []Entitlement
	for _, u := range users {
		e, err := s.Get(ctx, u)
		if errors.Is(err, ErrNoEntitlement) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Allowed reports whether user may receive a signal of strategy on sym, from an
// in-process copy of the entitlement no older than EntitlementConfig.CacheTTL. A user
// without an entitlement is allowed nothing. It returns the Redis error, if any.
func (s *EntitlementStore) Allowed(ctx context.Context, user, strategy string, sym market.Symbol) (bool, error) {
	now := s.cfg.Now()
	s.mu.Lock()
	c, ok := s.cache[user]
	s.mu.Unlock()
	if !ok || !now.Before(c.until) {
		e, err := s.Get(ctx, user)
		switch {
		case errors.Is(err, ErrNoEntitlement):
			c = cachedEntitlement{}
		case err != nil:
			return false, err
		default:
			c = cachedEntitlement{e: &e}
		}
		if s.cfg.CacheTTL > 0 {
			c.until = now.Add(s.cfg.CacheTTL)
			s.mu.Lock()
			if len(s.cache) >= 65536 {
				clear(s.cache)
			}
			s.cache[user] = c
			s.mu.Unlock()
		}
	}
	return c.e != nil && c.e.Allows(strategy, sym), nil
}
