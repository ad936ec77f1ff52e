package ratelimit

import (
	"fmt"
	"regexp"
	"time"
)

// Algorithm selects how a Policy counts.
type Algorithm int

const (
	// FixedWindow counts units in windows aligned to the Unix epoch (a 1-minute window
	// runs from :00 to :00) and forgets them when the window ends. Up to 2·Limit units can
	// pass around a window boundary.
	FixedWindow Algorithm = iota + 1
	// SlidingWindow estimates the units of the last Window as the current fixed window's
	// count plus the previous window's count weighted by the part of it still inside the
	// sliding window, rounded down. It smooths the boundary burst of FixedWindow.
	SlidingWindow
	// TokenBucket holds up to Burst tokens and adds Limit tokens at the end of every
	// Window since the bucket's first use (discrete refills); a request takes cost tokens.
	TokenBucket
	// GCRA (generic cell rate algorithm) lets one unit through every Window/Limit, with
	// bursts of up to Burst units; it is a token bucket refilled continuously.
	GCRA
)

// String returns the algorithm's name, such as "sliding_window".
func (a Algorithm) String() string {
	switch a {
	case FixedWindow:
		return "fixed_window"
	case SlidingWindow:
		return "sliding_window"
	case TokenBucket:
		return "token_bucket"
	case GCRA:
		return "gcra"
	}
	return fmt.Sprintf("Algorithm(%d)", int(a))
}

// code is the algorithm's tag in check.lua.
func (a Algorithm) code() string {
	switch a {
	case FixedWindow:
		return "F"
	case SlidingWindow:
		return "S"
	case TokenBucket:
		return "T"
	case GCRA:
		return "G"
	}
	return ""
}

// Policy is one limit applied to every identifier, such as 10 requests per second.
type Policy struct {
	// Name identifies the policy in Redis keys, in the RateLimit and RateLimit-Policy
	// headers and in the metrics' policy label. It must match [A-Za-z0-9_.-]{1,64} and
	// be unique within a Limiter. Renaming a policy starts its counts afresh.
	Name string
	// Algorithm is how the policy counts. The zero value is invalid.
	Algorithm Algorithm
	// Limit is the number of units allowed per Window (token bucket: refilled per
	// Window). It must be at least 1.
	Limit int64
	// Window is the period Limit applies to. It must be at least 1ms and a whole number
	// of microseconds.
	Window time.Duration
	// Burst is the capacity of TokenBucket and GCRA: how many units can pass at once
	// after a quiet spell. Zero means Limit. The window algorithms ignore it.
	Burst int64
}

var policyName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// Capacity is the most units the policy can ever grant at once: Burst for TokenBucket
// and GCRA when set, else Limit. A check of a greater cost is ErrInvalidCost.
func (p Policy) Capacity() int64 {
	switch p.Algorithm {
	case TokenBucket, GCRA:
		if p.Burst > 0 {
			return p.Burst
		}
	}
	return p.Limit
}

// SmallestCapacity is the least Capacity of ps, which bounds what a check of all of them
// can cost; 0 for no policies.
func SmallestCapacity(ps []Policy) int64 {
	if len(ps) == 0 {
		return 0
	}
	c := ps[0].Capacity()
	for _, p := range ps[1:] {
		c = min(c, p.Capacity())
	}
	return c
}

func (p Policy) validate() error {
	if !policyName.MatchString(p.Name) {
		return fmt.Errorf("ratelimit: policy name %q: must match %s", p.Name, policyName)
	}
	if p.Algorithm.code() == "" {
		return fmt.Errorf("ratelimit: policy %q: unknown algorithm %d", p.Name, int(p.Algorithm))
	}
	if p.Limit < 1 {
		return fmt.Errorf("ratelimit: policy %q: limit %d: must be at least 1", p.Name, p.Limit)
	}
	if p.Window < time.Millisecond || p.Window%time.Microsecond != 0 {
		return fmt.Errorf("ratelimit: policy %q: window %v: must be at least 1ms in whole microseconds", p.Name, p.Window)
	}
	if p.Burst < 0 {
		return fmt.Errorf("ratelimit: policy %q: burst %d: must not be negative", p.Name, p.Burst)
	}
	return nil
}
