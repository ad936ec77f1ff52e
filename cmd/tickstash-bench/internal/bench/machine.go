package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Machine describes where a benchmark ran.
type Machine struct {
	CPU          string
	Cores        int
	GoVersion    string
	RedisVersion string
}

// DescribeMachine reads the CPU model, core count, Go version and the Redis server's
// version.
func DescribeMachine(ctx context.Context, rdb redis.UniversalClient) Machine {
	m := Machine{CPU: "unknown", Cores: runtime.NumCPU(), GoVersion: runtime.Version(), RedisVersion: "unknown"}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if info, err := rdb.Info(ctx, "server").Result(); err == nil {
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
				m.RedisVersion = v
			}
		}
	}
	return m
}

// Markdown returns one line describing the machine.
func (m Machine) Markdown() string {
	return fmt.Sprintf("Machine: %s, %d cores, %s, Redis %s", m.CPU, m.Cores, m.GoVersion, m.RedisVersion)
}
