package session

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/cache/internal/userkey"
)

//go:embed session_create.lua
var sessionCreateLua string

var sessionCreate = redis.NewScript(sessionCreateLua)

// SessionConfig configures a SessionStore. Every zero value means the documented default.
type SessionConfig struct {
	// Prefix starts every key; "" means DefaultPrefix ("ts").
	Prefix string
	// TTL is how long a session lives after its creation or its last Touch (sliding).
	// 0 means 24h.
	TTL time.Duration
	// MaxPerUser is how many live sessions a user may hold: creating one more evicts the
	// oldest. 0 means 10.
	MaxPerUser int
	// MaxDataBytes bounds a session's JSON data. 0 means 16 KiB.
	MaxDataBytes int
	// Now is the clock of creation times; nil means time.Now. Expiry itself is Redis's.
	Now func() time.Time
}

// Session is a user's session.
type Session struct {
	// ID is opaque to callers: "<user>.<random>", with 128 random bits.
	ID      string
	User    string
	Data    json.RawMessage
	Created time.Time
	// TTL is the time left before the session expires, as of the read.
	TTL time.Duration
}

// SessionStore keeps users' sessions in Redis. It is safe for concurrent use.
type SessionStore struct {
	rdb     redis.UniversalClient
	keys    keyspace
	cfg     SessionConfig
	evicted prometheus.Counter
	created prometheus.Counter
}

// NewSessionStore returns a store over rdb; its metrics are registered with reg.
func NewSessionStore(rdb redis.UniversalClient, cfg SessionConfig, reg prometheus.Registerer) *SessionStore {
	if cfg.TTL <= 0 {
		cfg.TTL = 24 * time.Hour
	}
	if cfg.MaxPerUser <= 0 {
		cfg.MaxPerUser = 10
	}
	if cfg.MaxDataBytes <= 0 {
		cfg.MaxDataBytes = 16 << 10
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	f := promauto.With(reg)
	return &SessionStore{
		rdb: rdb, keys: keyspace{prefix: cfg.Prefix}, cfg: cfg,
		created: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_cache_sessions_created_total",
			Help: "Sessions created.",
		}),
		evicted: f.NewCounter(prometheus.CounterOpts{
			Name: "tickstash_cache_sessions_evicted_total",
			Help: "Sessions evicted because their user created more than the per-user cap.",
		}),
	}
}

// Create starts a session for user holding data (JSON; nil means null) and returns it.
// When the user then holds more than MaxPerUser live sessions, the oldest are destroyed.
// It returns an error wrapping ErrInvalid (bad user, data not JSON) or ErrTooLarge
// before anything is written.
func (s *SessionStore) Create(ctx context.Context, user string, data json.RawMessage) (Session, error) {
	if err := userkey.ValidUser(user); err != nil {
		return Session{}, err
	}
	if data == nil {
		data = json.RawMessage("null")
	}
	if err := userkey.ValidJSON("session data", data, s.cfg.MaxDataBytes); err != nil {
		return Session{}, err
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Session{}, err
	}
	random := base64.RawURLEncoding.EncodeToString(b[:])
	now := s.cfg.Now()
	sess := Session{ID: user + "." + random, User: user, Data: data, Created: time.UnixMilli(now.UnixMilli()), TTL: s.cfg.TTL}
	evicted, err := sessionCreate.Run(ctx, s.rdb,
		[]string{s.keys.UserSessions(user), s.keys.Session(user, random)},
		sess.ID, now.UnixMilli(), s.cfg.TTL.Milliseconds(), s.cfg.MaxPerUser, user, string(data),
		s.keys.Session(user, "")).StringSlice()
	if err != nil {
		return Session{}, fmt.Errorf("cache: create session for %s: %w", user, err)
	}
	s.created.Inc()
	s.evicted.Add(float64(len(evicted)))
	return sess, nil
}

// parseID splits a session id into user and random part.
func parseID(id string) (user, random string, err error) {
	i := strings.LastIndexByte(id, '.')
	if i <= 0 || i == len(id)-1 {
		return "", "", fmt.Errorf("%w: session %q", cache.ErrNotFound, id)
	}
	return id[:i], id[i+1:], nil
}

// Get returns the session with id. It returns an error wrapping ErrNotFound when there
// is none (never created, destroyed, evicted or expired). Get does not extend the TTL.
func (s *SessionStore) Get(ctx context.Context, id string) (Session, error) {
	user, random, err := parseID(id)
	if err != nil {
		return Session{}, err
	}
	key := s.keys.Session(user, random)
	var h *redis.MapStringStringCmd
	var ttl *redis.DurationCmd
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		h = p.HGetAll(ctx, key)
		ttl = p.PTTL(ctx, key)
		return nil
	})
	if err != nil {
		return Session{}, fmt.Errorf("cache: get session: %w", err)
	}
	return sessionFrom(id, h.Val(), ttl.Val())
}

func sessionFrom(id string, h map[string]string, ttl time.Duration) (Session, error) {
	if len(h) == 0 {
		return Session{}, fmt.Errorf("%w: session %q", cache.ErrNotFound, id)
	}
	ms, err := strconv.ParseInt(h["created"], 10, 64)
	if err != nil {
		return Session{}, fmt.Errorf("cache: session %q: corrupt created %q", id, h["created"])
	}
	return Session{ID: id, User: h["user"], Data: json.RawMessage(h["data"]), Created: time.UnixMilli(ms), TTL: ttl}, nil
}

// Touch extends the session's life to TTL from now. It returns an error wrapping
// ErrNotFound when the session is gone.
func (s *SessionStore) Touch(ctx context.Context, id string) error {
	user, random, err := parseID(id)
	if err != nil {
		return err
	}
	var ok *redis.BoolCmd
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		ok = p.PExpire(ctx, s.keys.Session(user, random), s.cfg.TTL)
		p.PExpire(ctx, s.keys.UserSessions(user), s.cfg.TTL) // the index outlives its sessions
		return nil
	})
	if err != nil {
		return fmt.Errorf("cache: touch session: %w", err)
	}
	if !ok.Val() {
		return fmt.Errorf("%w: session %q", cache.ErrNotFound, id)
	}
	return nil
}

// Destroy ends the session. Destroying a session that is gone is not an error.
func (s *SessionStore) Destroy(ctx context.Context, id string) error {
	user, random, err := parseID(id)
	if err != nil {
		return nil
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.keys.Session(user, random))
		p.ZRem(ctx, s.keys.UserSessions(user), id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("cache: destroy session: %w", err)
	}
	return nil
}

// List returns the user's live sessions, oldest first (at most MaxPerUser).
func (s *SessionStore) List(ctx context.Context, user string) ([]Session, error) {
	if err := userkey.ValidUser(user); err != nil {
		return nil, err
	}
	ids, err := s.rdb.ZRange(ctx, s.keys.UserSessions(user), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("cache: list sessions of %s: %w", user, err)
	}
	hs := make([]*redis.MapStringStringCmd, len(ids))
	ttls := make([]*redis.DurationCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			_, random, _ := parseID(id)
			key := s.keys.Session(user, random)
			hs[i], ttls[i] = p.HGetAll(ctx, key), p.PTTL(ctx, key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cache: list sessions of %s: %w", user, err)
	}
	out := make([]Session, 0, len(ids))
	for i, id := range ids {
		if sess, err := sessionFrom(id, hs[i].Val(), ttls[i].Val()); err == nil {
			out = append(out, sess) // expired ones are dropped from the index by the next Create
		}
	}
	return out, nil
}
