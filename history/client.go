package history

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/tickstash/tickstash/internal/backoff"
)

// ErrRequest is wrapped by every error of a REST request that failed for good: an
// answer that is not 2xx and not worth retrying (a wrong symbol, a bad parameter), or
// retries used up.
var ErrRequest = errors.New("history: request failed")

// errThrottled is returned by a body check when a 200 answer says "slow down" (Kraken's
// EAPI:Rate limit exceeded): the request is retried after a backoff.
var errThrottled = errors.New("history: throttled")

// maxBody bounds a response body; the largest documented page (1000 trades) is far below.
const maxBody = 16 << 20

// VenueConfig configures a Venue. Every zero value means the documented default.
type VenueConfig struct {
	// BaseURL is the venue's REST root, without a trailing slash; "" means its public
	// production URL (see DefaultBaseURL). Set it for tests and proxies.
	BaseURL string
	// RequestsPerSecond paces requests on the client side; 0 means the venue's default
	// (Binance 10, Coinbase 8, Kraken 1), a negative value means no pacing.
	RequestsPerSecond float64
	// MaxAttempts is how often one request is tried before giving up; 0 means 8.
	MaxAttempts int
	// BinanceWeightLimit: when Binance reports X-MBX-USED-WEIGHT-1M at or above it, the
	// client waits for the next minute. 0 means 1000 (Binance.US allows 1200 a minute,
	// Binance 6000).
	BinanceWeightLimit int
	// BinanceAPIKey is sent as X-MBX-APIKEY when set; "" sends none (klines, aggTrades
	// and historicalTrades are public).
	BinanceAPIKey string
	// BinanceAggTradeIDs says the feed's trade ids are aggregate-trade ids (the
	// aggTrade stream): id gaps are then fetched from /api/v3/aggTrades. false means
	// trade ids (the trade stream), fetched from /api/v3/historicalTrades.
	BinanceAggTradeIDs bool
	// HTTPClient makes the requests; nil means a client with a 30 s timeout.
	HTTPClient *http.Client
	// Sleep waits d or until ctx is done; nil means a timer. Tests record the waits.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock used for Binance's weight window; nil means time.Now.
	Now func() time.Time
	// Log receives retries and waits; nil discards them.
	Log *slog.Logger
}

// client is the HTTP side shared by the venues: pacing, retries, Retry-After, metrics.
type client struct {
	name    string
	base    string
	hc      *http.Client
	lim     *rate.Limiter
	m       *Metrics
	cfg     VenueConfig
	headers http.Header
	// weight is non-nil for Binance: reads X-MBX-USED-WEIGHT-1M after each answer.
	weight bool
}

func newClient(name, defaultBase string, defaultRPS float64, cfg VenueConfig, m *Metrics) *client {
	if cfg.BaseURL == "" {
		cfg.BaseURL = defaultBase
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	if cfg.BinanceWeightLimit <= 0 {
		cfg.BinanceWeightLimit = 1000
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Sleep == nil {
		cfg.Sleep = backoff.Sleep
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	rps := cfg.RequestsPerSecond
	if rps == 0 {
		rps = defaultRPS
	}
	lim := rate.NewLimiter(rate.Inf, 1)
	if rps > 0 {
		lim = rate.NewLimiter(rate.Limit(rps), 1)
	}
	if m == nil {
		panic("history: nil Metrics: make one with NewMetrics")
	}
	return &client{name: name, base: cfg.BaseURL, hc: cfg.HTTPClient, lim: lim, m: m, cfg: cfg, headers: http.Header{}}
}

// answer is a successful response.
type answer struct {
	body   []byte
	header http.Header
}

// get fetches base+path, paced and retried: 429 and 418 wait Retry-After (418 is
// Binance's IP ban: at least 2 minutes when the header is missing), 5xx and transport
// errors back off exponentially (0.5 s doubling, capped at 30 s), other statuses fail at
// once. check, if set, inspects a 200 body and may return errThrottled to retry it.
func (c *client) get(ctx context.Context, path string, check func([]byte) error) (answer, error) {
	url := c.base + path
	retry := backoff.New(backoff.Policy{Min: 500 * time.Millisecond, Max: 30 * time.Second})
	var last error
	for attempt := 1; attempt <= c.cfg.MaxAttempts; attempt++ {
		if err := c.lim.Wait(ctx); err != nil {
			return answer{}, err
		}
		wait, ans, err := c.once(ctx, url, check)
		if err == nil {
			return ans, nil
		}
		if ctx.Err() != nil {
			return answer{}, ctx.Err()
		}
		var fatal *fatalError
		if errors.As(err, &fatal) {
			return answer{}, fmt.Errorf("%w: %s GET %s: %w", ErrRequest, c.name, path, fatal.err)
		}
		last = err
		if wait <= 0 {
			wait = retry.Next()
		}
		c.cfg.Log.Warn("history: retrying request", "venue", c.name, "path", path, "attempt", attempt, "wait", wait, "err", err)
		if attempt == c.cfg.MaxAttempts {
			break
		}
		if err := c.cfg.Sleep(ctx, wait); err != nil {
			return answer{}, err
		}
	}
	return answer{}, fmt.Errorf("%w: %s GET %s: gave up after %d attempts: %w", ErrRequest, c.name, path, c.cfg.MaxAttempts, last)
}

type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }

// once makes one request. It returns how long to wait before the next try when the
// server said so (Retry-After), 0 for the default backoff.
func (c *client) once(ctx context.Context, url string, check func([]byte) error) (time.Duration, answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, answer{}, &fatalError{err}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "tickstash-history")
	if c.weight && c.cfg.BinanceAPIKey != "" {
		req.Header.Set("X-MBX-APIKEY", c.cfg.BinanceAPIKey)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.m.requests.WithLabelValues(c.name, "error").Inc()
		return 0, answer{}, err
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	resp.Body.Close()
	c.m.requests.WithLabelValues(c.name, strconv.Itoa(resp.StatusCode)).Inc()
	if c.weight {
		if err := c.respectWeight(ctx, resp.Header); err != nil {
			return 0, answer{}, err
		}
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusTeapot:
		wait := retryAfter(resp.Header, c.cfg.Now())
		if wait <= 0 && resp.StatusCode == http.StatusTeapot {
			wait = 2 * time.Minute
		}
		if wait <= 0 {
			wait = time.Second
		}
		return wait, answer{}, fmt.Errorf("status %d (rate limited): %s", resp.StatusCode, snippet(body))
	case resp.StatusCode >= 500:
		return retryAfter(resp.Header, c.cfg.Now()), answer{}, fmt.Errorf("status %d: %s", resp.StatusCode, snippet(body))
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return 0, answer{}, &fatalError{fmt.Errorf("status %d: %s", resp.StatusCode, snippet(body))}
	}
	if rerr != nil {
		return 0, answer{}, fmt.Errorf("read body: %w", rerr)
	}
	if len(body) > maxBody {
		return 0, answer{}, &fatalError{fmt.Errorf("response larger than %d bytes", maxBody)}
	}
	if check != nil {
		if err := check(body); err != nil {
			if errors.Is(err, errThrottled) {
				return 0, answer{}, err
			}
			return 0, answer{}, &fatalError{err}
		}
	}
	return 0, answer{body: body, header: resp.Header}, nil
}

// respectWeight waits for the next minute when Binance says the minute's request
// weight is spent up to the configured limit.
func (c *client) respectWeight(ctx context.Context, h http.Header) error {
	used, err := strconv.Atoi(h.Get("X-MBX-USED-WEIGHT-1M"))
	if err != nil || used < c.cfg.BinanceWeightLimit {
		return nil
	}
	now := c.cfg.Now()
	wait := now.Truncate(time.Minute).Add(time.Minute + time.Second).Sub(now)
	c.cfg.Log.Info("history: Binance request weight near its limit, waiting for the next minute", "venue", c.name, "used", used, "limit", c.cfg.BinanceWeightLimit, "wait", wait)
	return c.cfg.Sleep(ctx, wait)
}

// retryAfter reads Retry-After in seconds or as an HTTP date; 0 when absent or invalid.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
