package gateway

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tickstash/tickstash/ratelimit"
)

// ParseRate parses a token's rate policy: one or more limits separated by commas, each
// [ALGORITHM:]LIMIT/WINDOW[+BURST], where ALGORITHM is gcra (the default), bucket,
// sliding or fixed, WINDOW a Go duration ("1s", "24h") or s, m, h, d for one of them,
// and BURST the capacity of gcra and bucket. Examples: "10/s", "gcra:10/s+20,sliding:10000/d".
// All limits apply together: a request passes only if every one allows it.
func ParseRate(s string) ([]ratelimit.Policy, error) {
	var out []ratelimit.Policy
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		alg, rest, ok := strings.Cut(part, ":")
		if !ok {
			alg, rest = "gcra", part
		}
		p := ratelimit.Policy{}
		switch alg {
		case "gcra":
			p.Algorithm = ratelimit.GCRA
		case "bucket":
			p.Algorithm = ratelimit.TokenBucket
		case "sliding":
			p.Algorithm = ratelimit.SlidingWindow
		case "fixed":
			p.Algorithm = ratelimit.FixedWindow
		default:
			return nil, fmt.Errorf("rate %q: algorithm %q: want gcra, bucket, sliding or fixed", part, alg)
		}
		rest, burst, hasBurst := strings.Cut(rest, "+")
		lim, win, ok := strings.Cut(rest, "/")
		if !ok {
			return nil, fmt.Errorf("rate %q: want LIMIT/WINDOW such as 10/s", part)
		}
		n, err := strconv.ParseInt(lim, 10, 64)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("rate %q: limit %q: want a positive integer", part, lim)
		}
		p.Limit = n
		switch win {
		case "s":
			p.Window = time.Second
		case "m":
			p.Window = time.Minute
		case "h":
			p.Window = time.Hour
		case "d":
			p.Window = 24 * time.Hour
		default:
			if p.Window, err = time.ParseDuration(win); err != nil {
				return nil, fmt.Errorf("rate %q: window %q: want a duration such as 1s or 24h", part, win)
			}
		}
		if p.Window < time.Millisecond || p.Window%time.Microsecond != 0 {
			return nil, fmt.Errorf("rate %q: window %v: want at least 1ms in whole microseconds", part, p.Window)
		}
		if hasBurst {
			b, err := strconv.ParseInt(burst, 10, 64)
			if err != nil || b < 1 {
				return nil, fmt.Errorf("rate %q: burst %q: want a positive integer", part, burst)
			}
			p.Burst = b
		}
		p.Name = fmt.Sprintf("%s-%d", alg, i+1)
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("rate %q: empty", s)
	}
	return out, nil
}
