package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// AuditEntry is one entry of the audit stream: a mutating request, or a refused one.
type AuditEntry struct {
	// ID is the stream entry id.
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id"`
	TokenID   string    `json:"token_id,omitempty"`
	Method    string    `json:"method"`
	Route     string    `json:"route"`
	Target    string    `json:"target,omitempty"`
	Status    int       `json:"status"`
	Client    string    `json:"client"`
	// Denial says why a request was refused ("token expired", "scope jobs:write",
	// "redis key", ...); empty for requests that were carried out.
	Denial string `json:"denial,omitempty"`
}

func (s *Server) appendAudit(r *http.Request, st *reqState, route string, status int) {
	target := st.target
	if target == "" {
		target = r.URL.Path
	}
	e := map[string]any{
		"t": s.cfg.Now().UnixMilli(), "rid": st.id, "method": r.Method, "route": route,
		"target": target, "status": status, "client": clientAddr(r),
	}
	if st.token != nil {
		e["token"] = st.token.ID
	}
	if st.denial != "" {
		e["denial"] = st.denial
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), time.Second)
	defer cancel()
	key := s.keys.audit()
	_, err := s.deps.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.XAdd(ctx, &redis.XAddArgs{Stream: key, MaxLen: s.cfg.AuditMaxLen, Approx: true, Values: e})
		p.PExpire(ctx, key, s.cfg.AuditTTL)
		return nil
	})
	if err != nil {
		s.m.auditErrors.Inc()
		s.log.Warn("audit write failed", "err", err, "request_id", st.id)
	}
}

// AuditLog reads the audit stream that servers with the same prefix write.
type AuditLog struct {
	rdb redis.UniversalClient
	key string
}

// NewAuditLog returns the audit log under prefix ("" means "ts").
func NewAuditLog(rdb redis.UniversalClient, prefix string) *AuditLog {
	return &AuditLog{rdb: rdb, key: newKeyspace(prefix).audit()}
}

// Last returns the newest n entries, oldest first.
func (a *AuditLog) Last(ctx context.Context, n int64) ([]AuditEntry, error) {
	msgs, err := a.rdb.XRevRangeN(ctx, a.key, "+", "-", n).Result()
	if err != nil {
		return nil, fmt.Errorf("gateway: audit: %w", err)
	}
	out := make([]AuditEntry, len(msgs))
	for i, m := range msgs {
		out[len(msgs)-1-i] = auditEntry(m)
	}
	return out, nil
}

// Follow calls fn for every entry after the one with id after ("$" for only new ones),
// blocking for new entries, until ctx ends (then it returns nil) or fn or Redis fails.
func (a *AuditLog) Follow(ctx context.Context, after string, fn func(AuditEntry) error) error {
	for {
		res, err := a.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{a.key, after}, Block: 2 * time.Second, Count: 100}).Result()
		if ctx.Err() != nil {
			return nil
		}
		if err == redis.Nil {
			continue
		}
		if err != nil {
			return fmt.Errorf("gateway: audit follow: %w", err)
		}
		for _, st := range res {
			for _, m := range st.Messages {
				after = m.ID
				if err := fn(auditEntry(m)); err != nil {
					return err
				}
			}
		}
	}
}

func auditEntry(m redis.XMessage) AuditEntry {
	str := func(k string) string { v, _ := m.Values[k].(string); return v }
	ms, _ := strconv.ParseInt(str("t"), 10, 64)
	status, _ := strconv.Atoi(str("status"))
	return AuditEntry{ID: m.ID, Time: time.UnixMilli(ms).UTC(), RequestID: str("rid"), TokenID: str("token"),
		Method: str("method"), Route: str("route"), Target: str("target"), Status: status,
		Client: str("client"), Denial: str("denial")}
}
