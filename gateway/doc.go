// Package gateway is tickstash's HTTP face for bots and edge functions: authenticated,
// optionally signed, rate-limited, audited and metered access to a typed /v1 API
// (market data, analysis jobs, leaderboards, sessions, user state, feature flags,
// signals as Server-Sent Events) and to a Redis REST endpoint, /redis, that speaks
// Upstash's REST protocol so the @upstash/redis and @upstash/ratelimit SDKs work
// against it unchanged.
//
//	srv, err := gateway.New(gateway.Deps{
//		Redis:        rdb,
//		Market:       cache.NewMarketStore(rdb, cache.MarketConfig{}, reg),
//		Jobs:         analysis.NewQueue(rdb, analysis.QueueConfig{}, reg),
//		Leaderboards: boards, // *leaderboard.Store
//		Sessions:     session.NewSessionStore(rdb, session.SessionConfig{}, reg),
//		UserState:    userstate.NewUserStateStore(rdb, userstate.UserStateConfig{}, reg),
//		Flags:        fl, // *flags.Client; go fl.Run(ctx)
//		Signals:      src, // *signals.StreamSource over JetStream
//		Entitlements: signals.NewEntitlementStore(rdb, signals.EntitlementConfig{}),
//	}, gateway.Config{}, log, reg)
//	if err != nil {
//		return err
//	}
//	err = srv.Serve(ctx, ln) // returns after a graceful shutdown when ctx ends
//
// Tokens ("tsk_" + 43 base64url characters) are issued by TokenStore.Create (the
// `tickstash token create` command) and kept in Redis only as SHA-256 hashes. Each
// carries scopes (a route needs one), an expiry, an optional rate policy (ParseRate),
// a command class and a namespace or key prefixes for /redis, and optionally a signing secret: such
// tokens must sign every request (see Sign and signing.go for the scheme). Signing
// secrets are stored encrypted under Config.SecretKeys (secretkeys.go); revocations
// and rotations are announced over NATS (Deps.NATS) so that every gateway drops its
// cached copy at once (tokenevents.go). Signal streams are capped per token and per
// server (Config.SSEMaxPerToken, SSEMaxStreams).
//
// Errors are application/problem+json (RFC 9457) with a request id, except on /redis,
// which answers {"error": "..."} like Upstash. Statuses: 400 bad input, 401 missing,
// unknown, expired or revoked token or bad signature, 403 missing scope or refused
// Redis command or key, 404 unknown route or resource, 405 wrong method, 413 body too
// large, 409 a stale version on PUT /v1/state, 428 no version given there, 429 rate
// limited (or, without a token, too many refused requests from the client's address),
// 503 backend down or not configured. JSON bodies must be valid UTF-8.
//
// Sessions, state and flag evaluation act for the token's subject only: a session id of
// another user answers 404, as a missing one does.
//
// Every mutating request and every refusal of a token is appended to a bounded audit
// stream; refusals of credentials that do not authenticate go one by one, within
// per-address allowances, to another, and every other refusal is counted per minute
// (audit.go; AuditLog reads them). Requests and bytes are metered per token and UTC day
// (GET /v1/usage). The OpenAPI 3.1 document is served at /openapi.json.
package gateway
