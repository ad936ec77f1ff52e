package ratelimit

import (
	"sync"
	"time"
)

// leases holds the units that busy identifiers took from Redis ahead of their requests
// (Config.Lease), so that most of their checks are decided in process.
//
// Invariants, per identifier: at most one take is at Redis at a time, and the units
// held never exceed the last take's extra units (units held when a take starts go
// towards its request, or back to the lease if it fails). Every unit spent here was
// charged in Redis before it was spent, so a process never passes more than Redis
// granted; but it may spend units in a later window than the one they were charged to,
// so a window can see up to one lease more than its limit from each process. Units
// held are not lost with time, so a process that is alone on an identifier gets its
// whole limit; an identifier whose entry is dropped (Reset, or the map full of idle
// entries) loses what it held.
//
// Lease sizes follow the identifier's pace: a lease used up within the TTL of its take
// doubles the next one (up to max), one that lasted longer halves it, and a take Redis
// refused or failed stops leasing for a TTL, so checks near the limit are exact. An
// identifier seen once in a TTL never leases: an idle token holds nothing.
//
// The map is bounded like the block cache: when full, idle entries are swept (at most
// once a second) and an identifier that still finds no room is checked exactly.
type leases struct {
	max      int64         // the largest lease, in units beyond a check's cost
	capacity int64         // the smallest capacity of the policies: a take stays within it
	policies []Policy      // to credit leased units back in reset times
	ttl      time.Duration // how long a lease is sized to last
	limit    int           // entries

	mu        sync.Mutex
	entries   map[string]*leaseEntry
	nextSweep time.Time
}

type leaseEntry struct {
	units  int64     // leased units left
	taken  time.Time // when the units' take was sent
	next   int64     // extra units the next take asks for
	taking bool      // a take is at Redis
	held   int64     // units set aside for the take in flight, restored if it fails
	last   time.Time // the last check of this identifier
	pause  time.Time // no take before this: the last one was refused or failed

	// base is the take's per-policy decision, the units it leased already deducted
	// from Remaining; at is when its reply came (local clock).
	base []PolicyResult
	at   time.Time
}

func newLeases(max int64, policies []Policy, ttl time.Duration, limit int) *leases {
	capacity := SmallestCapacity(policies)
	// No lease can exceed the capacity, and doubling next cannot overflow below it.
	return &leases{max: min(max, capacity), capacity: capacity, policies: policies, ttl: ttl, limit: limit,
		entries: make(map[string]*leaseEntry)}
}

// spend takes cost units of identifier's lease at now, if it holds them, and returns
// the policies' state after the spend.
func (ls *leases) spend(identifier string, cost int64, now time.Time) ([]PolicyResult, bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	e := ls.entries[identifier]
	if e == nil || e.units < cost {
		return nil, false
	}
	e.units -= cost
	e.last = now
	if e.units == 0 {
		// Used up: sized for the pace if that took about a TTL.
		if now.Sub(e.taken) < ls.ttl {
			e.next = min(2*e.next, ls.max)
		} else {
			e.next = max(e.next/2, 1)
		}
	}
	return ls.view(e, now), true
}

// begin decides whether a check of cost that the lease could not answer takes a lease:
// if so, it returns the extra units to ask for and the units held that go towards the
// check (ask Redis for cost-held+extra), and the caller must report the outcome with
// settle or refused, passing the ticket. extra 0 means an exact check.
func (ls *leases) begin(identifier string, cost int64, now time.Time) (extra, held int64, ticket *leaseEntry) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	e := ls.entries[identifier]
	if e == nil {
		if ls.room(now) {
			ls.entries[identifier] = &leaseEntry{next: 1, last: now}
		}
		return 0, 0, nil
	}
	recent := now.Sub(e.last) < ls.ttl
	e.last = now
	extra = min(e.next, ls.capacity-cost)
	if e.taking || !recent || now.Before(e.pause) || extra < 1 || e.units >= cost {
		return 0, 0, nil
	}
	e.taking = true
	e.held, e.units = e.units, 0
	e.taken = now
	return extra, e.held, e
}

// settle records a take that Redis allowed: its extra units are now held. pol are the
// policies' decisions of the take, whose Remaining already excludes them; at is now.
func (ls *leases) settle(identifier string, ticket *leaseEntry, extra int64, pol []PolicyResult, at time.Time) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.entries[identifier] != ticket {
		return // Reset meanwhile: the units may predate the reset, so they are dropped
	}
	ticket.taking, ticket.held = false, 0
	ticket.units = extra
	ticket.base, ticket.at = pol, at
}

// refused records a take that Redis refused, or that failed: the units set aside go
// back, and no take is tried for a TTL, so the identifier's checks near its limit are
// exact.
func (ls *leases) refused(identifier string, ticket *leaseEntry, now time.Time) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.entries[identifier] != ticket {
		return
	}
	ticket.taking = false
	ticket.units += ticket.held
	ticket.held = 0
	ticket.next = 1
	ticket.pause = now.Add(ls.ttl)
}

// drop forgets identifier's lease (Limiter.Reset).
func (ls *leases) drop(identifier string) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	delete(ls.entries, identifier)
}

// view is the policies' state as a leased spend reports it: the units still held
// counted as remaining, and the reset times aged since the take.
func (ls *leases) view(e *leaseEntry, now time.Time) []PolicyResult {
	elapsed := now.Sub(e.at)
	out := make([]PolicyResult, len(e.base))
	for i, p := range e.base {
		p = ls.credit(i, p, e.units)
		p.ResetAfter = max(p.ResetAfter-elapsed, 0)
		out[i] = p
	}
	return out
}

// credit is policy i's decision with units leased but not spent counted as remaining:
// for GCRA and TokenBucket the quota is also whole again sooner by what they refill.
func (ls *leases) credit(i int, pr PolicyResult, units int64) PolicyResult {
	if units <= 0 {
		return pr
	}
	p := ls.policies[i]
	var sooner time.Duration
	switch p.Algorithm {
	case GCRA:
		sooner = time.Duration(units) * p.Window / time.Duration(p.Limit)
	case TokenBucket:
		// Refills come a whole Limit at a time, each Window: the full state is reached
		// ceil(missing/Limit) windows after the last refill.
		missing := p.Capacity() - pr.Remaining
		steps := ceilDiv(missing, p.Limit) - ceilDiv(max(missing-units, 0), p.Limit)
		sooner = time.Duration(steps) * p.Window
	}
	sooner = min(sooner, pr.ResetAfter)
	pr.Remaining += units
	pr.ResetAfter -= sooner
	pr.ResetAt = pr.ResetAt.Add(-sooner)
	return pr
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// room reports whether a new entry fits, sweeping idle ones when the map is full (their
// units are lost). The caller holds ls.mu.
func (ls *leases) room(now time.Time) bool {
	if len(ls.entries) < ls.limit {
		return true
	}
	if now.Before(ls.nextSweep) {
		return false
	}
	ls.nextSweep = now.Add(time.Second)
	for id, e := range ls.entries {
		if !e.taking && now.Sub(e.last) >= ls.ttl && !now.Before(e.pause) {
			delete(ls.entries, id)
		}
	}
	return len(ls.entries) < ls.limit
}
