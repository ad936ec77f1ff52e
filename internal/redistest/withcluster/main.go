// Command withcluster runs a command against a Redis Cluster of its own: it starts a
// 3-master cluster on free loopback ports, runs the command with TICKSTASH_TEST_REDIS_URL
// set to the cluster's URL, stops the cluster, and exits with the command's status.
//
//	go run ./internal/redistest/withcluster go test -race ./...
//
// This is how CI runs the whole integration suite on Redis Cluster.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/tickstash/tickstash/internal/redistest"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: withcluster COMMAND [ARGS...]")
		os.Exit(2)
	}
	os.Exit(run(os.Args[1], os.Args[2:]))
}

func run(name string, args []string) int {
	dir, err := os.MkdirTemp("", "tickstash-cluster-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "withcluster:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	c, err := redistest.NewCluster(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "withcluster:", err)
		return 1
	}
	defer c.Stop()
	fmt.Fprintf(os.Stderr, "withcluster: Redis Cluster at %s\n", c.URL)
	cmd := exec.Command(name, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "TICKSTASH_TEST_REDIS_URL="+c.URL)
	// Let the command see Ctrl-C; the cluster stops after it.
	signal.Ignore(os.Interrupt, syscall.SIGTERM)
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	default:
		fmt.Fprintln(os.Stderr, "withcluster:", err)
		return 1
	}
}
