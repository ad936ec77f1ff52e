package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Process is a child process that does not outlive the test binary: on Linux it gets
// SIGKILL when the binary dies, however it dies.
type Process struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

// StartProcess starts cmd, with its stdout and stderr kept for Output unless cmd sets
// them.
func StartProcess(cmd *exec.Cmd) (*Process, error) {
	p := &Process{cmd: cmd, out: &lockedBuffer{}, done: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = p.out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = p.out
	}
	setParentDeathSignal(cmd)
	started := make(chan error, 1)
	go func() {
		// The parent-death signal fires when the thread that started the child ends, not
		// when the process does: hold this goroutine's thread until the child is gone.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Kill sends SIGKILL and waits for the process to end.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Output returns what the process wrote to its stdout and stderr, when StartProcess
// kept them.
func (p *Process) Output() string { return p.out.String() }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// RedisServerArgs are the arguments of every redis-server the tests start: loopback
// only, nothing saved, files in dir.
func RedisServerArgs(port, dir string) []string {
	return []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--daemonize", "no"}
}

// StartRedisServer starts redis-server (from PATH) on a free loopback port with its
// files in dir (created if missing), and returns once it answers PING. It tries a few
// ports, since another process may take a free port first. Kill the process to stop it.
func StartRedisServer(dir string) (*Process, string, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, "", fmt.Errorf("redis-server: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", fmt.Errorf("redis-server: %w", err)
	}
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, "", err
		}
		addr := "127.0.0.1:" + port
		cmd := exec.Command("redis-server", RedisServerArgs(port, dir)...)
		p, err := StartProcess(cmd)
		if err != nil {
			return nil, "", fmt.Errorf("start redis-server: %w", err)
		}
		if err := WaitRedis(addr, p.Done(), 10*time.Second); err != nil {
			p.Kill()
			lastErr = fmt.Errorf("redis-server on %s: %w; its output:\n%s", addr, err, strings.TrimSpace(p.Output()))
			continue
		}
		return p, addr, nil
	}
	return nil, "", lastErr
}

// WaitRedis waits until the Redis at addr answers PING. It gives up when exited is
// closed (the server died: say a port taken) or after timeout.
func WaitRedis(addr string, exited <-chan struct{}, timeout time.Duration) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var err error
	gone := false
	perr := Poll(ctx, func() bool {
		select {
		case <-exited:
			gone = true
			return true
		default:
		}
		pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer pcancel()
		err = rdb.Ping(pctx).Err()
		return err == nil
	})
	switch {
	case gone:
		return fmt.Errorf("exited before it answered")
	case perr != nil:
		return fmt.Errorf("no answer within %v (%v)", timeout, err)
	}
	return nil
}
