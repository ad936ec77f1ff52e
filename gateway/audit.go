package gateway

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The audit record is three streams, under one hash tag so that one XREAD follows them:
//
//   - <p>:gw:{audit}: requests of authenticated tokens: every mutating request carried
//     out, and refused requests (a token's refusals beyond its allowance are counted
//     instead, see below). Nothing a client without a valid token sends reaches it, so
//     no flood of bad credentials evicts these records.
//   - <p>:gw:{audit}:anon: refusals of a token-shaped credential that did not
//     authenticate (unknown — forged or mistyped —, revoked, expired), one by one, within
//     an allowance per client address and one across all addresses.
//   - <p>:gw:{audit}:counts: every other refusal, counted per minute, client address
//     (IPv6: its /64), token and reason, and written when the minute ends: token-less
//     requests, malformed credentials, and refusals beyond their allowance.
//
// The two record streams are trimmed by age (Config.AuditRetention, MINID) and by a
// hard bound (Config.AuditMaxLen, Config.AuditRefusalMaxLen); all three expire after the
// retention without writes.

// AuditEntry is one entry of the audit record: a mutating request, or a refused one.
type AuditEntry struct {
	// ID is the stream entry id.
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id"`
	// TokenID is the authenticated token, or the revoked or expired token presented; ""
	// for an unknown one.
	TokenID string `json:"token_id,omitempty"`
	Method  string `json:"method"`
	Route   string `json:"route"`
	// Target is what the request acted on: the job, the board, the /redis commands that
	// write (or were refused) with their keys. It is bounded in length; a cut is marked
	// with "…".
	Target string `json:"target,omitempty"`
	Status int    `json:"status"`
	Client string `json:"client"`
	// Denial says why a request was refused ("token expired", "scope jobs:write",
	// "redis key", ...); empty for requests that were carried out.
	Denial string `json:"denial,omitempty"`
	// Unauthenticated marks entries of the anon stream: a credential that did not
	// authenticate.
	Unauthenticated bool `json:"unauthenticated,omitempty"`
}

// AuditCount is one entry of the refusal counts: how many requests of one client, token
// and reason were refused in one minute without an entry of their own.
type AuditCount struct {
	ID      string    `json:"id"`
	Minute  time.Time `json:"minute"`
	Client  string    `json:"client"`
	TokenID string    `json:"token_id,omitempty"`
	Reason  string    `json:"reason"`
	Count   int64     `json:"count"`
}

// Bounds of the audit record's fields.
const (
	maxAuditTarget = 2048   // bytes of a target
	maxCountKeys   = 10_000 // distinct (minute, client, token, reason) waiting to be written
	clientsOther   = "*"    // the client of counts beyond maxCountKeys
)

type countKey struct {
	minute                int64 // Unix minutes
	client, token, reason string
}

// auditor writes the audit record and keeps the allowances of refused requests.
type auditor struct {
	s *Server
	// anon is spent by each refused request without a token-shaped credential, per
	// client key; when it is exhausted such requests get 429 without further work.
	anon *allowances
	// forged is spent by each one-by-one record of a token-shaped credential that did
	// not authenticate, per client key; global is the same across all clients.
	forged, global *allowances
	// byToken is spent by each one-by-one record of a refusal of a valid token.
	byToken *allowances

	mu     sync.Mutex
	counts map[countKey]int64
}

func newAuditor(s *Server) *auditor {
	c := s.cfg
	s.m.auditCounted.WithLabelValues("anonymous")
	s.m.auditCounted.WithLabelValues("token")
	return &auditor{
		s:       s,
		anon:    newAllowances(c.RefusalBurst, c.RefusalsPerMinute, 100_000),
		forged:  newAllowances(c.RefusalBurst, c.RefusalsPerMinute, 100_000),
		global:  newAllowances(c.RefusalRecordsPerMinute, c.RefusalRecordsPerMinute, 1),
		byToken: newAllowances(c.RefusalBurst, c.RefusalsPerMinute, 100_000),
		counts:  map[countKey]int64{},
	}
}

// record puts a finished request into the audit record: mutating requests carried out
// (denied false) and refusals (denied true).
func (a *auditor) record(r *http.Request, st *reqState, route string, status int, denied bool) {
	now := a.s.cfg.Now()
	client := clientAddr(r)
	ck := clientKey(client)
	switch {
	case !denied:
		a.write(r, st, route, status, false)
	case st.token != nil:
		if ok, _ := a.byToken.take(st.token.ID, now); ok {
			a.write(r, st, route, status, false)
			return
		}
		a.count(now, ck, st.token.ID, denialOf(st, status), "token")
	case st.credential:
		if ok, _ := a.forged.take(ck, now); ok {
			if ok, _ := a.global.take("", now); ok {
				a.write(r, st, route, status, true)
				return
			}
		}
		a.count(now, ck, st.credentialID, denialOf(st, status), "anonymous")
	default:
		if !st.charged {
			a.anon.take(ck, now)
		}
		a.count(now, ck, "", denialOf(st, status), "anonymous")
	}
}

func denialOf(st *reqState, status int) string {
	if st.denial != "" {
		return st.denial
	}
	return "status " + strconv.Itoa(status)
}

// count adds a refusal to the counts of its minute.
func (a *auditor) count(now time.Time, client, token, reason, kind string) {
	a.s.m.auditCounted.WithLabelValues(kind).Inc()
	k := countKey{minute: now.Unix() / 60, client: client, token: token, reason: truncate(reason, 128)}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.counts[k]; !ok && len(a.counts) >= maxCountKeys {
		k.client, k.token = clientsOther, ""
	}
	a.counts[k]++
}

// flush writes the counts of the minutes that have ended (all of them when all is set,
// at shutdown). Counts that fail to reach Redis are kept for the next flush.
func (a *auditor) flush(ctx context.Context, all bool) error {
	now := a.s.cfg.Now()
	cur := now.Unix() / 60
	type kv struct {
		k countKey
		n int64
	}
	var due []kv
	a.mu.Lock()
	for k, n := range a.counts {
		if all || k.minute < cur {
			due = append(due, kv{k, n})
			delete(a.counts, k)
		}
	}
	a.mu.Unlock()
	if len(due) == 0 {
		return nil
	}
	slices.SortFunc(due, func(x, y kv) int {
		return cmp.Or(cmp.Compare(x.k.minute, y.k.minute), cmp.Compare(x.k.client, y.k.client),
			cmp.Compare(x.k.token, y.k.token), cmp.Compare(x.k.reason, y.k.reason))
	})
	key := a.s.keys.auditCounts()
	_, err := a.s.deps.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, e := range due {
			vals := []any{"minute", e.k.minute * 60_000, "client", e.k.client, "reason", e.k.reason, "count", e.n}
			if e.k.token != "" {
				vals = append(vals, "token", e.k.token)
			}
			p.XAdd(ctx, &redis.XAddArgs{Stream: key, MaxLen: a.s.cfg.AuditRefusalMaxLen, Approx: true, Values: vals})
		}
		a.trim(ctx, p, key, now)
		return nil
	})
	if err != nil {
		a.s.m.auditErrors.Inc()
		a.mu.Lock()
		for _, e := range due {
			if _, ok := a.counts[e.k]; ok || len(a.counts) < maxCountKeys {
				a.counts[e.k] += e.n
			}
		}
		a.mu.Unlock()
		return fmt.Errorf("gateway: audit counts: %w", err)
	}
	return nil
}

// run flushes the counts every interval until ctx ends.
func (a *auditor) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.flush(ctx, false); err != nil && ctx.Err() == nil {
				a.s.log.Warn("audit counts flush failed; kept for the next one", "err", err)
			}
		}
	}
}

// trim queues the age trim and the TTL of an audit stream.
func (a *auditor) trim(ctx context.Context, p redis.Pipeliner, key string, now time.Time) {
	p.XTrimMinID(ctx, key, strconv.FormatInt(now.Add(-a.s.cfg.AuditRetention).UnixMilli(), 10))
	p.PExpire(ctx, key, a.s.cfg.AuditRetention)
}

// write appends one entry: to the anon stream for a credential that did not
// authenticate, to the main stream otherwise.
func (a *auditor) write(r *http.Request, st *reqState, route string, status int, anon bool) {
	target := st.target
	if target == "" {
		target = r.URL.Path
	}
	now := a.s.cfg.Now()
	e := map[string]any{
		"t": now.UnixMilli(), "rid": st.id, "method": r.Method, "route": route,
		"target": truncate(target, maxAuditTarget), "status": status, "client": clientAddr(r),
	}
	switch {
	case st.token != nil:
		e["token"] = st.token.ID
	case st.credentialID != "":
		e["token"] = st.credentialID
	}
	if st.denial != "" {
		e["denial"] = st.denial
	}
	key, maxLen := a.s.keys.audit(), a.s.cfg.AuditMaxLen
	if anon {
		key, maxLen = a.s.keys.auditAnon(), a.s.cfg.AuditRefusalMaxLen
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), time.Second)
	defer cancel()
	_, err := a.s.deps.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.XAdd(ctx, &redis.XAddArgs{Stream: key, MaxLen: maxLen, Approx: true, Values: e})
		a.trim(ctx, p, key, now)
		return nil
	})
	if err != nil {
		a.s.m.auditErrors.Inc()
		a.s.log.Warn("audit write failed", "err", err, "request_id", st.id)
	}
}

// AuditLog reads the audit record that servers with the same prefix write.
type AuditLog struct {
	rdb  redis.UniversalClient
	keys keyspace
}

// NewAuditLog returns the audit log under prefix ("" means "ts").
func NewAuditLog(rdb redis.UniversalClient, prefix string) *AuditLog {
	return &AuditLog{rdb: rdb, keys: newKeyspace(prefix)}
}

// Last returns the newest n entries of both record streams (authenticated requests,
// and credentials that did not authenticate), oldest first.
func (a *AuditLog) Last(ctx context.Context, n int64) ([]AuditEntry, error) {
	var out []AuditEntry
	for _, key := range []string{a.keys.audit(), a.keys.auditAnon()} {
		msgs, err := a.rdb.XRevRangeN(ctx, key, "+", "-", n).Result()
		if err != nil {
			return nil, fmt.Errorf("gateway: audit: %w", err)
		}
		for _, m := range msgs {
			out = append(out, auditEntry(m, key == a.keys.auditAnon()))
		}
	}
	slices.SortFunc(out, func(x, y AuditEntry) int { return compareIDs(x.ID, y.ID) })
	if int64(len(out)) > n {
		out = out[int64(len(out))-n:]
	}
	return out, nil
}

// Counts returns the newest n refusal counts, oldest first.
func (a *AuditLog) Counts(ctx context.Context, n int64) ([]AuditCount, error) {
	msgs, err := a.rdb.XRevRangeN(ctx, a.keys.auditCounts(), "+", "-", n).Result()
	if err != nil {
		return nil, fmt.Errorf("gateway: audit counts: %w", err)
	}
	out := make([]AuditCount, len(msgs))
	for i, m := range msgs {
		str := func(k string) string { v, _ := m.Values[k].(string); return v }
		ms, _ := strconv.ParseInt(str("minute"), 10, 64)
		c, _ := strconv.ParseInt(str("count"), 10, 64)
		out[len(msgs)-1-i] = AuditCount{ID: m.ID, Minute: time.UnixMilli(ms).UTC(), Client: str("client"),
			TokenID: str("token"), Reason: str("reason"), Count: c}
	}
	return out, nil
}

// Follow calls fn for every entry of both record streams after the one with id after
// ("$" for only new ones), blocking for new entries, until ctx ends (then it returns
// nil) or fn or Redis fails.
func (a *AuditLog) Follow(ctx context.Context, after string, fn func(AuditEntry) error) error {
	main, anon := a.keys.audit(), a.keys.auditAnon()
	pos := map[string]string{main: after, anon: after}
	if after == "$" {
		// "$" read twice would miss what one stream got between the reads: start from
		// each stream's newest entry instead.
		for _, key := range []string{main, anon} {
			last, err := a.rdb.XRevRangeN(ctx, key, "+", "-", 1).Result()
			if err != nil {
				return fmt.Errorf("gateway: audit follow: %w", err)
			}
			pos[key] = "0-0"
			if len(last) > 0 {
				pos[key] = last[0].ID
			}
		}
	}
	for {
		res, err := a.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{main, anon, pos[main], pos[anon]}, Block: 2 * time.Second, Count: 100}).Result()
		if ctx.Err() != nil {
			return nil
		}
		if err == redis.Nil {
			continue
		}
		if err != nil {
			return fmt.Errorf("gateway: audit follow: %w", err)
		}
		var batch []AuditEntry
		for _, st := range res {
			for _, m := range st.Messages {
				pos[st.Stream] = m.ID
				batch = append(batch, auditEntry(m, st.Stream == anon))
			}
		}
		slices.SortFunc(batch, func(x, y AuditEntry) int { return compareIDs(x.ID, y.ID) })
		for _, e := range batch {
			if err := fn(e); err != nil {
				return err
			}
		}
	}
}

// compareIDs orders stream entry ids ("ms-seq").
func compareIDs(x, y string) int {
	split := func(id string) (ms, seq int64) {
		a, b, _ := strings.Cut(id, "-")
		ms, _ = strconv.ParseInt(a, 10, 64)
		seq, _ = strconv.ParseInt(b, 10, 64)
		return ms, seq
	}
	xm, xs := split(x)
	ym, ys := split(y)
	return cmp.Or(cmp.Compare(xm, ym), cmp.Compare(xs, ys))
}

func auditEntry(m redis.XMessage, anon bool) AuditEntry {
	str := func(k string) string { v, _ := m.Values[k].(string); return v }
	ms, _ := strconv.ParseInt(str("t"), 10, 64)
	status, _ := strconv.Atoi(str("status"))
	return AuditEntry{ID: m.ID, Time: time.UnixMilli(ms).UTC(), RequestID: str("rid"), TokenID: str("token"),
		Method: str("method"), Route: str("route"), Target: str("target"), Status: status,
		Client: str("client"), Denial: str("denial"), Unauthenticated: anon}
}
