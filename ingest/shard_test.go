package ingest_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/internal/redistest"
)

// probe counts, per unit, how many instances run it right now and the most ever seen.
type probe struct {
	mu      sync.Mutex
	active  map[string]int
	maxSeen map[string]int
	by      map[string]map[string]bool // unit → instances running it
}

func newProbe() *probe {
	return &probe{active: map[string]int{}, maxSeen: map[string]int{}, by: map[string]map[string]bool{}}
}

func (p *probe) units(n int, instance string) []ingest.Unit {
	var out []ingest.Unit
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("synthetic:U%02d-USD", i)
		out = append(out, ingest.Unit{Key: key, New: func() (ingest.Source, error) {
			return &probeSource{p: p, unit: key, instance: instance}, nil
		}})
	}
	return out
}

func (p *probe) snapshot() (owners map[string][]string, maxSeen int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	owners = map[string][]string{}
	for u, set := range p.by {
		for in := range set {
			owners[u] = append(owners[u], in)
		}
	}
	for _, m := range p.maxSeen {
		maxSeen = max(maxSeen, m)
	}
	return owners, maxSeen
}

type probeSource struct {
	p              *probe
	unit, instance string
}

func (s *probeSource) Name() string { return s.unit }

func (s *probeSource) Run(ctx context.Context, _ chan<- ingest.Event) error {
	s.p.mu.Lock()
	s.p.active[s.unit]++
	s.p.maxSeen[s.unit] = max(s.p.maxSeen[s.unit], s.p.active[s.unit])
	if s.p.by[s.unit] == nil {
		s.p.by[s.unit] = map[string]bool{}
	}
	s.p.by[s.unit][s.instance] = true
	s.p.mu.Unlock()
	<-ctx.Done()
	s.p.mu.Lock()
	s.p.active[s.unit]--
	delete(s.p.by[s.unit], s.instance)
	s.p.mu.Unlock()
	return nil
}

// TestShardedSpreadsUnitsAndTakesOver runs instances of one shard group against the
// real Redis: every unit runs on exactly one instance, a leaving instance's units move
// to the others within about a lease, a joining one takes a share, and no unit ever runs
// on two instances at once.
func TestShardedSpreadsUnitsAndTakesOver(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	p := newProbe()
	const units = 12
	type inst struct {
		cancel context.CancelFunc
		done   chan struct{}
	}
	startInstance := func(name string) inst {
		s, err := ingest.NewSharded(rdb, p.units(units, name), ingest.ShardConfig{
			Group: "g1", Instance: name, Lease: time.Second, Tick: 100 * time.Millisecond, Prefix: prefix,
		}, quiet(), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = s.Run(ctx, make(chan ingest.Event)) }()
		return inst{cancel, done}
	}
	settled := func(want int) map[string][]string {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			owners, _ := p.snapshot()
			perInstance := map[string]int{}
			ok := len(owners) == units
			for _, ins := range owners {
				ok = ok && len(ins) == 1
				if len(ins) == 1 {
					perInstance[ins[0]]++
				}
			}
			if ok && len(perInstance) == want {
				return owners
			}
			if time.Now().After(deadline) {
				t.Fatalf("not settled on %d instances within 5s: %v", want, owners)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	a, b, c := startInstance("a"), startInstance("b"), startInstance("c")
	settled(3)

	a.cancel() // a leaves cleanly: its units move at once
	<-a.done
	start := time.Now()
	owners := settled(2)
	for u, ins := range owners {
		if ins[0] == "a" {
			t.Errorf("unit %s still on the departed instance", u)
		}
	}
	t.Logf("handover after a clean leave: %v", time.Since(start))

	d := startInstance("d") // a newcomer takes its share
	settled(3)
	for _, x := range []inst{b, c, d} {
		x.cancel()
		<-x.done
	}
	if _, maxSeen := p.snapshot(); maxSeen != 1 {
		t.Errorf("a unit ran on %d instances at once", maxSeen)
	}
	var leases atomic.Int64
	iter := rdb.Scan(context.Background(), 0, prefix+"*", 100).Iterator()
	for iter.Next(context.Background()) {
		leases.Add(1)
	}
	if leases.Load() != 0 {
		t.Errorf("%d shard keys left after every instance stopped", leases.Load())
	}
}

// TestShardedTakesOverFromDeadInstance: an instance that vanishes without releasing
// (its leases stay in Redis) loses its units to the survivors once the leases expire.
func TestShardedTakesOverFromDeadInstance(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	p := newProbe()
	// The "dead" instance holds every lease and a membership, as a killed process leaves them.
	for i := 0; i < 4; i++ {
		rdb.Set(context.Background(), fmt.Sprintf("%s:{shard:g2}:lease:synthetic:U%02d-USD", prefix, i), "dead", 1500*time.Millisecond)
	}
	s, err := ingest.NewSharded(rdb, p.units(4, "alive"), ingest.ShardConfig{
		Group: "g2", Instance: "alive", Lease: 1500 * time.Millisecond, Tick: 100 * time.Millisecond, Prefix: prefix,
	}, quiet(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Run(ctx, make(chan ingest.Event)) }()
	time.Sleep(500 * time.Millisecond)
	if owners, _ := p.snapshot(); len(owners) != 0 {
		t.Fatalf("units started while another instance's leases were live: %v", owners)
	}
	deadline := time.Now().Add(4 * time.Second)
	for {
		if owners, _ := p.snapshot(); len(owners) == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the dead instance's units were not taken over within 4s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestShardConfigErrors(t *testing.T) {
	rdb := redistest.Client(t)
	for _, cfg := range []ingest.ShardConfig{{Group: ""}, {Group: "a b"}, {Group: "g", Lease: time.Second, Tick: time.Second}} {
		if _, err := ingest.NewSharded(rdb, nil, cfg, quiet(), prometheus.NewRegistry()); err == nil {
			t.Errorf("NewSharded(%+v) accepted", cfg)
		}
	}
	dup := []ingest.Unit{{Key: "x"}, {Key: "x"}}
	if _, err := ingest.NewSharded(rdb, dup, ingest.ShardConfig{Group: "g"}, quiet(), prometheus.NewRegistry()); err == nil {
		t.Error("duplicate unit keys accepted")
	}
}

// TestShardedSurvivesScriptFlush: a Redis that forgot the lease script (a restart,
// SCRIPT FLUSH) answers NOSCRIPT; the instance loads it again and keeps its units. An
// embedded Redis of the test's own is flushed, so others sharing the real one are not.
func TestShardedSurvivesScriptFlush(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	p := newProbe()
	s, err := ingest.NewSharded(rdb, p.units(2, "solo"), ingest.ShardConfig{
		Group: "flush", Instance: "solo", Lease: time.Second, Tick: 100 * time.Millisecond,
	}, quiet(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx, make(chan ingest.Event)) }()
	defer func() { cancel(); <-done }()
	running := func() int { owners, _ := p.snapshot(); return len(owners) }
	deadline := time.Now().Add(5 * time.Second)
	for running() != 2 {
		if time.Now().After(deadline) {
			t.Fatal("units did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := rdb.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	// Past the fence (4/5 of the lease) the units would have stopped had renewals failed.
	time.Sleep(1500 * time.Millisecond)
	if n := running(); n != 2 {
		t.Errorf("%d of 2 units still running after SCRIPT FLUSH", n)
	}
	if _, maxSeen := p.snapshot(); maxSeen != 1 {
		t.Errorf("a unit ran twice at once")
	}
}
