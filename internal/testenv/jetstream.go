package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Test streams on a shared NATS server. JetStream reserves a file stream's MaxBytes
// against the server's store limit (by default 75% of the disk that was free when the
// server started), so streams that tests leave behind, or create at production sizes,
// end in "insufficient storage resources available" for every later stream: a CI run
// once failed that way. Tests therefore name their streams with StreamPrefix, bound them
// with StreamMaxBytes and delete them with DeleteStreams; Main sweeps what killed test
// processes left behind.
const (
	// StreamPrefix begins the name of every stream a test creates on a shared server.
	StreamPrefix = "TT_"
	// StreamMaxBytes bounds a test stream (8 MiB): enough for any test, small beside
	// any server's store.
	StreamMaxBytes = 8 << 20
	// staleStreamAge is how old a test stream must be before Main deletes it: older than
	// any test binary runs, so a stream of a binary running beside this one is kept.
	staleStreamAge = 30 * time.Minute
)

// staleStreamPrefixes name the streams Main may sweep: tests' and `tickstash bench`'s.
var staleStreamPrefixes = []string{StreamPrefix, "TSBENCH_"}

// DeleteStreams deletes the named JetStream streams from the test NATS server when tb
// ends, over a connection of its own (so it works whatever the test closed first). A
// stream that does not exist is no error.
func DeleteStreams(tb testing.TB, names ...string) {
	tb.Helper()
	url := NATSURL()
	tb.Cleanup(func() {
		nc, err := nats.Connect(url, nats.Name("testenv cleanup"))
		if err != nil {
			tb.Logf("testenv: delete streams %v: %v", names, err)
			return
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, n := range names {
			if err := js.DeleteStream(ctx, n); err != nil && !isNotFound(err) {
				tb.Logf("testenv: delete stream %s: %v", n, err)
			}
		}
	})
}

func isNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrStreamNotFound)
}

// sweepStaleStreams deletes the streams on the NATS at url whose names begin with one of
// prefixes and that were created before cutoff, and returns their names. Streams of
// other names are never touched.
func sweepStaleStreams(url string, prefixes []string, cutoff time.Time) ([]string, error) {
	nc, err := nats.Connect(url, nats.Name("testenv sweep"), nats.Timeout(2*time.Second))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stale []string
	list := js.ListStreams(ctx)
	for info := range list.Info() {
		if hasAnyPrefix(info.Config.Name, prefixes) && info.Created.Before(cutoff) {
			stale = append(stale, info.Config.Name)
		}
	}
	if err := list.Err(); err != nil {
		return nil, fmt.Errorf("list streams: %w", err)
	}
	var deleted []string
	for _, name := range stale {
		if err := js.DeleteStream(ctx, name); err != nil && !isNotFound(err) {
			return deleted, fmt.Errorf("delete stale test stream %s: %w", name, err)
		}
		deleted = append(deleted, name)
	}
	return deleted, nil
}

func hasAnyPrefix(name string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// sweep runs sweepStaleStreams for Start on a server it did not start, and reports on
// stderr what it deleted or why it could not: a sweep that fails fails no test.
func sweep(url string) {
	deleted, err := sweepStaleStreams(url, staleStreamPrefixes, time.Now().Add(-staleStreamAge))
	if len(deleted) > 0 {
		fmt.Fprintf(os.Stderr, "testenv: deleted %d test streams older than %v left on %s: %s\n",
			len(deleted), staleStreamAge, url, strings.Join(deleted, " "))
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: sweeping stale test streams on %s: %v\n", url, err)
	}
}
