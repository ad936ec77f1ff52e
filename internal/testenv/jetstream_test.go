package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestSweepDeletesOnlyOldStreamsOfTheGivenPrefixes creates three streams: two of a
// test prefix, one of another name. A sweep with a cutoff before their creation deletes
// nothing; one with a cutoff after it deletes the two and keeps the third.
func TestSweepDeletesOnlyOldStreamsOfTheGivenPrefixes(t *testing.T) {
	t.Setenv(RedisEnv, os.Getenv(RedisEnv)) // Start exports the URLs; restored after the test
	t.Setenv(NATSEnv, os.Getenv(NATSEnv))
	servers, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer servers.Close()
	nc, err := nats.Connect(NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	prefix := StreamPrefix + "SWEEP" + id + "_"
	names := []string{prefix + "A", prefix + "B", "KEEP" + id}
	DeleteStreams(t, names...)
	ctx := context.Background()
	for i, n := range names {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: n, Subjects: []string{"ttsweep." + id + "." + string(rune('a'+i))},
			Storage: jetstream.MemoryStorage, MaxBytes: StreamMaxBytes}); err != nil {
			t.Fatalf("create %s: %v", n, err)
		}
	}
	prefixes := []string{prefix, "KEEP" + id + "X"}
	deleted, err := sweepStaleStreams(NATSURL(), prefixes, time.Now().Add(-time.Hour))
	if err != nil || len(deleted) != 0 {
		t.Fatalf("sweep with a cutoff an hour ago: deleted %v, %v; want nothing", deleted, err)
	}
	deleted, err = sweepStaleStreams(NATSURL(), prefixes, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(deleted)
	if !slices.Equal(deleted, names[:2]) {
		t.Fatalf("deleted %v, want %v", deleted, names[:2])
	}
	for i, n := range names {
		_, err := js.Stream(ctx, n)
		if exists := err == nil; exists != (i == 2) {
			t.Errorf("stream %s exists=%v after the sweep (err %v)", n, exists, err)
		}
	}
}
