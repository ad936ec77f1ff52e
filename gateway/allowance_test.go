package gateway

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/internal/redistest"
)

func TestAllowances(t *testing.T) {
	a := newAllowances(3, 60, 100) // 3 at once, one a second
	t0 := time.Unix(1_700_000_000, 0)
	for i := range 3 {
		if ok, _ := a.take("k", t0); !ok {
			t.Fatalf("take %d refused within the burst", i)
		}
	}
	ok, retry := a.take("k", t0)
	if ok || retry != time.Second {
		t.Fatalf("past the burst: %v, retry %v", ok, retry)
	}
	if ok, _ := a.take("other", t0); !ok {
		t.Fatal("another key shares the allowance")
	}
	if ok, _ := a.take("k", t0.Add(999*time.Millisecond)); ok {
		t.Fatal("refilled early")
	}
	for i := range 2 {
		if ok, _ := a.take("k", t0.Add(2*time.Second)); !ok {
			t.Fatalf("take %d: not refilled", i)
		}
	}
	if ok, _ := a.take("k", t0.Add(-time.Hour)); ok { // a clock going back refills nothing
		t.Fatal("refilled by a clock going back")
	}
	// Bounded: a flood of distinct keys never holds more than max.
	for i := range 10_000 {
		a.take(fmt.Sprint("flood-", i), t0)
		if len(a.m) > 100 {
			t.Fatalf("%d keys held, bound 100", len(a.m))
		}
	}
}

func TestClientKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":             "192.0.2.7",
		"::ffff:192.0.2.7":      "192.0.2.7",
		"192.0.2.7:5555":        "192.0.2.7",
		"2001:db8:1:2:3:4:5:6":  "2001:db8:1:2::/64",
		"2001:db8:1:2::9":       "2001:db8:1:2::/64",
		"[2001:db8:1:3::9]:443": "2001:db8:1:3::/64",
		"fe80::1%eth0":          "fe80::/64",
		"@":                     "@",
	} {
		if got := clientKey(in); got != want {
			t.Errorf("clientKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCountsBounded: refusals from more distinct clients than maxCountKeys in a minute
// keep their total, the extra ones under client "*", and are written in one flush.
func TestCountsBounded(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	now := time.Now()
	s, err := New(Deps{Redis: rdb}, Config{Prefix: prefix, Now: func() time.Time { return now }}, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	const n = maxCountKeys + 500
	for i := range n {
		s.audit.count(now, fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255), "", "token missing", "anonymous")
	}
	if len(s.audit.counts) != maxCountKeys+1 {
		t.Fatalf("%d counts held, want the bound and one for \"*\"", len(s.audit.counts))
	}
	if err := s.audit.flush(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if l := rdb.XLen(context.Background(), s.keys.auditCounts()).Val(); l != 0 {
		t.Fatalf("the running minute was written: %d entries", l)
	}
	now = now.Add(time.Minute)
	if err := s.audit.flush(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	cs, err := NewAuditLog(rdb, prefix).Counts(context.Background(), 2*n)
	if err != nil {
		t.Fatal(err)
	}
	var sum, other int64
	for _, c := range cs {
		sum += c.Count
		if c.Client == clientsOther {
			other = c.Count
		}
	}
	if sum != n || other != 500 || len(cs) != maxCountKeys+1 {
		t.Fatalf("%d entries, total %d, under * %d", len(cs), sum, other)
	}
	if ttl := rdb.PTTL(context.Background(), s.keys.auditCounts()).Val(); ttl <= 0 {
		t.Fatal("counts stream without TTL")
	}
}
