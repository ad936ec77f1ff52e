package wsfeed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/internal/backoff"
)

// Recorder receives every raw message of a connection, e.g. a capture.Writer. conn
// names the connection ("BINANCE.ws.3"), addr is its URL.
type Recorder interface {
	Connect(conn, addr string, t time.Time) error
	Send(conn, addr string, data []byte, t time.Time) error
	Recv(conn string, data []byte, t time.Time) error
}

// Config describes one websocket feed.
type Config struct {
	// URL is the websocket address (wss://..., or ws://... for tests). Required.
	URL string
	// Decoder decodes the feed's messages. Required.
	Decoder Decoder
	// Subscribe lists messages sent, in order, after every (re)connect. Nil sends none
	// (Binance names its streams in the URL).
	Subscribe [][]byte
	// Header is added to the handshake request. Nil adds nothing.
	Header http.Header
	// Silence is how long a connection may go without data or pings before it is
	// dropped and redialled. Zero means one minute.
	Silence time.Duration
	// MaxAge is the age at which a connection is replaced by a fresh one (Binance
	// closes connections after 24 h). Zero means never.
	MaxAge time.Duration
	// Ping, if set, is called every PingEvery for an application-level ping message
	// (Kraken). PingEvery zero means 30 s.
	Ping      func() []byte
	PingEvery time.Duration
	// BackoffMin and BackoffMax bound the delay between failed connection attempts;
	// it doubles from BackoffMin up to BackoffMax, with full jitter. Zero means 500 ms
	// and 30 s.
	BackoffMin, BackoffMax time.Duration
	// ReadLimit is the largest message accepted. Zero means 16 MiB.
	ReadLimit int64
	// Recorder, if not nil, receives every raw message. A Recorder error stops Run.
	Recorder Recorder
	// ConnPrefix names connections in recordings: "<ConnPrefix>.ws.<n>". Empty means
	// the exchange name in upper case.
	ConnPrefix string
	// Depth, if not nil, sees every text message of every connection before the
	// Decoder does: the order books (ingest/bookfeed). Nil keeps no books.
	Depth DepthHandler
}

// DepthHandler keeps the order books of a feed's connections.
type DepthHandler interface {
	// Connected is called after every (re)connect and subscribe: the books start
	// over. ctx ends with the connection (snapshot fetches stop with it).
	Connected(ctx context.Context)
	// Handle applies one message received at recv. An error ends the connection,
	// which is redialled after the reconnect backoff (a resubscribe to resync a book
	// whose feed has no other way to send a new snapshot).
	Handle(msg []byte, recv time.Time) error
	// Disconnected is called when a connection that was Connected ends: its books
	// stop being updated and must not be presented as live until the next snapshot.
	Disconnected()
}

// stableAfter is how long a connection must have lasted for the backoff to start
// again from BackoffMin.
const stableAfter = 10 * time.Second

// Errors that end a session and cause a reconnect.
var (
	errSilence = errors.New("wsfeed: silence watchdog fired")
	errMaxAge  = fmt.Errorf("wsfeed: connection reached its maximum age: %w", ErrReconnect)
)

// Feed keeps one websocket connection to an exchange open and turns its messages into
// events.
type Feed struct {
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	conns   int
}

// New returns a Feed for cfg, registering its metrics on reg (see NewMetrics).
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) *Feed {
	if cfg.Silence <= 0 {
		cfg.Silence = time.Minute
	}
	if cfg.PingEvery <= 0 {
		cfg.PingEvery = 30 * time.Second
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = 500 * time.Millisecond
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 30 * time.Second
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		cfg.BackoffMax = cfg.BackoffMin
	}
	if cfg.ReadLimit <= 0 {
		cfg.ReadLimit = 16 << 20
	}
	if cfg.ConnPrefix == "" && cfg.Decoder != nil {
		cfg.ConnPrefix = strings.ToUpper(string(cfg.Decoder.Exchange()))
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var m *Metrics
	if cfg.Decoder != nil {
		m = NewMetrics(reg, cfg.Decoder.Exchange())
	}
	return &Feed{cfg: cfg, log: log, metrics: m}
}

// Metrics returns the feed's metrics.
func (f *Feed) Metrics() *Metrics { return f.metrics }

// Run connects, subscribes and sends events to out until ctx is done, then returns
// nil. Lost connections are redialled forever; Run returns an error only for a
// configuration error or when the Recorder fails.
func (f *Feed) Run(ctx context.Context, out chan<- ingest.Event) error {
	if f.cfg.URL == "" || f.cfg.Decoder == nil {
		return errors.New("wsfeed: Config.URL and Config.Decoder are required")
	}
	stream := NewStream(f.cfg.Decoder, f.metrics, f.log)
	retry := backoff.New(f.retryPolicy())
	for {
		start := time.Now()
		err := f.session(ctx, stream, out)
		if ctx.Err() != nil {
			return nil
		}
		var rerr *recordError
		if errors.As(err, &rerr) {
			return err
		}
		f.metrics.Reconnects.Inc()
		if time.Since(start) >= stableAfter {
			retry.Reset()
		}
		var delay time.Duration
		if !errors.Is(err, ErrReconnect) {
			delay = retry.Next()
		}
		f.log.Warn("wsfeed: reconnecting", "exchange", f.metrics.exchange, "err", err, "delay", delay)
		if backoff.Sleep(ctx, delay) != nil {
			return nil
		}
	}
}

// retryPolicy is the reconnect backoff: doubling from BackoffMin to BackoffMax with
// full jitter (a delay drawn from [0, ceiling]), so that many clients dropped at once do
// not return in step.
func (f *Feed) retryPolicy() backoff.Policy {
	return backoff.Policy{Min: f.cfg.BackoffMin, Max: f.cfg.BackoffMax, Jitter: 1}
}

type recordError struct{ err error }

func (e *recordError) Error() string { return "wsfeed: record: " + e.err.Error() }
func (e *recordError) Unwrap() error { return e.err }

// session runs one connection until it fails, is replaced, or ctx ends.
func (f *Feed) session(ctx context.Context, stream *Stream, out chan<- ingest.Event) error {
	connCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	// readingSince is the Unix nanosecond time since which the session has waited for
	// a message, or 0 while it hands events over (a slow consumer is not silence).
	var readingSince atomic.Int64
	readingSince.Store(time.Now().UnixNano())

	dialCtx, dialCancel := context.WithTimeout(connCtx, 30*time.Second)
	c, _, err := websocket.Dial(dialCtx, f.cfg.URL, &websocket.DialOptions{
		HTTPHeader: f.cfg.Header,
		OnPingReceived: func(context.Context, []byte) bool {
			if readingSince.Load() != 0 {
				readingSince.Store(time.Now().UnixNano())
			}
			return true // coder/websocket answers with a pong
		},
	})
	dialCancel()
	if err != nil {
		return fmt.Errorf("wsfeed: dial %s: %w", f.cfg.URL, err)
	}
	defer c.CloseNow()
	c.SetReadLimit(f.cfg.ReadLimit)
	f.conns++
	name := f.cfg.ConnPrefix + ".ws." + strconv.Itoa(f.conns)
	opened := time.Now()
	if r := f.cfg.Recorder; r != nil {
		if err := r.Connect(name, f.cfg.URL, opened); err != nil {
			return &recordError{err}
		}
	}
	f.log.Info("wsfeed: connected", "exchange", f.metrics.exchange, "url", f.cfg.URL, "conn", name)
	for _, sub := range f.cfg.Subscribe {
		if err := f.write(connCtx, c, name, sub); err != nil {
			return err
		}
	}

	if f.cfg.Depth != nil {
		f.cfg.Depth.Connected(connCtx)
		defer f.cfg.Depth.Disconnected()
	}

	done := make(chan struct{})
	defer close(done)
	go f.watch(connCtx, cancel, c, name, opened, &readingSince, done)

	var buf bytes.Buffer
	for {
		readingSince.Store(time.Now().UnixNano())
		typ, r, err := c.Reader(connCtx)
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			if cause := context.Cause(connCtx); cause != nil && ctx.Err() == nil {
				return cause
			}
			return fmt.Errorf("wsfeed: read: %w", err)
		}
		readingSince.Store(0)
		recv := time.Now()
		msg := buf.Bytes()
		if rec := f.cfg.Recorder; rec != nil {
			if err := rec.Recv(name, msg, recv); err != nil {
				return &recordError{err}
			}
		}
		if typ != websocket.MessageText {
			f.metrics.Messages.Inc()
			stream.skip(ReasonBinary, errors.New("binary message"), msg)
			continue
		}
		if f.cfg.Depth != nil {
			if err := f.cfg.Depth.Handle(msg, recv); err != nil {
				return err
			}
		}
		if err := stream.Handle(ctx, msg, recv, out); err != nil {
			return err
		}
	}
}

func (f *Feed) write(ctx context.Context, c *websocket.Conn, name string, msg []byte) error {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Write(wctx, websocket.MessageText, msg); err != nil {
		return fmt.Errorf("wsfeed: send: %w", err)
	}
	if r := f.cfg.Recorder; r != nil {
		if err := r.Send(name, f.cfg.URL, msg, time.Now()); err != nil {
			return &recordError{err}
		}
	}
	return nil
}

// watch ends the session (through cancel) when it goes silent or reaches its maximum
// age, and sends application pings.
func (f *Feed) watch(ctx context.Context, cancel context.CancelCauseFunc, c *websocket.Conn, name string,
	opened time.Time, readingSince *atomic.Int64, done <-chan struct{}) {
	tick := f.cfg.Silence / 4
	if f.cfg.Ping != nil && f.cfg.PingEvery < tick {
		tick = f.cfg.PingEvery
	}
	if f.cfg.MaxAge > 0 && f.cfg.MaxAge < tick {
		tick = f.cfg.MaxAge
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	lastPing := opened
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case now := <-t.C:
			if since := readingSince.Load(); since != 0 && now.Sub(time.Unix(0, since)) > f.cfg.Silence {
				cancel(fmt.Errorf("%w: nothing for %s", errSilence, f.cfg.Silence))
				return
			}
			if f.cfg.MaxAge > 0 && now.Sub(opened) >= f.cfg.MaxAge {
				cancel(errMaxAge)
				return
			}
			if f.cfg.Ping != nil && now.Sub(lastPing) >= f.cfg.PingEvery {
				lastPing = now
				if err := f.write(ctx, c, name, f.cfg.Ping()); err != nil {
					cancel(err)
					return
				}
			}
		}
	}
}
