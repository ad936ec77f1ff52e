package featureflag

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/internal/redisconn"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/internal/testenv"
)

func newClient(t testing.TB, prefix string, nc *nats.Conn, cfg Config) (*Client, redis.UniversalClient) {
	t.Helper()
	rdb := redistest.Client(t)
	if prefix == "" {
		prefix = redistest.Prefix(t, rdb)
	}
	cfg.Prefix = prefix
	if cfg.Subject == "" {
		cfg.Subject = "ts.flags.changed." + prefix
	}
	return New(rdb, nc, cfg, nil, prometheus.NewRegistry()), rdb
}

func rollout(on float64) []Share {
	return []Share{{Variant: "on", Percent: on}, {Variant: "off", Percent: 100 - on}}
}

func TestRolloutDistributionAndStability(t *testing.T) {
	const users = 200_000
	f := Flag{Key: "new-ui", Enabled: true, Rollout: rollout(10)}
	if err := f.Normalize(); err != nil {
		t.Fatal(err)
	}
	c10 := compile(f)
	f.Rollout = rollout(20)
	c20 := compile(f)
	on10, on20 := 0, 0
	for i := 0; i < users; i++ {
		u := User{ID: fmt.Sprintf("user-%d", i)}
		a, b := c10.eval(u), c20.eval(u)
		if a == "on" {
			on10++
			if b != "on" {
				t.Fatalf("%s is in the 10%% rollout but not in the 20%% one", u.ID)
			}
		}
		if b == "on" {
			on20++
		}
	}
	// Binomial sd at 10% of 200 000 is 0.067%: ±0.3% is more than 4 sd.
	for _, x := range []struct {
		got  int
		want float64
	}{{on10, 0.10}, {on20, 0.20}} {
		if p := float64(x.got) / users; p < x.want-0.003 || p > x.want+0.003 {
			t.Errorf("rollout of %.0f%% served %.3f%% of %d users", x.want*100, p*100, users)
		}
	}
	// Different flags bucket independently: the users in both 10% rollouts are about 1%.
	g := Flag{Key: "other", Enabled: true, Rollout: rollout(10)}
	_ = g.Normalize()
	cg := compile(g)
	both := 0
	for i := 0; i < users; i++ {
		u := User{ID: fmt.Sprintf("user-%d", i)}
		if c10.eval(u) == "on" && cg.eval(u) == "on" {
			both++
		}
	}
	if p := float64(both) / users; p < 0.008 || p > 0.012 {
		t.Errorf("%.3f%% of users in both 10%% rollouts, want about 1%%", p*100)
	}
	// Pinned values: the hash must never change between releases.
	if b := Bucket("new-ui", "user-42"); b != Bucket("new-ui", "user-42") || b < 0 || b >= 10000 {
		t.Fatal(b)
	}
	for _, x := range []struct {
		flag, user string
		want       int
	}{{"new-ui", "user-42", pinned("new-ui:user-42")}, {"", "", pinned(":")}} {
		if got := Bucket(x.flag, x.user); got != x.want {
			t.Errorf("Bucket(%q, %q) = %d, want %d", x.flag, x.user, got, x.want)
		}
	}
}

// pinned is FNV-1a 64 of s modulo 10 000, by the book.
func pinned(s string) int {
	h := uint64(14695981039346656037)
	for _, c := range []byte(s) {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return int(h % 10000)
}

func TestEvaluationOrder(t *testing.T) {
	ctx := context.Background()
	c, _ := newClient(t, "", nil, Config{})
	f := Flag{
		Key: "tier", Enabled: true, Variants: []string{"basic", "pro", "beta"},
		Targets: map[string][]string{"beta": {"vip-1"}},
		Rules: []Rule{
			{Attribute: "plan", Op: "in", Values: []string{"pro", "team"}, Variant: "pro"},
			{Attribute: "email", Op: "suffix", Values: []string{"@tickstash.dev"}, Variant: "beta"},
		},
		Rollout: []Share{{Variant: "basic", Percent: 100}},
	}
	if err := c.Set(ctx, f, "test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		u    User
		want string
	}{
		{User{ID: "vip-1", Attrs: map[string]string{"plan": "pro"}}, "beta"},
		{User{ID: "u2", Attrs: map[string]string{"plan": "team"}}, "pro"},
		{User{ID: "u3", Attrs: map[string]string{"email": "a@tickstash.dev"}}, "beta"},
		{User{ID: "u4"}, "basic"},
	} {
		if got := c.Variant("tier", x.u, "default"); got != x.want {
			t.Errorf("%+v: %s, want %s", x.u, got, x.want)
		}
	}
	f.Enabled = false
	if err := c.Set(ctx, f, "test"); err != nil {
		t.Fatal(err)
	}
	_ = c.Refresh(ctx)
	if got := c.Variant("tier", User{ID: "vip-1"}, "default"); got != "basic" {
		t.Errorf("disabled: %s, want the off variant (the first, basic)", got)
	}
	if c.Variant("nope", User{ID: "x"}, "dflt") != "dflt" || c.Bool("nope", User{}, true) != true || c.Bool("nope", User{}, false) {
		t.Error("an unknown flag must evaluate to the caller's default")
	}
}

func TestMalformedDefinitionsWriteNothing(t *testing.T) {
	ctx := context.Background()
	c, rdb := newClient(t, "", nil, Config{})
	for _, raw := range []string{
		`{"key":"Bad Key","enabled":true}`,
		`{"key":"x","enabled":true,"rollout":[{"variant":"on","percent":10}]}`,
		`{"key":"x","enabled":true,"rollout":[{"variant":"on","percent":10.005},{"variant":"off","percent":89.995}]}`,
		`{"key":"x","enabled":true,"rollout":[{"variant":"maybe","percent":100}]}`,
		`{"key":"x","rules":[{"attribute":"plan","op":"like","values":["a"],"variant":"on"}]}`,
		`{"key":"x","rules":[{"attribute":"plan","op":"eq","values":[],"variant":"on"}]}`,
		`{"key":"x","variants":["a","a"]}`,
		`{"key":"x","targets":{"on":["u"],"off":["u"]}}`,
		`{"key":"x","enabld":true}`,
		`{"key":"x"} {"key":"y"}`,
		`not json`,
	} {
		if _, err := ParseFlag([]byte(raw)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", raw, err)
		}
	}
	if err := c.Set(ctx, Flag{Key: "x", Rollout: rollout(101)}, "t"); !errors.Is(err, ErrInvalid) {
		t.Errorf("set: %v", err)
	}
	if n := rdb.Exists(ctx, c.defs, c.hist).Val(); n != 0 {
		t.Errorf("%d keys written by refused definitions", n)
	}
	if err := c.Delete(ctx, "missing", "t"); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete of a missing flag: %v", err)
	}
}

func TestHistory(t *testing.T) {
	ctx := context.Background()
	c, rdb := newClient(t, "", nil, Config{HistoryLen: 5, MaxFlags: 3,
		Now: func() time.Time { return time.Date(2026, 1, 7, 0, 0, 0, 0, time.UTC) }})
	f := Flag{Key: "a", Enabled: true}
	_ = c.Set(ctx, f, "alice")
	_ = c.Set(ctx, f, "alice") // unchanged: not recorded
	f.Rollout = rollout(25)
	_ = c.Set(ctx, f, "bob")
	_ = c.Set(ctx, Flag{Key: "b"}, "carol")
	_ = c.Delete(ctx, "a", "dave")
	h, err := c.History(ctx, "a", 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ch := range h {
		got = append(got, fmt.Sprintf("%s %s before=%v after=%v", ch.Who, ch.When.Format(time.DateOnly), ch.Before != nil, ch.After != nil))
	}
	want := "dave 2026-01-07 before=true after=false|bob 2026-01-07 before=true after=true|alice 2026-01-07 before=false after=true"
	if strings.Join(got, "|") != want {
		t.Errorf("history:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.ReplaceAll(want, "|", "\n"))
	}
	if h[1].Before.Rollout != nil || len(h[1].After.Rollout) != 2 {
		t.Errorf("bob's change: before %+v after %+v", h[1].Before, h[1].After)
	}
	// Bounds: MaxFlags refuses a 4th flag; the stream is trimmed (MAXLEN ~ trims whole
	// nodes of 100 entries, so allow that much slack).
	_ = c.Set(ctx, Flag{Key: "c"}, "x")
	_ = c.Set(ctx, Flag{Key: "d"}, "x")
	if err := c.Set(ctx, Flag{Key: "e"}, "x"); !errors.Is(err, ErrTooMany) {
		t.Errorf("4th flag: %v", err)
	}
	for i := 0; i < 300; i++ {
		_ = c.Set(ctx, Flag{Key: "c", Enabled: i%2 == 0}, "loop")
	}
	if n := rdb.XLen(ctx, c.hist).Val(); n > 5+100 {
		t.Errorf("history holds %d changes, want about 5", n)
	}
}

// TestPropagationAcrossProcesses starts this test binary again as a second process that
// evaluates a flag from its local copy (resync once an hour, so only the NATS
// notification can tell it), changes the flag here, and waits for the child to see it.
func TestPropagationAcrossProcesses(t *testing.T) {
	if os.Getenv("FLAGS_CHILD_PREFIX") != "" {
		return // the child runs in TestMain
	}
	nc, err := nats.Connect(testenv.NATSURL())
	if err != nil {
		t.Fatalf("NATS at %s: %v", testenv.NATSURL(), err)
	}
	defer nc.Close()
	ctx := context.Background()
	c, _ := newClient(t, "", nc, Config{})
	if err := c.Set(ctx, Flag{Key: "launch", Enabled: false}, "test"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FLAGS_CHILD_PREFIX="+c.cfg.Prefix, "FLAGS_CHILD_SUBJECT="+c.cfg.Subject)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	expect := func(want string) time.Duration {
		start := time.Now()
		select {
		case l := <-lines:
			if l != want {
				t.Fatalf("child said %q, want %q", l, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("child did not say %q within 10s", want)
		}
		return time.Since(start)
	}
	expect("ready off")
	if err := c.Set(ctx, Flag{Key: "launch", Enabled: true}, "test"); err != nil {
		t.Fatal(err)
	}
	took := expect("seen on")
	t.Logf("the second process saw the change after %v", took)
}

func TestMain(m *testing.M) {
	if prefix := os.Getenv("FLAGS_CHILD_PREFIX"); prefix != "" {
		os.Exit(child(prefix, os.Getenv("FLAGS_CHILD_SUBJECT")))
	}
	testenv.Main(m)
}

// child evaluates "launch" from its local copy until it turns on, with no resync.
func child(prefix, subject string) int {
	nc, err := nats.Connect(testenv.NATSURL())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer nc.Close()
	rdb, err := redisconn.Open(redistest.URL()) // a cluster client when the tests run on Redis Cluster
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c := New(rdb, nc, Config{Prefix: prefix, Subject: subject, Resync: time.Hour}, nil, prometheus.NewRegistry())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() { _ = c.Run(ctx) }()
	for !c.Known("launch") {
		time.Sleep(time.Millisecond)
	}
	fmt.Printf("ready %v\n", map[bool]string{true: "on", false: "off"}[c.Bool("launch", User{ID: "u"}, true)])
	for !c.Bool("launch", User{ID: "u"}, false) {
		if ctx.Err() != nil {
			return 1
		}
		time.Sleep(time.Millisecond)
	}
	fmt.Println("seen on")
	return 0
}

type countingHook struct{ n atomic.Int64 }

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(int64(len(cmds))); return next(ctx, cmds) }
}

func BenchmarkEvaluate(b *testing.B) {
	ctx := context.Background()
	c, rdb := newClient(b, "", nil, Config{})
	f := Flag{Key: "new-ui", Enabled: true, Rollout: rollout(10),
		Targets: map[string][]string{"on": {"vip"}},
		Rules:   []Rule{{Attribute: "plan", Op: "eq", Values: []string{"pro"}, Variant: "on"}}}
	if err := c.Set(ctx, f, "bench"); err != nil {
		b.Fatal(err)
	}
	if err := c.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	hook := &countingHook{}
	rdb.AddHook(hook)
	u := User{ID: "user-123456", Attrs: map[string]string{"plan": "free"}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Bool("new-ui", u, false)
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(hook.n.Load()), "redis-calls")
	if hook.n.Load() != 0 {
		b.Fatalf("%d Redis calls during evaluation", hook.n.Load())
	}
}
