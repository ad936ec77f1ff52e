package userstate

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/cache/internal/userkey"
)

//go:embed userstate_cas.lua
var userStateCASLua string

var userStateCAS = redis.NewScript(userStateCASLua)

// UserStateConfig configures a UserStateStore. Every zero value means the documented
// default.
type UserStateConfig struct {
	// Prefix starts every key; "" means DefaultPrefix ("ts").
	Prefix string
	// TTL is how long a document lives after its last update. 0 means 90 days.
	TTL time.Duration
	// MaxBytes bounds a document. 0 means 64 KiB.
	MaxBytes int
	// Now is the clock of update times; nil means time.Now.
	Now func() time.Time
}

// UserState is a user's state document at a version. Version 0 means no document.
type UserState struct {
	Doc     json.RawMessage
	Version int64
	Updated time.Time
}

// UserStateStore keeps one JSON document per user, versioned; every update is a
// compare-and-set on the version, so a stale writer fails instead of overwriting.
// It is safe for concurrent use.
type UserStateStore struct {
	rdb       redis.UniversalClient
	keys      keyspace
	cfg       UserStateConfig
	conflicts prometheus.Counter
}

// NewUserStateStore returns a store over rdb; its metrics are registered with reg.
func NewUserStateStore(rdb redis.UniversalClient, cfg UserStateConfig, reg prometheus.Registerer) *UserStateStore {
	if cfg.TTL <= 0 {
		cfg.TTL = 90 * 24 * time.Hour
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 64 << 10
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &UserStateStore{
		rdb: rdb, keys: keyspace{prefix: cfg.Prefix}, cfg: cfg,
		conflicts: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "tickstash_cache_user_state_conflicts_total",
			Help: "User state updates refused because the document changed since the writer read it.",
		}),
	}
}

// Get returns the user's document. A user without one gets Version 0 and a nil Doc, and
// no error.
func (s *UserStateStore) Get(ctx context.Context, user string) (UserState, error) {
	if err := userkey.ValidUser(user); err != nil {
		return UserState{}, err
	}
	h, err := s.rdb.HGetAll(ctx, s.keys.UserState(user)).Result()
	if err != nil {
		return UserState{}, fmt.Errorf("cache: user state of %s: %w", user, err)
	}
	if len(h) == 0 {
		return UserState{}, nil
	}
	v, err1 := strconv.ParseInt(h["v"], 10, 64)
	ms, err2 := strconv.ParseInt(h["updated"], 10, 64)
	if err1 != nil || err2 != nil {
		return UserState{}, fmt.Errorf("cache: user state of %s: corrupt hash %v", user, h)
	}
	return UserState{Doc: json.RawMessage(h["doc"]), Version: v, Updated: time.UnixMilli(ms)}, nil
}

// Update replaces the user's document with doc if its current version is version (0:
// there must be no document yet) and returns the new version. It returns an error
// wrapping ErrConflict when the version differs, ErrInvalid when doc is not JSON or the
// user id is bad, ErrTooLarge past MaxBytes; in every error case nothing is written.
func (s *UserStateStore) Update(ctx context.Context, user string, version int64, doc json.RawMessage) (int64, error) {
	if err := userkey.ValidUser(user); err != nil {
		return 0, err
	}
	if err := userkey.ValidJSON("user state of "+user, doc, s.cfg.MaxBytes); err != nil {
		return 0, err
	}
	res, err := userStateCAS.Run(ctx, s.rdb, []string{s.keys.UserState(user)},
		version, string(doc), s.cfg.Now().UnixMilli(), s.cfg.TTL.Milliseconds()).Int64Slice()
	if err != nil {
		return 0, fmt.Errorf("cache: update user state of %s: %w", user, err)
	}
	if res[0] == 0 {
		s.conflicts.Inc()
		return res[1], fmt.Errorf("%w: user state of %s is at version %d, not %d", cache.ErrConflict, user, res[1], version)
	}
	return res[1], nil
}

// Modify reads the user's document, applies fn to it (nil when there is none) and
// writes the result with Update, retrying from the read on a conflict, at most 16 times.
// It returns the written state, fn's error as is, or Update's error.
func (s *UserStateStore) Modify(ctx context.Context, user string, fn func(doc json.RawMessage) (json.RawMessage, error)) (UserState, error) {
	var err error
	for range 16 {
		var cur UserState
		if cur, err = s.Get(ctx, user); err != nil {
			return UserState{}, err
		}
		next, ferr := fn(cur.Doc)
		if ferr != nil {
			return UserState{}, ferr
		}
		v, uerr := s.Update(ctx, user, cur.Version, next)
		if uerr == nil {
			return UserState{Doc: next, Version: v, Updated: s.cfg.Now()}, nil
		}
		if err = uerr; !errors.Is(err, cache.ErrConflict) {
			return UserState{}, err
		}
	}
	return UserState{}, err
}

// Delete removes the user's document. Deleting a missing document is not an error.
func (s *UserStateStore) Delete(ctx context.Context, user string) error {
	if err := userkey.ValidUser(user); err != nil {
		return err
	}
	if err := s.rdb.Del(ctx, s.keys.UserState(user)).Err(); err != nil {
		return fmt.Errorf("cache: delete user state of %s: %w", user, err)
	}
	return nil
}
