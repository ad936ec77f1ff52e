package redistest

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/tickstash/tickstash/internal/testenv"
)

// Server is a redis-server process of a test's own, on a free loopback port, for tests
// that stop and restart Redis. It keeps nothing on disk, and dies with the test binary.
type Server struct {
	tb   testing.TB
	Addr string
	dir  string
	proc *testenv.Process
}

// StartServer starts redis-server (from PATH) on a free port and stops it when tb ends.
func StartServer(tb testing.TB) *Server {
	tb.Helper()
	dir := tb.TempDir()
	p, addr, err := testenv.StartRedisServer(dir)
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	s := &Server{tb: tb, Addr: addr, dir: dir, proc: p}
	tb.Cleanup(s.Stop)
	return s
}

// Start restarts the server on its port and waits until it answers PING.
func (s *Server) Start() {
	s.tb.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	p, err := testenv.StartProcess(exec.Command("redis-server", testenv.RedisServerArgs(port, s.dir)...))
	if err != nil {
		s.tb.Fatalf("redistest: start redis-server on %s: %v", s.Addr, err)
	}
	if err := testenv.WaitRedis(s.Addr, p.Done(), 10*time.Second); err != nil {
		p.Kill()
		s.tb.Fatalf("redistest: redis-server on %s: %v; its output:\n%s", s.Addr, err, p.Output())
	}
	s.proc = p
}

// Stop kills the server (SIGKILL: an outage, not a clean shutdown) and waits for it.
func (s *Server) Stop() {
	if s.proc == nil {
		return
	}
	s.proc.Kill()
	s.proc = nil
}

// URL returns the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Port returns the server's port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// String describes the server for test logs.
func (s *Server) String() string { return fmt.Sprintf("redis-server %s", s.Addr) }
