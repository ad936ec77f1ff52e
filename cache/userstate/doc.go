// Package userstate keeps one versioned JSON document per user in Redis. Every update is
// a compare-and-set on the version (one Lua script), so a stale writer fails with an
// error wrapping cache.ErrConflict instead of overwriting; Modify reads, applies and
// retries.
//
//	store := userstate.NewUserStateStore(rdb, userstate.UserStateConfig{}, reg)
//	st, err := store.Modify(ctx, "alice", func(doc json.RawMessage) (json.RawMessage, error) {
//		return json.RawMessage(`{"watchlist":["BTC-USD"]}`), nil
//	})
//
// Errors wrap the sentinels of package cache: ErrInvalid, ErrTooLarge, ErrConflict.
package userstate
