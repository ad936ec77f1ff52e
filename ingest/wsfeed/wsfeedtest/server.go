// Package wsfeedtest is a scripted websocket server for connector tests: each
// connection plays its own script of messages, pings, silences and drops, and the
// server records what clients sent and which URLs they dialled.
package wsfeedtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Step is one action of a script. Exactly one field is set.
type Step struct {
	Send    string        // send a text message
	Ping    bool          // send a websocket ping and wait for the pong
	Pause   time.Duration // wait, sending nothing
	Drop    bool          // close the TCP connection without a close handshake
	Silence bool          // send nothing more and keep the connection open
	// AwaitSubscribe waits until the client has sent this many messages.
	AwaitSubscribe int
}

// Conn is what the server saw on one connection.
type Conn struct {
	URL      string
	Received []string
	PingErr  error
}

// Server plays scripts[i] on the i-th connection; connections beyond the scripts are
// held open silently.
type Server struct {
	URL     string // ws://127.0.0.1:port
	scripts [][]Step
	mu      sync.Mutex
	conns   []*Conn
	srv     *httptest.Server
	tb      testing.TB
}

// NewServer starts a server that plays scripts and closes it when the test ends.
func NewServer(tb testing.TB, scripts ...[]Step) *Server {
	tb.Helper()
	s := &Server{scripts: scripts, tb: tb}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = "ws" + strings.TrimPrefix(s.srv.URL, "http")
	tb.Cleanup(func() {
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
	return s
}

// Conns returns a copy of what each connection saw so far.
func (s *Server) Conns() []Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Conn, len(s.conns))
	for i, c := range s.conns {
		out[i] = *c
		out[i].Received = append([]string(nil), c.Received...)
	}
	return out
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	s.mu.Lock()
	n := len(s.conns)
	info := &Conn{URL: r.URL.String()}
	s.conns = append(s.conns, info)
	var script []Step
	if n < len(s.scripts) {
		script = s.scripts[n]
	}
	s.mu.Unlock()

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// Read what the client sends (subscriptions, pings); reading also lets
	// coder/websocket process the client's pongs and close frames.
	received := make(chan struct{}, 64)
	go func() {
		defer cancel()
		for {
			_, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			s.mu.Lock()
			info.Received = append(info.Received, string(msg))
			s.mu.Unlock()
			select {
			case received <- struct{}{}:
			default:
			}
		}
	}()
	for _, st := range script {
		switch {
		case st.Send != "":
			if err := c.Write(ctx, websocket.MessageText, []byte(st.Send)); err != nil {
				return
			}
		case st.Ping:
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			err := c.Ping(pctx)
			pcancel()
			s.mu.Lock()
			info.PingErr = err
			s.mu.Unlock()
		case st.Pause > 0:
			select {
			case <-time.After(st.Pause):
			case <-ctx.Done():
				return
			}
		case st.AwaitSubscribe > 0:
			for {
				s.mu.Lock()
				got := len(info.Received)
				s.mu.Unlock()
				if got >= st.AwaitSubscribe {
					break
				}
				select {
				case <-received:
				case <-time.After(10 * time.Millisecond):
				case <-ctx.Done():
					return
				}
			}
		case st.Drop:
			return // CloseNow: no close handshake
		case st.Silence:
			<-ctx.Done()
			return
		}
	}
	<-ctx.Done()
}
