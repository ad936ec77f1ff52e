package capture

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
	"github.com/tickstash/tickstash/market"
)

// WriterConfig configures a Writer.
type WriterConfig struct {
	// Dir is the directory files are created in; it must exist. Required.
	Dir string
	// Exchange is written to each file's header and starts file names. Required.
	Exchange market.Exchange
	// MaxBytes starts a new file once the current one holds this many bytes
	// (uncompressed). Zero means 256 MiB.
	MaxBytes int64
	// MaxAge starts a new file once the current one is this old. Zero means one hour.
	MaxAge time.Duration
	// Compress writes zstd-compressed files (".jsonl.zst").
	Compress bool
	// Now is the clock used for file names, ages and flushing. Nil means time.Now.
	Now func() time.Time
}

// flushEvery bounds how long written lines may sit in the buffer.
const flushEvery = time.Second

// Writer writes capture files, rotating them by size and age. Each file starts with a
// header and repeats the connect line of every open connection, so each file replays
// on its own. Writer implements wsfeed.Recorder and is safe for concurrent use.
type Writer struct {
	cfg WriterConfig

	mu        sync.Mutex
	f         *os.File
	zw        *zstd.Encoder
	bw        *bufio.Writer
	size      int64
	opened    time.Time
	lastFlush time.Time
	conns     map[string]connInfo
	files     []string
	buf       []byte
	closed    bool
}

type connInfo struct {
	addr string
	at   time.Time
}

// NewWriter returns a Writer that creates its first file on the first record.
func NewWriter(cfg WriterConfig) (*Writer, error) {
	if cfg.Dir == "" {
		return nil, errors.New("capture: WriterConfig.Dir is required")
	}
	if err := cfg.Exchange.Validate(); err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	if st, err := os.Stat(cfg.Dir); err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("capture: %s is not a directory", cfg.Dir)
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 256 << 20
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Writer{cfg: cfg, conns: make(map[string]connInfo)}, nil
}

// Files returns the paths of the files written so far, oldest first.
func (w *Writer) Files() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.files...)
}

// Connect records that connection conn to addr opened at t.
func (w *Writer) Connect(conn, addr string, t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.ensure(); err != nil {
		return err
	}
	w.conns[conn] = connInfo{addr: addr, at: t}
	return w.line(TypeConnect, conn, t, addr, nil)
}

// Send records a message sent on conn.
func (w *Writer) Send(conn, addr string, data []byte, t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.ensure(); err != nil {
		return err
	}
	return w.line(TypeSend, conn, t, addr, data)
}

// Recv records a message received on conn.
func (w *Writer) Recv(conn string, data []byte, t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.ensure(); err != nil {
		return err
	}
	return w.line(TypeRecv, conn, t, "", data)
}

// HTTP records a REST response the recorder's owner fetched (TypeHTTP): Binance's
// depth snapshots, so a recorded session replays its order books exactly.
func (w *Writer) HTTP(conn, url string, body []byte, t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.ensure(); err != nil {
		return err
	}
	return w.line(TypeHTTP, conn, t, url, body)
}

// Close flushes and closes the current file. Later writes fail.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	return w.closeFile()
}

// ensure opens a file if none is open, or a new one if the current one is too big or
// too old.
func (w *Writer) ensure() error {
	if w.closed {
		return errors.New("capture: writer is closed")
	}
	now := w.cfg.Now()
	if w.f != nil && w.size < w.cfg.MaxBytes && now.Sub(w.opened) < w.cfg.MaxAge {
		if now.Sub(w.lastFlush) >= flushEvery {
			w.lastFlush = now
			return w.flush()
		}
		return nil
	}
	if err := w.closeFile(); err != nil {
		return err
	}
	name := fmt.Sprintf("%s-%s.jsonl", w.cfg.Exchange, now.UTC().Format("20060102T150405.000000000Z"))
	if w.cfg.Compress {
		name += ".zst"
	}
	path := filepath.Join(w.cfg.Dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	w.f, w.size, w.opened, w.lastFlush = f, 0, now, now
	var dst io.Writer = f
	if w.cfg.Compress {
		if w.zw, err = zstd.NewWriter(f, zstd.WithEncoderConcurrency(1)); err != nil {
			f.Close()
			return fmt.Errorf("capture: %w", err)
		}
		dst = w.zw
	}
	w.bw = bufio.NewWriterSize(dst, 64<<10)
	w.files = append(w.files, path)
	hdr := `{"t":"header","format":2,"exchange":` + strconv.Quote(HeaderName(w.cfg.Exchange)) +
		`,"recorded":` + formatTS(now) + `,"recorder":"tickstash"}` + "\n"
	if err := w.write([]byte(hdr)); err != nil {
		return err
	}
	// Every file replays on its own: repeat the connections that are open.
	for conn, c := range w.conns {
		if err := w.line(TypeConnect, conn, c.at, c.addr, nil); err != nil {
			return err
		}
	}
	return nil
}

func (w *Writer) line(typ, conn string, t time.Time, addr string, data []byte) error {
	b := w.buf[:0]
	b = append(b, `{"t":"`...)
	b = append(b, typ...)
	b = append(b, `","conn":`...)
	b = appendString(b, conn)
	b = append(b, `,"ts":`...)
	b = append(b, formatTS(t)...)
	if addr != "" {
		if typ == TypeHTTP {
			b = append(b, `,"url":`...)
		} else {
			b = append(b, `,"addr":`...)
		}
		b = appendString(b, addr)
	}
	if typ != TypeConnect {
		b = append(b, `,"data":`...)
		b = appendString(b, data)
	}
	b = append(b, "}\n"...)
	w.buf = b
	return w.write(b)
}

func (w *Writer) write(b []byte) error {
	n, err := w.bw.Write(b)
	w.size += int64(n)
	if err != nil {
		return fmt.Errorf("capture: write: %w", err)
	}
	return nil
}

func (w *Writer) flush() error {
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("capture: write: %w", err)
	}
	if w.zw != nil {
		if err := w.zw.Flush(); err != nil {
			return fmt.Errorf("capture: write: %w", err)
		}
	}
	return nil
}

func (w *Writer) closeFile() error {
	if w.f == nil {
		return nil
	}
	err := w.bw.Flush()
	if w.zw != nil {
		err = errors.Join(err, w.zw.Close())
		w.zw = nil
	}
	err = errors.Join(err, w.f.Close())
	w.f, w.bw = nil, nil
	if err != nil {
		return fmt.Errorf("capture: close: %w", err)
	}
	return nil
}

// formatTS writes t as Unix seconds with microseconds, the precision cryptofeed
// records.
func formatTS(t time.Time) string {
	us := t.UnixMicro()
	s := strconv.FormatInt(us/1e6, 10)
	frac := strconv.FormatInt(us%1e6+1e6, 10)[1:]
	return s + "." + frac
}

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD: capture
// lines are text.
func appendString[T string | []byte](b []byte, s T) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c >= 0x20:
				b = append(b, c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+4, len(s))]))
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
