// Package ratelimit limits how often identifiers (users, tokens, IP addresses) may act,
// with counts kept in Redis so that every tickstash instance enforces the same limits.
//
// A Limiter holds a fixed list of policies, each with its own algorithm — FixedWindow,
// SlidingWindow, TokenBucket or GCRA — such as 10 requests per second in bursts plus
// 1000 a day. Every check of an identifier is decided by one Lua script (EVALSHA, EVAL
// only after NOSCRIPT) that decides all policies on the Redis server's clock and, only
// if all allow, charges all of them: a denied request costs nothing. Checks are atomic
// across instances, and the keys of one identifier share a hash tag so the script runs
// on Redis Cluster too.
//
//	lim, err := ratelimit.NewLimiter(rdb, ratelimit.Config{
//		Policies: []ratelimit.Policy{
//			{Name: "burst", Algorithm: ratelimit.GCRA, Limit: 10, Window: time.Second},
//			{Name: "daily", Algorithm: ratelimit.SlidingWindow, Limit: 1000, Window: 24 * time.Hour},
//		},
//	}, reg)
//	if err != nil {
//		return err
//	}
//	res, err := lim.AllowN(ctx, userID, 1)
//	if err != nil {
//		return err // ratelimit.ErrUnavailable: Redis down and failing closed
//	}
//	if !res.Allowed {
//		// come back after res.RetryAfter; res.Policy says which limit denied
//	}
//
// NewMiddleware wraps an http.Handler: it answers 429 with Retry-After and an RFC 9457
// problem body, and sets the RateLimit-Policy and RateLimit header fields of the IETF
// ratelimit-headers draft on every limited response.
//
// A denied identifier is remembered in process until its RetryAfter, so a caller that
// keeps knocking costs no Redis round trip. When Redis fails or exceeds Config.Timeout
// the limiter fails closed (ErrUnavailable) or, with Config.FailOpen, lets the request
// through and counts it.
//
// # Batching
//
// Concurrent checks share script calls ("group commit"): while one call is at Redis,
// the checks that arrive queue up, and the next call carries all of them (up to
// Config.MaxBatch) as its KEYS and ARGV. The script reads TIME once and decides the
// checks in arrival order, each exactly as if alone — all its policies or none
// charged, a TTL on every key written — so checks of one identifier in one batch see
// each other's charges. A lone check is sent at once; no timer waits for company. The
// cost of a round trip and a script run, which dominates a check, is shared by the
// batch. On Redis Cluster, where a script's keys must share a hash slot, a batch is
// split by slot into calls sent in one pipeline. Each caller still gets its own
// Result, fail-open or fail-closed decision and context error: a caller whose context
// ends leaves its batch without cancelling the call for the others.
//
// # Leases
//
// With Config.Lease, a busy identifier's check asks Redis for extra units beyond its
// cost, in the same script call; this process then spends them on the identifier's
// next checks without a Redis call. Leases start at one unit, double while each is used
// up within Config.LeaseTTL, halve when one lasts longer, and stop for a TTL when Redis
// refuses one (the quota is nearly used), so an idle identifier never leases and checks
// near the limit are exact. The trade: every unit spent was charged in Redis first, but
// possibly in the window before the one it is spent in, so each process may pass up to
// Lease units more than a window's limit; and units one process holds are not available
// to others, which may be refused up to Lease units early meanwhile. The gateway
// leases 1% of a token's limit.
//
// # Keys
//
// One string key per identifier and policy, "<prefix>:rl:{<identifier>}:<policy>", with
// an expiry set on every write: a key expires when its state would be no different from
// a fresh one (fixed window: at the window's end; sliding window: one window later;
// token bucket: when full again; GCRA: at its theoretical arrival time).
//
// # Differences from @upstash/ratelimit
//
// The algorithms follow @upstash/ratelimit's published ones — fixed windows aligned to
// the epoch, the sliding window's previous-window weighting rounded down, the token
// bucket's discrete refills every interval — except where its behaviour is a known bug
// or where tickstash's setting calls for something else:
//
//   - Denied requests are never charged. Upstash's fixed window runs INCRBY before
//     comparing with the limit, so denied (and weighted) requests still count; here the
//     script decides first and writes only if every policy allows.
//   - A weighted request must fit entirely. Upstash's sliding window and token bucket
//     deny only when the quota is already used up (tokens == 0, used >= limit), so a
//     request of cost 5 with 1 unit left passes and overdraws; here it is denied, and
//     RetryAfter says when cost units will be available.
//   - Every key gets an expiry in the same SET that writes it (SET ... PXAT). Upstash
//     sets PEXPIRE only when the first INCRBY returns exactly the increment, which leaves
//     keys without a TTL when that write is skipped or raced (e.g. by a refund).
//   - Time is the Redis server's (TIME inside the script), not each client's clock, so
//     instances with skewed clocks agree on windows.
//   - Several policies are decided and charged in one script call and one round trip;
//     upstash checks one algorithm per limiter (MultiRegion aside).
//   - There are no dynamic limits, refunds (negative cost), deny lists or analytics; the
//     local cache holds only denials, until their RetryAfter rather than their reset.
//   - Each policy keeps one key (the sliding window stores both windows' counts in it)
//     instead of one key per window.
package ratelimit
