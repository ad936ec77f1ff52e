package obs

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/internal/embedded"
	"github.com/tickstash/tickstash/internal/redisconn"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/internal/testenv"
)

// gather scrapes reg and returns each sample's value by name{labels}.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key := mf.GetName()
			if len(labels) > 0 {
				sort.Strings(labels)
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

func TestRedisCollector(t *testing.T) {
	rdb := redistest.Client(t)
	reg := prometheus.NewRegistry()
	if err := RegisterRedis(reg, rdb); err != nil {
		t.Fatal(err)
	}
	if err := RegisterRedis(reg, rdb); err == nil {
		t.Error("registering twice on one registry: no error")
	}
	if problems, err := testutil.CollectAndLint(NewRedisCollector(rdb)); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	for range 5 {
		if err := rdb.Ping(t.Context()).Err(); err != nil {
			t.Fatal(err)
		}
	}
	m := gather(t, reg)
	if m["tickstash_redis_up"] != 1 {
		t.Errorf("tickstash_redis_up = %v, want 1", m["tickstash_redis_up"])
	}
	if m["tickstash_redis_pool_connections"] < 1 || m["tickstash_redis_pool_idle_connections"] < 1 {
		t.Errorf("pool connections %v idle %v, want ≥ 1 each after use", m["tickstash_redis_pool_connections"], m["tickstash_redis_pool_idle_connections"])
	}
	if m["tickstash_redis_pool_hits_total"]+m["tickstash_redis_pool_misses_total"] < 6 {
		t.Errorf("pool hits %v + misses %v < 6 after 6 commands", m["tickstash_redis_pool_hits_total"], m["tickstash_redis_pool_misses_total"])
	}
	if d := m["tickstash_redis_ping_duration_seconds"]; d <= 0 || d >= 1 {
		t.Errorf("ping duration %v, want in (0, 1)", d)
	}
	// Counters only grow between scrapes.
	hits := m["tickstash_redis_pool_hits_total"]
	if m2 := gather(t, reg); m2["tickstash_redis_pool_hits_total"] <= hits {
		t.Errorf("hits %v then %v: the scrape's own PING was not counted", hits, m2["tickstash_redis_pool_hits_total"])
	}
}

// TestRedisCollectorOutage stops Redis under a client: up must drop to 0 without
// failing the scrape, and come back when Redis does.
func TestRedisCollectorOutage(t *testing.T) {
	srv := redistest.StartServer(t)
	rdb, err := redisconn.Open(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	reg := prometheus.NewRegistry()
	c := NewRedisCollector(rdb)
	c.timeout = 300 * time.Millisecond
	reg.MustRegister(c)
	if m := gather(t, reg); m["tickstash_redis_up"] != 1 {
		t.Fatalf("tickstash_redis_up = %v before the outage", m["tickstash_redis_up"])
	}
	srv.Stop()
	m := gather(t, reg)
	if m["tickstash_redis_up"] != 0 {
		t.Errorf("tickstash_redis_up = %v with Redis stopped, want 0", m["tickstash_redis_up"])
	}
	if _, ok := m["tickstash_redis_pool_connections"]; !ok {
		t.Error("pool gauges missing while Redis is down")
	}
	srv.Start()
	testenv.WaitFor(t, "tickstash_redis_up back to 1", func() bool { return gather(t, reg)["tickstash_redis_up"] == 1 })
}

// fakePool is a client whose pool reports fixed figures.
type fakePool struct {
	redis.UniversalClient
	stats redis.PoolStats
}

func (f fakePool) PoolStats() *redis.PoolStats { return &f.stats }

func TestRedisCollectorValues(t *testing.T) {
	rdb := redistest.Client(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(&RedisCollector{timeout: time.Second, rdb: fakePool{UniversalClient: rdb, stats: redis.PoolStats{
		Hits: 1, Misses: 2, Timeouts: 3, WaitCount: 4, Unusable: 5, WaitDurationNs: int64(1500 * time.Millisecond),
		TotalConns: 7, IdleConns: 6, StaleConns: 8, PendingRequests: 9,
	}}})
	m := gather(t, reg)
	want := map[string]float64{
		"tickstash_redis_pool_hits_total": 1, "tickstash_redis_pool_misses_total": 2,
		"tickstash_redis_pool_timeouts_total": 3, "tickstash_redis_pool_waits_total": 4,
		"tickstash_redis_pool_unusable_connections_total": 5, "tickstash_redis_pool_wait_seconds_total": 1.5,
		"tickstash_redis_pool_connections": 7, "tickstash_redis_pool_idle_connections": 6,
		"tickstash_redis_pool_stale_connections_total": 8, "tickstash_redis_pool_pending_requests": 9,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
}

func TestNATSCollector(t *testing.T) {
	nc, err := nats.Connect(testenv.NATSURL())
	if err != nil {
		t.Fatalf("NATS at %s: %v", testenv.NATSURL(), err)
	}
	defer nc.Close()
	reg := prometheus.NewRegistry()
	if err := RegisterNATS(reg, nc); err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.CollectAndLint(NewNATSCollector(nc)); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	subject := nats.NewInbox()
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := nc.Publish(subject, []byte("0123456789")); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if _, err := sub.NextMsg(5 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	m := gather(t, reg)
	want := map[string]float64{
		"tickstash_nats_connected":                     1,
		`tickstash_nats_status{status="connected"}`:    1,
		`tickstash_nats_status{status="closed"}`:       0,
		"tickstash_nats_out_messages_total":            3,
		"tickstash_nats_in_messages_total":             3,
		"tickstash_nats_out_bytes_total":               30,
		"tickstash_nats_in_bytes_total":                30,
		"tickstash_nats_reconnects_total":              0,
		`tickstash_nats_status{status="reconnecting"}`: 0,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	nc.Close()
	m = gather(t, reg)
	if m["tickstash_nats_connected"] != 0 || m[`tickstash_nats_status{status="closed"}`] != 1 || m[`tickstash_nats_status{status="connected"}`] != 0 {
		t.Errorf("after Close: connected %v, closed %v, connected-state %v", m["tickstash_nats_connected"],
			m[`tickstash_nats_status{status="closed"}`], m[`tickstash_nats_status{status="connected"}`])
	}
}

// TestNATSCollectorReconnect stops the server under a connection and starts it again on
// the same port: the state must go through reconnecting and the reconnect be counted.
func TestNATSCollectorReconnect(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	start := func() *embedded.NATS {
		srv, err := embedded.StartNATS(embedded.NATSConfig{Port: port, StoreDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return srv
	}
	srv := start()
	nc, err := nats.Connect(srv.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewNATSCollector(nc))

	srv.Close()
	testenv.WaitFor(t, "state reconnecting", func() bool {
		m := gather(t, reg)
		return m["tickstash_nats_connected"] == 0 && m[`tickstash_nats_status{status="reconnecting"}`] == 1
	})
	srv = start()
	defer srv.Close()
	testenv.WaitFor(t, "connected again, one reconnect counted", func() bool {
		m := gather(t, reg)
		return m["tickstash_nats_connected"] == 1 && m["tickstash_nats_reconnects_total"] == 1
	})
}
