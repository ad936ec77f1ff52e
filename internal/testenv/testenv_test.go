package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/internal/embedded"
)

// childEnv makes the test binary act as one of the children below instead of running
// the tests; childRedis and childNATS replace the default URLs there.
const (
	childEnv   = "TESTENV_TEST_CHILD"
	childRedis = "TESTENV_TEST_DEFAULT_REDIS"
	childNATS  = "TESTENV_TEST_DEFAULT_NATS"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		defaults.redis, defaults.nats = os.Getenv(childRedis), os.Getenv(childNATS)
		switch mode {
		case "main": // what a package's TestMain does
			Main(m)
		case "hold": // start the servers, say where Redis is, wait to be killed
			s, err := Start()
			if err != nil {
				fmt.Println("ERROR", err)
				os.Exit(1)
			}
			fmt.Println("REDIS", s.RedisURL)
			select {}
		case "nomain": // a test binary that skipped Main
			fmt.Println(RedisURL())
			os.Exit(0)
		}
		os.Exit(3)
	}
	os.Exit(m.Run())
}

// unreachable returns a URL on a loopback port nothing listens on.
func unreachable(t *testing.T, scheme string) string {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return scheme + "://127.0.0.1:" + port
}

// setDefaults points the default URLs elsewhere for one test, and unsets the variables
// (restored when t ends, as is whatever Start exports).
func setDefaults(t *testing.T, redisURL, natsURL string) {
	t.Helper()
	old := defaults
	defaults.redis, defaults.nats = redisURL, natsURL
	t.Cleanup(func() { defaults = old })
	t.Setenv(RedisEnv, "")
	t.Setenv(NATSEnv, "")
}

func TestStartsItsOwnServersWhenTheDefaultsDoNotAnswer(t *testing.T) {
	setDefaults(t, unreachable(t, "redis")+"/0", unreachable(t, "nats"))
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.RedisURL == defaults.redis || s.NATSURL == defaults.nats || len(s.Started) != 2 {
		t.Fatalf("Start kept the unreachable defaults: %+v", s)
	}
	if os.Getenv(RedisEnv) != s.RedisURL || os.Getenv(NATSEnv) != s.NATSURL {
		t.Fatalf("exported %s=%q %s=%q, want %s and %s", RedisEnv, os.Getenv(RedisEnv), NATSEnv, os.Getenv(NATSEnv), s.RedisURL, s.NATSURL)
	}
	if RedisURL() != s.RedisURL || NATSURL() != s.NATSURL {
		t.Fatalf("RedisURL() %q, NATSURL() %q", RedisURL(), NATSURL())
	}

	ctx := context.Background()
	opt, err := redis.ParseURL(s.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.Set(ctx, "k", "v", time.Minute).Err(); err != nil {
		t.Fatalf("SET on the started Redis: %v", err)
	}
	if info := rdb.Info(ctx, "server").Val(); !strings.Contains(info, "redis_version:") {
		t.Fatalf("INFO server: %q", info)
	}

	nc, err := nats.Connect(s.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatalf("JetStream on the started NATS: %v", err)
	}
	if _, err := js.Publish(ctx, "t.x", []byte("hi")); err != nil {
		t.Fatal(err)
	}

	dir := s.dir
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the servers' directory: %v", err)
	}
	s.Close()
	if answers(s.RedisURL) {
		t.Errorf("Redis at %s still answers after Close", s.RedisURL)
	}
	if answers(s.NATSURL) {
		t.Errorf("NATS at %s still answers after Close", s.NATSURL)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left behind after Close: %v", dir, err)
	}
}

func TestUsesTheDefaultsWhenTheyAnswer(t *testing.T) {
	p, addr, err := StartRedisServer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	n, err := embedded.StartNATS(embedded.NATSConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	setDefaults(t, "redis://"+addr+"/0", n.URL())
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	if s.RedisURL != defaults.redis || s.NATSURL != defaults.nats || len(s.Started) != 0 {
		t.Fatalf("Start did not use the answering defaults %s, %s: %+v", defaults.redis, defaults.nats, s)
	}
	s.Close()
	if !answers(s.RedisURL) || !answers(s.NATSURL) {
		t.Fatal("Close stopped servers Start did not start")
	}
}

func TestTheVariablesWin(t *testing.T) {
	setDefaults(t, unreachable(t, "redis")+"/0", unreachable(t, "nats"))
	t.Setenv(RedisEnv, "redis://127.0.0.1:1?addr=127.0.0.1:2")
	t.Setenv(NATSEnv, "nats://127.0.0.1:3")
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.RedisURL != "redis://127.0.0.1:1?addr=127.0.0.1:2" || s.NATSURL != "nats://127.0.0.1:3" || len(s.Started) != 0 {
		t.Fatalf("Start did not take the variables: %+v", s)
	}
}

// child runs the test binary as the named child, with the default URLs unreachable,
// the variables unset and PATH as given.
func child(t *testing.T, mode, path string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, RedisEnv+"=") && !strings.HasPrefix(kv, NATSEnv+"=") && !strings.HasPrefix(kv, "PATH=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, childEnv+"="+mode, childRedis+"="+unreachable(t, "redis")+"/0",
		childNATS+"="+unreachable(t, "nats"), "PATH="+path)
	return cmd
}

func TestMissingRedisServerIsOneLineSayingWhatToInstall(t *testing.T) {
	cmd := child(t, "main", t.TempDir()) // an empty PATH: no redis-server
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1; stderr:\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("stderr has %d lines, want one:\n%s", len(lines), stderr.String())
	}
	for _, want := range []string{"redis-server is not on PATH", "apt-get install redis-server", "brew install redis", RedisEnv} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("the line lacks %q: %s", want, lines[0])
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout: %s", stdout.String())
	}
}

func TestWithoutMainTheURLSaysHowToFixIt(t *testing.T) {
	cmd := child(t, "nomain", os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("RedisURL() without Main and %s returned: %s", RedisEnv, out)
	}
	if !strings.Contains(string(out), "func TestMain(m *testing.M) { testenv.Main(m) }") {
		t.Fatalf("the panic does not say how to fix it:\n%s", out)
	}
}

// fakeTB records a Fatalf and ends the goroutine, as testing.T does.
type fakeTB struct {
	testing.TB
	mu    sync.Mutex
	fatal string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func TestWaitFor(t *testing.T) {
	calls := 0
	WaitFor(t, "the third call", func() bool { calls++; return calls == 3 })
	if calls != 3 {
		t.Fatalf("cond called %d times, want 3", calls)
	}

	old := waitTimeout
	waitTimeout = 50 * time.Millisecond
	defer func() { waitTimeout = old }()
	tb := &fakeTB{}
	done := make(chan struct{})
	returned := false
	go func() {
		defer close(done)
		WaitFor(tb, "never", func() bool { return false })
		returned = true
	}()
	<-done
	if returned || !strings.Contains(tb.fatal, "never") {
		t.Fatalf("WaitFor on a condition that never holds: returned %v, fatal %q", returned, tb.fatal)
	}
}

func TestPollStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := Poll(ctx, func() bool {
		if n++; n == 2 {
			cancel()
		}
		return false
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Poll = %v, want context.Canceled", err)
	}
}

func TestWaitRedisGivesUpOnADeadServer(t *testing.T) {
	addr := strings.TrimPrefix(unreachable(t, "redis"), "redis://")
	exited := make(chan struct{})
	close(exited)
	if err := WaitRedis(addr, exited, time.Minute); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("WaitRedis on a server that exited = %v", err)
	}
	if err := WaitRedis(addr, make(chan struct{}), 100*time.Millisecond); err == nil || !strings.Contains(err.Error(), "no answer") {
		t.Fatalf("WaitRedis on nothing = %v", err)
	}
}
