// Command tickstash is the one binary of tickstash: every role (ingest, analyze,
// signals, gateway, and run for all of them at once), the embedded Redis and NATS that
// let it run on a fresh machine, the operator commands (replay, jobs, token, flags,
// leaderboard, ...) and the offline tools (candles, indicators, bench). Run
// `tickstash help` for the commands; the benchmarks are
// cmd/tickstash-bench.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// A second Ctrl-C exits at once, as an impatient operator expects.
		<-ctx.Done()
		stop()
		again := make(chan os.Signal, 1)
		signal.Notify(again, os.Interrupt, syscall.SIGTERM)
		<-again
		fmt.Fprintln(os.Stderr, "tickstash: second signal, exiting now")
		os.Exit(130)
	}()
	os.Exit(Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
