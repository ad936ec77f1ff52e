package ratelimit

import (
	"sync"
	"time"
)

// blockCache remembers identifiers that were denied, until the time their denial
// could lift, so that a caller hammering a closed limit costs no Redis round trip.
// It is bounded: when full, expired entries are swept, and if none expired the new
// entry is not cached (the caller then just goes to Redis).
type blockCache struct {
	mu        sync.RWMutex
	max       int
	entries   map[string]blockEntry
	nextSweep time.Time // sweeps are O(n): at most one a second
}

type blockEntry struct {
	at     time.Time // local clock when Redis denied
	until  time.Time // local clock when the denial may lift
	cost   int64     // the denied cost; a cheaper request may still pass, so it skips the cache
	result Result
}

func newBlockCache(max int) *blockCache {
	return &blockCache{max: max, entries: make(map[string]blockEntry)}
}

// get returns the cached denial of identifier for a request of cost, if one holds at now.
func (c *blockCache) get(identifier string, cost int64, now time.Time) (blockEntry, bool) {
	c.mu.RLock()
	e, ok := c.entries[identifier]
	c.mu.RUnlock()
	if !ok || cost < e.cost || !now.Before(e.until) {
		return blockEntry{}, false
	}
	return e, true
}

func (c *blockCache) put(identifier string, e blockEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[identifier]; !ok && len(c.entries) >= c.max {
		if now.Before(c.nextSweep) {
			return
		}
		c.nextSweep = now.Add(time.Second)
		for k, old := range c.entries {
			if !now.Before(old.until) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			return
		}
	}
	c.entries[identifier] = e
}

func (c *blockCache) delete(identifier string) {
	c.mu.Lock()
	delete(c.entries, identifier)
	c.mu.Unlock()
}
