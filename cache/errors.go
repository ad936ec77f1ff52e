package cache

import "errors"

// ErrTooLarge is wrapped when a session's data or a user's state document is larger than
// the configured limit; nothing is written.
var ErrTooLarge = errors.New("cache: too large")

// ErrConflict is wrapped by userstate's Update when the document's version is not the
// one the caller read: another writer got there first. Nothing was written; read again,
// re-apply the change and retry (Modify does this).
var ErrConflict = errors.New("cache: version conflict")
