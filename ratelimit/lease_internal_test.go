package ratelimit

import (
	"strconv"
	"testing"
	"time"
)

// TestLeaseMapBounded: a flood of identifiers never grows the lease map past its bound;
// idle entries are swept for new ones, an entry with a take in flight never is.
func TestLeaseMapBounded(t *testing.T) {
	ls := newLeases(8, []Policy{{Name: "p", Algorithm: GCRA, Limit: 100, Window: time.Hour}}, time.Second, 4)
	now := time.Unix(1_700_000_000, 0)
	ls.begin("busy", 1, now)
	if extra, _, ticket := ls.begin("busy", 1, now); extra != 1 || ticket == nil {
		t.Fatalf("second check of busy: extra %d, want a take of 1", extra)
	}
	for i := range 1000 {
		ls.begin(strconv.Itoa(i), 1, now)
	}
	if n := len(ls.entries); n != 4 {
		t.Fatalf("%d entries after 1001 identifiers, want the bound 4", n)
	}
	now = now.Add(2 * time.Second) // everything idle for more than the TTL
	ls.begin("new", 1, now)
	if ls.entries["new"] == nil || ls.entries["busy"] == nil {
		t.Fatalf("after the sweep: new=%v busy=%v, want both (busy has a take in flight)", ls.entries["new"] != nil, ls.entries["busy"] != nil)
	}
	if n := len(ls.entries); n != 2 {
		t.Fatalf("%d entries after the sweep, want 2", n)
	}
}
