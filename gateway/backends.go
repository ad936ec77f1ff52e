package gateway

import (
	"context"
	"encoding/json"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/analysis"
	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/market"
)

// Deps are the gateway's backends. Only Redis is required; a nil backend makes its
// routes answer 503 "not configured". The interfaces are the gateway's own, listing
// only what it calls, so any implementation (or a test fake) fits.
type Deps struct {
	// Redis keeps tokens, signature nonces, the audit stream, usage counters and rate
	// limits. Required.
	Redis redis.UniversalClient
	// RESTRedis runs the commands of /redis. Nil means a RESP2 client to the same
	// servers as Redis (the REST protocol's replies are RESP2-shaped).
	RESTRedis redis.UniversalClient
	// Market serves /v1/markets...: *cache.MarketStore.
	Market MarketReader
	// Jobs serves /v1/jobs... and /v1/markets/.../indicators: *analysis.Queue.
	Jobs Jobs
	// Leaderboards serves /v1/leaderboards/...
	Leaderboards Leaderboards
	// Sessions serves /v1/sessions/{id}.
	Sessions Sessions
	// UserState serves /v1/state (the state of the token's subject).
	UserState UserState
	// Flags serves /v1/flags/{flag}.
	Flags Flags
	// Signals feeds /v1/signals/stream.
	Signals SignalSource
	// Entitlements filters the signal stream per token subject; nil lets every signal
	// through to any token with signals:read.
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

// BoardEntry is one member's place on a leaderboard. Score is the exact decimal.
type BoardEntry struct {
	Member string `json:"member"`
	Rank   int64  `json:"rank"` // 1 is the top
	Score  string `json:"score"`
}

// Leaderboards reads and writes ranked boards. window is "day", "week" or "all" ("" =
// the board's default). Unknown boards or members return ErrNotFound.
type Leaderboards interface {
	Top(ctx context.Context, board, window string, n int) ([]BoardEntry, error)
	Rank(ctx context.Context, board, window, member string) (BoardEntry, error)
	Around(ctx context.Context, board, window, member string, n int) ([]BoardEntry, error)
	Add(ctx context.Context, board, member string, score decimal.Decimal) error
}

// Sessions keeps opaque JSON session documents with a TTL. Get of a missing or
// expired session returns ErrNotFound.
type Sessions interface {
	Get(ctx context.Context, id string) (json.RawMessage, error)
	Put(ctx context.Context, id string, data json.RawMessage, ttl time.Duration) error
	Delete(ctx context.Context, id string) error
}

// UserState keeps a user's state as JSON fields. Get of an unknown user returns an
// empty map.
type UserState interface {
	Get(ctx context.Context, user string) (map[string]json.RawMessage, error)
	Merge(ctx context.Context, user string, fields map[string]json.RawMessage) error
}

// FlagResult is a feature flag's value for one subject.
type FlagResult struct {
	Flag    string `json:"flag"`
	Enabled bool   `json:"enabled"`
	Variant string `json:"variant,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// Flags evaluates feature flags. An unknown flag returns ErrNotFound.
type Flags interface {
	Evaluate(ctx context.Context, flag, subject string, attrs map[string]string) (FlagResult, error)
}

// SignalEvent is one signal as the stream carries it.
type SignalEvent struct {
	// Seq orders the stream (the JetStream stream sequence); it is the SSE event id
	// that Last-Event-ID resumes after.
	Seq      uint64          `json:"seq"`
	ID       string          `json:"id"`
	Strategy string          `json:"strategy"`
	Exchange market.Exchange `json:"exchange"`
	Symbol   market.Symbol   `json:"symbol"`
	// Data is the signal's JSON document.
	Data json.RawMessage `json:"data"`
}

// SignalFilter narrows a signal stream; empty fields match everything.
type SignalFilter struct {
	Strategies []string
	Symbols    []market.Symbol
}

// SignalSource streams signals. Stream calls fn with every signal matching f whose Seq
// is greater than after (after 0: from the newest signal per subject on), in Seq
// order, until ctx ends (then it returns nil) or fn returns an error (returned).
type SignalSource interface {
	Stream(ctx context.Context, f SignalFilter, after uint64, fn func(SignalEvent) error) error
}

// SignalEntitlements says whether a user may receive a strategy's signals on a symbol
// (signals.EntitlementStore has this method).
type SignalEntitlements interface {
	Allowed(ctx context.Context, user, strategy string, sym market.Symbol) (bool, error)
}
