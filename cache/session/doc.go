// Package session keeps users' sessions in Redis: each has a sliding TTL, a user holds
// at most a configured number (creating one more evicts the oldest), and its JSON data is
// bounded.
//
//	store := session.NewSessionStore(rdb, session.SessionConfig{}, reg)
//	s, err := store.Create(ctx, "alice", json.RawMessage(`{"theme":"dark"}`))
//	s, err = store.Get(ctx, s.ID)     // an error wrapping cache.ErrNotFound once it expired
//	err = store.Touch(ctx, s.ID)      // restarts its TTL
//
// Errors wrap the sentinels of package cache: ErrInvalid, ErrTooLarge, ErrNotFound.
package session
