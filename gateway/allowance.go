package gateway

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// allowances are in-process token buckets by key (a client address, a token id): each
// key may spend burst at once and regains perMinute a minute. They bound what refused
// requests may cost before they cost a Redis write, so they live in the process, not in
// Redis; every gateway instance keeps its own. The map is bounded: when it holds max
// keys, the full (idle) buckets are dropped, and if that frees too little, all of them.
type allowances struct {
	mu        sync.Mutex
	m         map[string]*allowance
	burst     float64
	perSecond float64
	max       int
}

type allowance struct {
	tokens float64
	at     time.Time
}

func newAllowances(burst, perMinute, max int) *allowances {
	return &allowances{m: map[string]*allowance{}, burst: float64(burst), perSecond: float64(perMinute) / 60, max: max}
}

// take spends one unit of key's allowance at now; false means it is exhausted, and
// retry is when the next unit comes.
func (a *allowances) take(key string, now time.Time) (ok bool, retry time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.m[key]
	if b == nil {
		if len(a.m) >= a.max {
			a.sweep(now)
		}
		b = &allowance{tokens: a.burst, at: now}
		a.m[key] = b
	}
	if el := now.Sub(b.at); el > 0 {
		b.tokens = min(a.burst, b.tokens+el.Seconds()*a.perSecond)
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	if a.perSecond <= 0 {
		return false, time.Minute
	}
	return false, time.Duration((1 - b.tokens) / a.perSecond * float64(time.Second))
}

// sweep drops the buckets that have refilled; if fewer than a tenth go, it drops all,
// so that a map kept full by many busy keys costs one sweep per max/10 new keys at most.
func (a *allowances) sweep(now time.Time) {
	for k, b := range a.m {
		if b.tokens+now.Sub(b.at).Seconds()*a.perSecond >= a.burst {
			delete(a.m, k)
		}
	}
	if len(a.m) > a.max-a.max/10 {
		a.m = make(map[string]*allowance, a.max)
	}
}

// clientKey is the unit a client address is limited by: the IPv4 address, or the /64
// an IPv6 address belongs to (one host usually holds a whole /64, so limiting single
// IPv6 addresses would limit nothing).
func clientKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			ip, err = netip.ParseAddr(host)
			if err != nil {
				return addr
			}
		} else {
			return addr
		}
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, err := ip.WithZone("").Prefix(64)
	if err != nil {
		return ip.String()
	}
	return p.String()
}
