// Package testenv gives each test binary the Redis and NATS its tests talk to, and the
// one wait helper the tests share.
//
// A package whose tests use Redis or NATS runs them through Main:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// Main picks the servers once per test binary, before any test runs:
//
//   - Redis: TICKSTASH_TEST_REDIS_URL when set (a cluster URL runs the tests on Redis
//     Cluster); else the Redis on 127.0.0.1:6379 when something answers there; else a
//     redis-server of the binary's own (from PATH) on a free port, with its files in a
//     temporary directory.
//   - NATS: TICKSTASH_TEST_NATS_URL when set; else the NATS on 127.0.0.1:4222 when
//     something answers there; else an embedded nats-server with JetStream on a free port.
//
// It exports the chosen URLs in those two variables, so processes the tests start
// inherit them, and stops what it started when the tests end. `go test ./...` runs
// package binaries in parallel; each starts its own servers, so they share nothing.
// On a NATS server it did not start, Main first deletes the test streams (StreamPrefix)
// that killed test processes left behind more than half an hour ago; tests bound their
// streams with StreamMaxBytes and delete them with DeleteStreams.
//
// A redis-server started here dies with the test binary even when the binary is killed
// (Linux: the parent-death signal), so no server outlives a run.
//
// When Redis is needed, nothing answers and redis-server is not installed, Main fails
// at once with one line saying what to install.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tickstash/tickstash/internal/embedded"
)

// The environment variables that name the test servers.
const (
	RedisEnv = "TICKSTASH_TEST_REDIS_URL"
	NATSEnv  = "TICKSTASH_TEST_NATS_URL"
)

// The servers used when the variables are unset and they answer.
const (
	DefaultRedisURL = "redis://127.0.0.1:6379/0"
	DefaultNATSURL  = "nats://127.0.0.1:4222"
)

// defaults are the URLs Main probes; this package's own tests point them elsewhere.
var defaults = struct{ redis, nats string }{DefaultRedisURL, DefaultNATSURL}

// MissingRedisHelp is the line Main prints when it needs a redis-server it cannot find.
const MissingRedisHelp = "tickstash tests need Redis: nothing answers on %s and redis-server is not on PATH; " +
	"install it (Debian/Ubuntu: apt-get install redis-server, macOS: brew install redis) or set " + RedisEnv

// Main runs the tests with the servers described in the package comment and exits with
// their status. Call it from TestMain.
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main without the exit: it returns m.Run's status, or 1 (after printing why to
// stderr) when the servers cannot be had.
func Run(m *testing.M) int {
	s, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	if len(s.Started) > 0 {
		fmt.Fprintf(os.Stderr, "testenv: started %s for this test binary\n", strings.Join(s.Started, " and "))
	}
	return m.Run()
}

// Servers are the test servers of one test binary, as Start chose them.
type Servers struct {
	// RedisURL and NATSURL are what the tests use; Start exports them in RedisEnv and
	// NATSEnv.
	RedisURL, NATSURL string
	// Started lists what Start started itself, for logs: "redis-server 127.0.0.1:P".
	Started []string

	redis *Process
	nats  *embedded.NATS
	dir   string
}

// Start chooses the servers as Main does, starting what is missing, and exports their
// URLs. Call Close when the tests are done. It fails when no Redis answers and
// redis-server cannot be started (the error is then the one line Main prints).
func Start() (_ *Servers, err error) {
	s := &Servers{RedisURL: os.Getenv(RedisEnv), NATSURL: os.Getenv(NATSEnv)}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	newDir := func() (string, error) {
		if s.dir == "" {
			d, err := os.MkdirTemp("", "tickstash-test-")
			if err != nil {
				return "", fmt.Errorf("testenv: %w", err)
			}
			s.dir = d
		}
		return s.dir, nil
	}
	if s.RedisURL == "" {
		s.RedisURL = defaults.redis
		if !answers(defaults.redis) {
			if _, err := exec.LookPath("redis-server"); err != nil {
				return nil, fmt.Errorf(MissingRedisHelp, hostPort(defaults.redis))
			}
			dir, err := newDir()
			if err != nil {
				return nil, err
			}
			p, addr, err := StartRedisServer(filepath.Join(dir, "redis"))
			if err != nil {
				return nil, fmt.Errorf("testenv: nothing answers on %s, and %w", hostPort(defaults.redis), err)
			}
			s.redis, s.RedisURL = p, "redis://"+addr+"/0"
			s.Started = append(s.Started, "redis-server "+addr)
		}
	}
	ownNATS := false
	if s.NATSURL == "" {
		s.NATSURL = defaults.nats
		if !answers(defaults.nats) {
			ownNATS = true
			dir, err := newDir()
			if err != nil {
				return nil, err
			}
			n, err := embedded.StartNATS(embedded.NATSConfig{StoreDir: filepath.Join(dir, "nats")})
			if err != nil {
				return nil, fmt.Errorf("testenv: nothing answers on %s, and %w", hostPort(defaults.nats), err)
			}
			s.nats, s.NATSURL = n, n.URL()
			s.Started = append(s.Started, "nats-server "+n.URL())
		}
	}
	if !ownNATS && answers(s.NATSURL) {
		sweep(s.NATSURL)
	}
	if err := os.Setenv(RedisEnv, s.RedisURL); err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	if err := os.Setenv(NATSEnv, s.NATSURL); err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	return s, nil
}

// Close stops the servers Start started and removes their files. It leaves the
// exported variables as they are.
func (s *Servers) Close() {
	if s.redis != nil {
		s.redis.Kill()
		s.redis = nil
	}
	if s.nats != nil {
		s.nats.Close()
		s.nats = nil
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
		s.dir = ""
	}
}

// errNoMain explains an unset URL: the package's tests did not go through Main.
var errNoMain = errors.New("this package's tests need TestMain to call testenv.Main(m) " +
	"(func TestMain(m *testing.M) { testenv.Main(m) }), or " + RedisEnv + " and " + NATSEnv + " set")

// RedisURL returns the Redis URL the tests use. It panics, saying how to fix it, when
// the test binary did not run Main and RedisEnv is unset.
func RedisURL() string {
	if u := os.Getenv(RedisEnv); u != "" {
		return u
	}
	panic("testenv: no test Redis: " + errNoMain.Error())
}

// NATSURL returns the NATS URL the tests use. It panics, saying how to fix it, when the
// test binary did not run Main and NATSEnv is unset.
func NATSURL() string {
	if u := os.Getenv(NATSEnv); u != "" {
		return u
	}
	panic("testenv: no test NATS: " + errNoMain.Error())
}

// answers reports whether something accepts TCP connections at the URL's host:port.
func answers(rawURL string) bool {
	c, err := net.DialTimeout("tcp", hostPort(rawURL), time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

func hostPort(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	return u.Host
}

// freePort returns a loopback port nothing listened on a moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

// pollInterval is how often Poll and WaitFor look again.
const pollInterval = 10 * time.Millisecond

// Poll calls cond every few milliseconds until it returns true (Poll returns nil) or
// ctx ends (Poll returns ctx's error).
func Poll(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
