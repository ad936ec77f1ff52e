package redistest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
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
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan struct{}
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
				tb.Logf("redistest: redis-server %s output:\n%s", n.addr, lastLines(n.output(), 20))
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
		n := &clusterNode{addr: addrs[i], done: make(chan struct{})}
		n.cmd = exec.Command("redis-server",
			"--port", strconv.Itoa(port),
			"--bind", "127.0.0.1",
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(nodeDir, "nodes.conf"),
			"--dir", nodeDir,
			"--save", "",
			"--appendonly", "no",
			"--daemonize", "no",
		)
		n.cmd.Stdout, n.cmd.Stderr = &lockedWriter{b: &n.out}, &lockedWriter{b: &n.out}
		if err := n.cmd.Start(); err != nil {
			return nil, fmt.Errorf("cluster: start redis-server on %s: %w", addrs[i], err)
		}
		go func() { _ = n.cmd.Wait(); close(n.done) }()
		c.nodes = append(c.nodes, n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, addr := range addrs {
		if err := waitFor(ctx, addr, func(c *redis.Client) bool { return c.Ping(ctx).Err() == nil }); err != nil {
			return nil, err
		}
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cluster: redis-cli --cluster create: %w\n%s", err, out)
	}
	for _, addr := range addrs {
		if err := waitFor(ctx, addr, func(c *redis.Client) bool {
			info, err := c.ClusterInfo(ctx).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		}); err != nil {
			return nil, err
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
		_ = n.cmd.Process.Kill()
		<-n.done
	}
	c.nodes = nil
}

func (n *clusterNode) output() string {
	w := n.cmd.Stdout.(*lockedWriter)
	w.mu.Lock()
	defer w.mu.Unlock()
	return n.out.String()
}

// lockedWriter serializes the writes of a process's stdout and stderr.
type lockedWriter struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
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

// waitFor polls the node at addr until ok returns true or ctx ends.
func waitFor(ctx context.Context, addr string, ok func(*redis.Client) bool) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer func() { _ = c.Close() }()
	for !ok(c) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: node %s not ready: %w", addr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
