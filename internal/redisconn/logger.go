package redisconn

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// LogConfig configures a Logger. Zero values mean the documented defaults.
type LogConfig struct {
	// Every is how often one go-redis call site may log: repeats of a line within
	// Every of the last one logged are counted, not printed, and the next line logged
	// says how many were suppressed. 0 means 10s.
	Every time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Logger carries go-redis's own log lines (dial failures, pool troubles) into an
// slog.Logger, so they follow --log-format and --log-level like every other line,
// at most one per go-redis call site per LogConfig.Every: a Redis outage makes go-redis
// repeat the same lines many times a second. It implements go-redis's internal
// Logging interface (Printf(ctx, format, args...)); install it with SetLogger.
type Logger struct {
	log *slog.Logger
	cfg LogConfig

	mu    sync.Mutex
	sites map[string]*logSite
}

type logSite struct {
	last       time.Time
	suppressed int
}

// maxLogSites bounds the per-call-site state; go-redis has a few hundred Printf calls.
const maxLogSites = 1024

// NewLogger returns a Logger writing to log.
func NewLogger(log *slog.Logger, cfg LogConfig) *Logger {
	if cfg.Every <= 0 {
		cfg.Every = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Logger{log: log, cfg: cfg, sites: make(map[string]*logSite)}
}

// SetLogger makes l the logger of every go-redis client in the process (go-redis keeps
// one, globally). A nil l is ignored.
func SetLogger(l *Logger) {
	if l != nil {
		redis.SetLogger(l)
	}
}

// Printf logs one go-redis line at warn level (go-redis logs only troubles), unless
// the same call site — the same format — logged less than Every ago.
func (l *Logger) Printf(ctx context.Context, format string, args ...any) {
	now := l.cfg.Now()
	l.mu.Lock()
	site := l.sites[format]
	if site == nil {
		if len(l.sites) >= maxLogSites {
			clear(l.sites)
		}
		site = &logSite{}
		l.sites[format] = site
	} else if now.Sub(site.last) < l.cfg.Every {
		site.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := site.suppressed
	site.last, site.suppressed = now, 0
	l.mu.Unlock()

	msg := strings.TrimPrefix(fmt.Sprintf(format, args...), "redis: ")
	attrs := []slog.Attr{slog.String("component", "go-redis")}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int("suppressed", suppressed), slog.Duration("suppressed_within", l.cfg.Every))
	}
	if ctx == nil {
		ctx = context.Background()
	}
	l.log.LogAttrs(ctx, slog.LevelWarn, "redis client: "+msg, attrs...)
}
