package gateway

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Usage is one token's metered use on one UTC day.
type Usage struct {
	Day      string `json:"day"`      // YYYY-MM-DD
	Requests int64  `json:"requests"` // requests; a /redis pipeline or transaction counts its commands
	BytesIn  int64  `json:"bytes_in"`
	BytesOut int64  `json:"bytes_out"`
}

type usageKey struct{ token, day string }

// usageMeter counts requests and bytes in process and adds them to Redis on flush, so
// that metering costs no round trip per request. Counts of a failed flush are kept for
// the next one.
type usageMeter struct {
	s       *Server
	mu      sync.Mutex
	pending map[usageKey]*Usage
	// dayNum and day cache the last UTC day formatted (days since the epoch).
	dayNum int64
	day    string
}

func newUsageMeter(s *Server) *usageMeter {
	return &usageMeter{s: s, pending: map[usageKey]*Usage{}}
}

func (u *usageMeter) add(token string, now time.Time, requests, in, out int64) {
	u.mu.Lock()
	n := now.Unix() / 86400
	if now.Unix() < 0 || n != u.dayNum || u.day == "" {
		u.dayNum, u.day = n, now.UTC().Format(time.DateOnly)
	}
	day := u.day
	p := u.pending[usageKey{token, day}]
	if p == nil {
		p = &Usage{Day: day}
		u.pending[usageKey{token, day}] = p
	}
	p.Requests += requests
	p.BytesIn += in
	p.BytesOut += out
	u.mu.Unlock()
}

func (u *usageMeter) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := u.flush(ctx); err != nil && ctx.Err() == nil {
				u.s.log.Warn("usage flush", "err", err)
			}
		}
	}
}

func (u *usageMeter) flush(ctx context.Context) error {
	u.mu.Lock()
	batch := u.pending
	u.pending = map[usageKey]*Usage{}
	u.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	_, err := u.s.deps.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for k, v := range batch {
			key := u.s.keys.usage(k.token, k.day)
			p.HIncrBy(ctx, key, "requests", v.Requests)
			p.HIncrBy(ctx, key, "bytes_in", v.BytesIn)
			p.HIncrBy(ctx, key, "bytes_out", v.BytesOut)
			p.Expire(ctx, key, u.s.cfg.UsageRetention)
		}
		return nil
	})
	if err != nil {
		u.s.m.usageErrors.Inc()
		u.mu.Lock() // put the counts back; HINCRBY may have partly applied, so this can overcount
		for k, v := range batch {
			if p := u.pending[k]; p != nil {
				v.Requests += p.Requests
				v.BytesIn += p.BytesIn
				v.BytesOut += p.BytesOut
			}
			u.pending[k] = v
		}
		u.mu.Unlock()
		return fmt.Errorf("gateway: usage flush: %w", err)
	}
	return nil
}

// UsageOf returns a token's usage of the last days UTC days (today included), oldest
// first, after flushing this server's pending counts. Days without use are reported
// with zeros.
func (s *Server) UsageOf(ctx context.Context, tokenID string, days int) ([]Usage, error) {
	if err := s.usage.flush(ctx); err != nil {
		return nil, err
	}
	now := s.cfg.Now().UTC()
	cmds := make([]*redis.MapStringStringCmd, days)
	_, err := s.deps.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range days {
			day := now.AddDate(0, 0, i-days+1).Format(time.DateOnly)
			cmds[i] = p.HGetAll(ctx, s.keys.usage(tokenID, day))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: usage of %s: %w", tokenID, err)
	}
	out := make([]Usage, days)
	for i, c := range cmds {
		h := c.Val()
		n := func(f string) int64 { v, _ := strconv.ParseInt(h[f], 10, 64); return v }
		out[i] = Usage{Day: now.AddDate(0, 0, i-days+1).Format(time.DateOnly), Requests: n("requests"),
			BytesIn: n("bytes_in"), BytesOut: n("bytes_out")}
	}
	return out, nil
}
