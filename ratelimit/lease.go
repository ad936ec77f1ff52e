package ratelimit

import (
	"sync"
	"time"
)

// leases holds the units that busy identifiers took from Redis ahead of their requests
// (Config.Lease), so that most of their checks are decided in process.
//
// Invariants, per identifier: at most one lease take is at Redis at a time, and the
// units held never exceed the last take's extra units. Every unit spent here was charged
// in Redis before it was spent, so a process never passes more than Redis granted; it
// may spend units up to Config.LeaseTTL after they were charged, which is how a window
// can see up to one lease more than its limit from each process.
//
// Lease sizes adapt to the identifier's pace: a lease used up before its TTL doubles the
// next one (up to the configured maximum), one that expires with units left halves it,
// and one Redis refuses (the quota is nearly used) stops leasing for a TTL, so checks
// near the limit are exact. An identifier seen once in a TTL never leases: an idle
// token wastes nothing.
//
// The map is bounded like the block cache: when full, stale entries are swept (at most
// once a second) and an identifier that still finds no room is checked exactly.
type leases struct {
	max      int64         // the largest lease, in units beyond a check's cost
	capacity int64         // the smallest capacity of the policies: a take's cost+extra stays within it
	ttl      time.Duration // how long leased units may be spent
	limit    int           // entries

	mu        sync.Mutex
	entries   map[string]*leaseEntry
	nextSweep time.Time
}

type leaseEntry struct {
	units   int64     // leased units left
	expires time.Time // when the units left are dropped
	next    int64     // extra units the next take asks for
	taking  bool      // a take is at Redis
	last    time.Time // the last check of this identifier
	pause   time.Time // no take before this: Redis refused the last one

	// base is the take's per-policy decision, the units it leased already deducted
	// from Remaining; at is when it was made (local clock).
	base []PolicyResult
	at   time.Time
}

func newLeases(max, capacity int64, ttl time.Duration, limit int) *leases {
	// No lease can exceed the capacity, and doubling next cannot overflow below it.
	max = min(max, capacity)
	return &leases{max: max, capacity: capacity, ttl: ttl, limit: limit, entries: make(map[string]*leaseEntry)}
}

// spend takes cost units of identifier's lease at now. If the lease holds them, it
// returns the policies' state after the spend and ok. Otherwise the check must go to
// Redis, asking for extra units beyond its cost (0: an exact check); a caller given
// extra > 0 must report the outcome with settle or refused, passing the ticket.
func (ls *leases) spend(identifier string, cost int64, now time.Time) (pol []PolicyResult, ok bool, extra int64, ticket *leaseEntry) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	e := ls.entries[identifier]
	if e == nil {
		if ls.room(now) {
			ls.entries[identifier] = &leaseEntry{next: 1, last: now}
		}
		return nil, false, 0, nil
	}
	if e.units > 0 && !now.Before(e.expires) {
		// Units left at expiry were charged and are lost: ask for less next time.
		e.units, e.base = 0, nil
		e.next = max(e.next/2, 1)
	}
	if e.units >= cost {
		e.units -= cost
		if e.units == 0 {
			e.next = min(2*e.next, ls.max) // used up within its TTL: the pace is higher
		}
		e.last = now
		return ls.view(e, now), true, 0, nil
	}
	recent := now.Sub(e.last) < ls.ttl
	e.last = now
	extra = min(e.next, ls.capacity-cost)
	if e.taking || !recent || now.Before(e.pause) || extra < 1 {
		return nil, false, 0, nil
	}
	e.taking = true
	return nil, false, extra, e
}

// view is the policies' state as a leased spend reports it: Remaining counts the units
// still leased, and the reset times have aged since the take.
func (ls *leases) view(e *leaseEntry, now time.Time) []PolicyResult {
	elapsed := now.Sub(e.at)
	out := make([]PolicyResult, len(e.base))
	for i, p := range e.base {
		p.Remaining += e.units
		p.ResetAfter = max(p.ResetAfter-elapsed, 0)
		out[i] = p
	}
	return out
}

// settle records the outcome of a take of extra units that Redis allowed: the units
// become spendable until the TTL. pol are the policies' decisions of the take, whose
// Remaining already excludes the extra units.
func (ls *leases) settle(identifier string, ticket *leaseEntry, extra int64, pol []PolicyResult, now time.Time) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	e := ls.entries[identifier]
	if e != ticket {
		// Reset meanwhile: the units may predate the reset, so they are dropped.
		return
	}
	e.taking = false
	e.units, e.expires = extra, now.Add(ls.ttl)
	e.base, e.at = pol, now
}

// refused records that Redis refused a take (or it failed): no take for a TTL, so the
// identifier's checks near its limit are exact.
func (ls *leases) refused(identifier string, ticket *leaseEntry, now time.Time) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if e := ls.entries[identifier]; e == ticket {
		e.taking = false
		e.next = 1
		e.pause = now.Add(ls.ttl)
	}
}

// drop forgets identifier's lease (Limiter.Reset).
func (ls *leases) drop(identifier string) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	delete(ls.entries, identifier)
}

// room reports whether a new entry fits, sweeping stale ones when the map is full.
// The caller holds ls.mu.
func (ls *leases) room(now time.Time) bool {
	if len(ls.entries) < ls.limit {
		return true
	}
	if now.Before(ls.nextSweep) {
		return false
	}
	ls.nextSweep = now.Add(time.Second)
	for id, e := range ls.entries {
		if !e.taking && now.Sub(e.last) >= ls.ttl && (e.units == 0 || !now.Before(e.expires)) {
			delete(ls.entries, id)
		}
	}
	return len(ls.entries) < ls.limit
}
