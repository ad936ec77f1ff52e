package capture

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/tickstash/tickstash/ingest/wsfeed/wire"
)

// Record types.
const (
	TypeHeader  = "header"
	TypeConnect = "connect"
	TypeSend    = "send"
	TypeRecv    = "recv"
)

// ErrFormat is wrapped by errors about malformed capture lines.
var ErrFormat = errors.New("capture: bad format")

// maxLine bounds one capture line (a full order book snapshot fits easily).
const maxLine = 64 << 20

// Header is a capture's first line.
type Header struct {
	Format   int
	Exchange string // as written, e.g. "BINANCE_US"
	// Recorded is when recording started; zero if the header does not say.
	Recorded time.Time
	// Raw is the whole header line, for fields this package does not interpret.
	Raw []byte
}

// Record is one connect, send or recv line.
type Record struct {
	Type string // TypeConnect, TypeSend or TypeRecv
	Conn string // connection name, e.g. "BINANCE.ws.1"
	Time time.Time
	Addr string // the connection's URL; may be empty on recv lines
	// Data is the message text (send and recv). It is valid until the next call to
	// Next.
	Data []byte
}

// Reader reads a capture. It is not safe for concurrent use.
type Reader struct {
	br     *bufio.Reader
	count  *countingReader
	closer func() error
	header Header
	line   []byte
	sc     wire.Scanner
	data   []byte
	lineNo int
	// Conn and Addr strings are reused while they repeat, to spare an allocation per
	// line.
	conn, addr string
	http       bool // return http records (SetHTTP)
}

// Open opens a capture file; names ending in ".zst" are decompressed. It reads the
// header and returns an error wrapping ErrFormat if there is none.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	cr := &countingReader{r: f}
	var src io.Reader = cr
	closer := f.Close
	if strings.HasSuffix(path, ".zst") {
		zr, err := zstd.NewReader(cr, zstd.WithDecoderConcurrency(1))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("capture: %s: %w", path, err)
		}
		src = zr
		closer = func() error { zr.Close(); return f.Close() }
	}
	r, err := newReader(src, cr)
	if err != nil {
		closer()
		return nil, fmt.Errorf("capture: %s: %w", path, err)
	}
	r.closer = closer
	return r, nil
}

// NewReader reads a capture from r, starting with its header.
func NewReader(r io.Reader) (*Reader, error) {
	cr := &countingReader{r: r}
	return newReader(cr, cr)
}

func newReader(src io.Reader, count *countingReader) (*Reader, error) {
	r := &Reader{br: bufio.NewReaderSize(src, 256<<10), count: count}
	line, err := r.readLine()
	if err == io.EOF {
		return nil, fmt.Errorf("%w: empty capture", ErrFormat)
	}
	if err != nil {
		return nil, err
	}
	if err := r.parseHeader(line); err != nil {
		return nil, err
	}
	return r, nil
}

// Header returns the capture's header.
func (r *Reader) Header() Header { return r.header }

// BytesRead returns how many bytes of the underlying file (compressed, for .zst) have
// been consumed, for progress reports against the file size.
func (r *Reader) BytesRead() int64 { return r.count.n }

// Close closes the file opened by Open. It does nothing for a NewReader.
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	err := r.closer()
	r.closer = nil
	return err
}

// Next returns the next connect, send or recv record, skipping blank lines and record
// types it does not know. It returns io.EOF at the end and an error wrapping ErrFormat
// for a malformed line.
func (r *Reader) Next() (Record, error) {
	for {
		line, err := r.readLine()
		if err != nil {
			return Record{}, err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		rec, known, err := r.parse(line)
		if err != nil {
			return Record{}, fmt.Errorf("%w: line %d: %v", ErrFormat, r.lineNo, err)
		}
		if known {
			return rec, nil
		}
	}
}

func (r *Reader) readLine() ([]byte, error) {
	r.line = r.line[:0]
	for {
		chunk, err := r.br.ReadSlice('\n')
		r.line = append(r.line, chunk...)
		if len(r.line) > maxLine {
			return nil, fmt.Errorf("%w: line %d longer than %d bytes", ErrFormat, r.lineNo+1, maxLine)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && len(r.line) > 0 {
			break
		}
		if err != nil {
			if err == io.EOF {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("capture: read: %w", err)
		}
		break
	}
	r.lineNo++
	return r.line, nil
}

func (r *Reader) parseHeader(line []byte) error {
	sc := &r.sc
	sc.Reset(line)
	sc.Object()
	var typ string
	h := Header{Raw: append([]byte(nil), bytes.TrimSpace(line)...)}
	for key, ok := sc.Key(); ok; key, ok = sc.Key() {
		switch string(key) {
		case "t":
			typ = string(sc.Str())
		case "format":
			h.Format = int(sc.Int())
		case "exchange":
			h.Exchange = string(sc.Str())
		case "recorded":
			if sc.Peek() == 'n' {
				sc.Skip()
				continue
			}
			h.Recorded, _ = parseTS(sc.Number())
		default:
			sc.Skip()
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	if typ != TypeHeader {
		return fmt.Errorf("%w: first line is not a header", ErrFormat)
	}
	r.header = h
	return nil
}

func (r *Reader) parse(line []byte) (Record, bool, error) {
	sc := &r.sc
	sc.Reset(line)
	if !sc.Object() {
		return Record{}, false, sc.Err()
	}
	var rec Record
	var typ, conn, addr, ts []byte
	for key, ok := sc.Key(); ok; key, ok = sc.Key() {
		switch string(key) {
		case "t":
			typ = sc.Str()
		case "conn":
			conn = sc.Str()
		case "addr", "url":
			addr = sc.Str()
		case "ts":
			ts = sc.Number()
		case "data":
			// Copied: the line buffer is reused and scratch is reset with the scanner.
			r.data = append(r.data[:0], sc.Str()...)
			rec.Data = r.data
		default:
			sc.Skip()
		}
	}
	sc.End()
	if err := sc.Err(); err != nil {
		return Record{}, false, err
	}
	switch string(typ) {
	case TypeConnect, TypeSend, TypeRecv:
		rec.Type = string(typ) // constant strings: no allocation for these
	case TypeHTTP:
		if !r.http {
			return Record{}, false, nil
		}
		rec.Type = TypeHTTP
	default:
		return Record{}, false, nil
	}
	if string(conn) != r.conn {
		r.conn = string(conn)
	}
	rec.Conn = r.conn
	if len(addr) > 0 && string(addr) != r.addr {
		r.addr = string(addr)
	}
	if len(addr) > 0 {
		rec.Addr = r.addr
	}
	var err error
	if rec.Time, err = parseTS(ts); err != nil {
		return Record{}, false, err
	}
	if rec.Type == TypeConnect && rec.Addr == "" {
		return Record{}, false, errors.New("connect without addr")
	}
	return rec, true, nil
}

// parseTS reads Unix seconds with a fraction, exactly when written plainly.
func parseTS(b []byte) (time.Time, error) {
	if t, err := wire.UnixFrac(b); err == nil {
		return t, nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f < 0 || f > 1e11 {
		return time.Time{}, fmt.Errorf("bad ts %.32q", b)
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
