package gateway

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/analysis"
	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/cache/session"
	"github.com/tickstash/tickstash/cache/userstate"
	"github.com/tickstash/tickstash/featureflag"
	"github.com/tickstash/tickstash/leaderboard"
	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/signals"
)

// Deps are the gateway's backends. Only Redis is required; a nil backend makes its
// routes answer 503 "not configured". The interfaces are the gateway's own, listing
// only what it calls, so any implementation (or a test fake) fits.
type Deps struct {
	// Redis keeps tokens, signature nonces, the audit stream, usage counters and rate
	// limits. Required.
	Redis redis.UniversalClient
	// NATS carries token changes (tokenevents.go): the server drops a revoked or
	// rotated token from its cache as soon as the change is announced, and announces
	// the changes made through Tokens. Nil means changes made elsewhere reach this
	// server within Config.TokenCacheTTL.
	NATS *nats.Conn
	// RESTRedis runs the commands of /redis. Nil means a RESP2 client to the same
	// servers as Redis (the REST protocol's replies are RESP2-shaped).
	RESTRedis redis.UniversalClient
	// Market serves /v1/markets...: *cache.MarketStore.
	Market MarketReader
	// Books serves /v1/markets/{exchange}/{symbol}/book...: *bookstore.Reader. The
	// book's SSE stream also needs NATS (the snapshots published on ts.book.*).
	Books BookReader
	// Jobs serves /v1/jobs... and /v1/markets/.../indicators: *analysis.Queue.
	Jobs Jobs
	// Leaderboards serves /v1/leaderboards/...: *leaderboard.Store.
	Leaderboards Leaderboards
	// Sessions serves /v1/sessions...: *session.SessionStore.
	Sessions Sessions
	// UserState serves /v1/state (the state of the token's subject): *userstate.UserStateStore.
	UserState UserState
	// Flags serves /v1/flags/{flag}: *featureflag.Client, whose Run the caller runs.
	Flags Flags
	// Signals feeds /v1/signals/stream: *signals.StreamSource.
	Signals SignalSource
	// Entitlements filters the signal stream per token subject
	// (*signals.EntitlementStore); nil lets every signal through to any token with
	// signals:read.
	Entitlements SignalEntitlements
}

// MarketReader reads cached market data. Reads of a market without data return an
// error wrapping cache.ErrNotFound (or ErrNotFound).
type MarketReader interface {
	Ticker(ctx context.Context, ex market.Exchange, sym market.Symbol) (cache.Ticker, error)
	LastCandles(ctx context.Context, ex market.Exchange, sym market.Symbol, iv market.Interval, n int) ([]market.Candle, error)
	CandlesBetween(ctx context.Context, ex market.Exchange, sym market.Symbol, iv market.Interval, from, to time.Time, limit int) ([]market.Candle, error)
	RecentTrades(ctx context.Context, ex market.Exchange, sym market.Symbol, n int) ([]market.Trade, error)
	Markets(ctx context.Context) ([]market.Instrument, error)
}

// Jobs is the analysis job queue and its results.
type Jobs interface {
	Enqueue(ctx context.Context, spec analysis.JobSpec) (string, error)
	Status(ctx context.Context, id string) (analysis.JobStatus, error)
	LatestResult(ctx context.Context, ex market.Exchange, sym market.Symbol, iv market.Interval) (analysis.Result, error)
	LatestResultOf(ctx context.Context, ex market.Exchange, sym market.Symbol, iv market.Interval, analyzer string) (analysis.Result, error)
}

var (
	_ MarketReader = (*cache.MarketStore)(nil)
	_ Jobs         = (*analysis.Queue)(nil)
)

// Leaderboards reads and writes ranked boards (*leaderboard.Store). Errors wrap the
// leaderboard package's: ErrUnknownBoard and ErrNotRanked answer 404; ErrNoWindow,
// ErrInvalidMember, ErrInvalidValue and ErrInvalidBoard 400; ErrContended 503.
type Leaderboards interface {
	Top(ctx context.Context, board string, w leaderboard.Window, n int) ([]leaderboard.Entry, error)
	Rank(ctx context.Context, board string, w leaderboard.Window, member string) (leaderboard.Entry, error)
	Around(ctx context.Context, board string, w leaderboard.Window, member string, k int) (entries []leaderboard.Entry, index int, count int64, err error)
	Set(ctx context.Context, board, member string, v decimal.Decimal) error
	Increment(ctx context.Context, board, member string, delta decimal.Decimal) (decimal.Decimal, error)
	// ReportPnL adds a trader's realized PnL to the traders.pnl board once per report id.
	ReportPnL(ctx context.Context, user, reportID string, pnl decimal.Decimal) (applied bool, err error)
}

// Sessions keeps users' sessions (*session.SessionStore): random ids, JSON data, a
// sliding TTL and a cap per user. Get and Touch of a missing or expired session return
// an error wrapping cache.ErrNotFound; Create returns cache.ErrInvalid or
// cache.ErrTooLarge for bad data.
type Sessions interface {
	Create(ctx context.Context, user string, data json.RawMessage) (session.Session, error)
	Get(ctx context.Context, id string) (session.Session, error)
	Touch(ctx context.Context, id string) error
	Destroy(ctx context.Context, id string) error
	List(ctx context.Context, user string) ([]session.Session, error)
}

// UserState keeps one versioned JSON document per user (*userstate.UserStateStore). Get of
// a user without one returns version 0 and a nil document. Update is a compare-and-set
// on the version: a stale one returns an error wrapping cache.ErrConflict (and the
// current version), an oversized document cache.ErrTooLarge.
type UserState interface {
	Get(ctx context.Context, user string) (userstate.UserState, error)
	Update(ctx context.Context, user string, version int64, doc json.RawMessage) (int64, error)
}

// Flags evaluates feature flags from an in-process copy (*featureflag.Client, kept current
// by its Run): Variant returns def for a flag the copy does not hold.
type Flags interface {
	Variant(key string, u featureflag.User, def string) string
}

// FlagResult is a feature flag's value for one subject.
type FlagResult struct {
	Flag    string `json:"flag"`
	Subject string `json:"subject"`
	// Variant is the variant served.
	Variant string `json:"variant"`
	// Enabled is true when Variant is "on" (what featureflag.Client.Bool returns).
	Enabled bool `json:"enabled"`
	// Known is false when the flag is not defined and the request's default was served.
	Known bool `json:"known"`
}

// SignalEvent is one signal as the stream carries it: Seq (the JetStream stream
// sequence) orders the stream and is the SSE event id that Last-Event-ID resumes after.
type SignalEvent = signals.StreamEvent

// SignalFilter narrows a signal stream; empty fields match everything.
type SignalFilter = signals.StreamFilter

// SignalSource streams signals (*signals.StreamSource). Stream calls fn with every
// signal matching f whose Seq is greater than after (after 0: from the newest signal
// per subject on), in Seq order, until ctx ends (then it returns nil) or fn returns an
// error (returned).
type SignalSource interface {
	Stream(ctx context.Context, f SignalFilter, after uint64, fn func(SignalEvent) error) error
}

// SignalEntitlements says whether a user may receive a strategy's signals on a symbol
// (*signals.EntitlementStore).
type SignalEntitlements interface {
	Allowed(ctx context.Context, user, strategy string, sym market.Symbol) (bool, error)
}

var (
	_ Leaderboards       = (*leaderboard.Store)(nil)
	_ Sessions           = (*session.SessionStore)(nil)
	_ UserState          = (*userstate.UserStateStore)(nil)
	_ Flags              = (*featureflag.Client)(nil)
	_ SignalSource       = (*signals.StreamSource)(nil)
	_ SignalEntitlements = (*signals.EntitlementStore)(nil)
)
