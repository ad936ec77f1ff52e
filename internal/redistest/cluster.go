package redistest

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// StartCluster starts a 3-master Redis Cluster (no replicas, no persistence) from the
// redis-server and redis-cli on PATH, on free loopback ports, with its files in
// tb.TempDir(). It returns a URL for redisconn.Open, such as
// "redis://127.0.0.1:P1?addr=127.0.0.1:P2&addr=127.0.0.1:P3", once every node reports
// cluster_state:ok, and stops the servers when tb ends. It fails tb if the binaries are
// missing or the cluster is not ready within 20 seconds.
func StartCluster(tb testing.TB) string {
	tb.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			tb.Fatalf("redistest: cluster: %v", err)
		}
	}
	dir := tb.TempDir()
	ports := clusterPorts(tb, 3)
	addrs := make([]string, len(ports))
	for i, port := range ports {
		addrs[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		nodeDir := filepath.Join(dir, strconv.Itoa(port))
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
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := os.MkdirAll(nodeDir, 0o755); err != nil {
			tb.Fatalf("redistest: cluster: %v", err)
		}
		if err := cmd.Start(); err != nil {
			tb.Fatalf("redistest: cluster: start redis-server on %s: %v", addrs[i], err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		tb.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-done
			if tb.Failed() {
				tb.Logf("redistest: redis-server %s output:\n%s", addrs[i], lastLines(out.String(), 20))
			}
		})
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, addr := range addrs {
		waitFor(ctx, tb, addr, func(c *redis.Client) bool { return c.Ping(ctx).Err() == nil })
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		tb.Fatalf("redistest: cluster: redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, addr := range addrs {
		waitFor(ctx, tb, addr, func(c *redis.Client) bool {
			info, err := c.ClusterInfo(ctx).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
	}
	q := make([]string, 0, len(addrs)-1)
	for _, a := range addrs[1:] {
		q = append(q, "addr="+a)
	}
	return "redis://" + addrs[0] + "?" + strings.Join(q, "&")
}

// clusterPorts returns n free loopback ports whose cluster bus ports (port+10000) are
// free too. Another process may still take one before redis-server binds it; the
// window is small and the test then fails loudly.
func clusterPorts(tb testing.TB, n int) []int {
	tb.Helper()
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
			tb.Fatalf("redistest: cluster: %v", err)
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
		tb.Fatalf("redistest: cluster: found only %d free port pairs", len(ports))
	}
	return ports
}

// waitFor polls the node at addr until ok returns true, failing tb when ctx ends.
func waitFor(ctx context.Context, tb testing.TB, addr string, ok func(*redis.Client) bool) {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer func() { _ = c.Close() }()
	for !ok(c) {
		select {
		case <-ctx.Done():
			tb.Fatalf("redistest: cluster: node %s not ready: %v", addr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
