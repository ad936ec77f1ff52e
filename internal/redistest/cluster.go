package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/internal/testenv"
)

// Cluster is a 3-master Redis Cluster of redis-server processes on free loopback ports.
type Cluster struct {
	// URL is the cluster's URL for redisconn.Open, e.g.
	// "redis://127.0.0.1:P1?addr=127.0.0.1:P2&addr=127.0.0.1:P3".
	URL   string
	nodes []*clusterNode
}

type clusterNode struct {
	addr string
	proc *testenv.Process
}

// StartCluster starts a 3-master Redis Cluster (no replicas, no persistence) from the
// redis-server and redis-cli on PATH, on free loopback ports, with its files in
// tb.TempDir(). It returns a URL for redisconn.Open once every node reports
// cluster_state:ok, and stops the servers when tb ends. It fails tb if the binaries are
// missing or the cluster is not ready within 20 seconds.
func StartCluster(tb testing.TB) string {
	tb.Helper()
	c, err := NewCluster(tb.TempDir())
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			for _, n := range c.nodes {
				tb.Logf("redistest: redis-server %s output:\n%s", n.addr, lastLines(n.proc.Output(), 20))
			}
		}
		c.Stop()
	})
	return c.URL
}

// NewCluster starts a cluster as StartCluster does, with its files under dir, for
// harnesses outside a test (see internal/redistest/withcluster). Call Stop.
func NewCluster(dir string) (*Cluster, error) {
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
	}
	ports, err := clusterPorts(3)
	if err != nil {
		return nil, err
	}
	c := &Cluster{}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	addrs := make([]string, len(ports))
	for i, port := range ports {
		addrs[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		nodeDir := filepath.Join(dir, strconv.Itoa(port))
		if err := os.MkdirAll(nodeDir, 0o755); err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		cmd := exec.Command("redis-server",
			"--port", strconv.Itoa(port),
			"--bind", "127.0.0.1",
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(nodeDir, "nodes.conf"),
			"--dir", nodeDir,
			"--save", "",
			"--appendonly", "no",
			"--daemonize", "no",
		)
		p, err := testenv.StartProcess(cmd) // dies with this process, however it dies
		if err != nil {
			return nil, fmt.Errorf("cluster: start redis-server on %s: %w", addrs[i], err)
		}
		c.nodes = append(c.nodes, &clusterNode{addr: addrs[i], proc: p})
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, n := range c.nodes {
		if err := testenv.WaitRedis(n.addr, n.proc.Done(), 20*time.Second); err != nil {
			return nil, fmt.Errorf("cluster: redis-server on %s: %w", n.addr, err)
		}
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cluster: redis-cli --cluster create: %w\n%s", err, out)
	}
	for _, addr := range addrs {
		rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
		err := testenv.Poll(ctx, func() bool {
			info, err := rdb.ClusterInfo(ctx).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
		_ = rdb.Close()
		if err != nil {
			return nil, fmt.Errorf("cluster: node %s not ready: %w", addr, err)
		}
	}
	q := make([]string, 0, len(addrs)-1)
	for _, a := range addrs[1:] {
		q = append(q, "addr="+a)
	}
	c.URL = "redis://" + addrs[0] + "?" + strings.Join(q, "&")
	ok = true
	return c, nil
}

// Stop kills the nodes and waits for them.
func (c *Cluster) Stop() {
	for _, n := range c.nodes {
		n.proc.Kill()
	}
	c.nodes = nil
}

// clusterPorts returns n free loopback ports whose cluster bus ports (port+10000) are
// free too. Another process may still take one before redis-server binds it; the
// window is small and the start then fails loudly.
func clusterPorts(n int) ([]int, error) {
	var ports []int
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for tries := 0; len(ports) < n && tries < 100; tries++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if port+10000 > 65535 {
			_ = l.Close()
			continue
		}
		bus, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
		if err != nil {
			_ = l.Close()
			continue
		}
		held = append(held, l, bus)
		ports = append(ports, port)
	}
	if len(ports) < n {
		return nil, fmt.Errorf("cluster: found only %d free port pairs", len(ports))
	}
	return ports, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
