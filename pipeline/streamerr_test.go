package pipeline

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tickstash/tickstash/internal/testenv"
)

// TestStreamTooLargeForTheServerSaysWhatToDo creates the analysis stream on a server
// whose JetStream store holds 1 MiB: the error names the stream, the size and the flag to
// lower, instead of JetStream's bare "insufficient storage resources available".
func TestStreamTooLargeForTheServerSaysWhatToDo(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), JetStreamMaxStore: 1 << 20, JetStreamMaxMemory: 1 << 20, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded nats-server did not start")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, memory := range []bool{false, true} {
		s := AnalysisStream{Name: "TOO_BIG", SubjectPrefix: "big", MaxBytes: 8 << 20, Memory: memory}
		_, err = s.Ensure(context.Background(), js)
		if err == nil {
			t.Fatalf("memory=%v: an 8 MiB stream on a 1 MiB store was created", memory)
		}
		for _, want := range []string{"TOO_BIG", "8388608 bytes", "lower --analysis-max-bytes", "insufficient"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("memory=%v: error %q does not say %q", memory, err, want)
			}
		}
	}
	// A stream that fits is created: the advice is only for the size error.
	if _, err := (AnalysisStream{Name: "FITS", SubjectPrefix: "fits", MaxBytes: 512 << 10}).Ensure(context.Background(), js); err != nil {
		t.Fatalf("a 512 KiB stream: %v", err)
	}
}

// TestEnsureStreamCreatesKeepsAndUpdates: the first call creates the stream, a second
// with the same settings keeps it as it is (no update), one with a new age bound
// updates it.
func TestEnsureStreamCreatesKeepsAndUpdates(t *testing.T) {
	nc, err := nats.Connect(testenv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := AnalysisStream{Name: testenv.StreamPrefix + "ENSURE_" + strconv.FormatInt(time.Now().UnixNano(), 36),
		SubjectPrefix: "ttensure." + strconv.FormatInt(time.Now().UnixNano(), 36), Memory: true, MaxBytes: testenv.StreamMaxBytes}
	testenv.DeleteStreams(t, s.Name)
	first, err := s.Ensure(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	before := first.CachedInfo().Created
	if _, err := s.Ensure(ctx, js); err != nil {
		t.Fatalf("second Ensure with the same settings: %v", err)
	}
	s.MaxAge = time.Hour
	st, err := s.Ensure(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxAge != time.Hour || !info.Created.Equal(before) {
		t.Errorf("after Ensure with MaxAge 1h: max age %v, created %v (was %v); want the same stream updated", info.Config.MaxAge, info.Created, before)
	}
}
