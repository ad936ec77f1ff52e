package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/tickstash/tickstash/cmd/tickstash-bench/internal/bench"
)

func main() {
	bench.RunQueueChild() // when started by the queue benchmark as a worker to kill
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
