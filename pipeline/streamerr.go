package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// JetStream's error codes for a stream whose size bound the server cannot reserve: the
// nats-server names them JSStorageResourcesExceededErr and JSMemoryResourcesExceededErr.
const (
	jsStorageExceeded jetstream.ErrorCode = 10047
	jsMemoryExceeded  jetstream.ErrorCode = 10028
)

// StreamError wraps err, the failure to create or update the stream named stream whose
// size bound is maxBytes (set with the flag sizeFlag), in an error that says what
// failed and what to do. A server that cannot reserve the size gets its own advice:
// JetStream reserves every stream's MaxBytes up front, against a store that defaults to
// 75% of the disk (or memory) free when the server started.
func StreamError(err error, stream string, maxBytes int64, sizeFlag string) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jsStorageExceeded || apiErr.ErrorCode == jsMemoryExceeded) {
		return fmt.Errorf("create or update stream %s: the NATS server cannot reserve its %d bytes (%s): "+
			"JetStream reserves each stream's size bound against its store, by default 75%% of the disk or memory free "+
			"when the server started; lower %s, delete streams nobody uses, or give the server room (max_file_store): %w",
			stream, maxBytes, sizeFlag, sizeFlag, err)
	}
	return fmt.Errorf("create or update stream %s: %w (is JetStream enabled?)", stream, err)
}

// EnsureStream creates the stream cfg describes, or updates it to cfg when the stream
// exists with other settings, and returns it. A stream that already has cfg's settings
// is left alone: every process of a deployment calls this at start, and an update that
// changes nothing still rewrites the stream's store while other processes create their
// consumers on it (the embedded nats-server's race detector flags exactly that).
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	st, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = js.CreateStream(ctx, cfg)
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return st, err
		}
		// Another process created it first: compare with what it made.
		st, err = js.Stream(ctx, cfg.Name)
	}
	if err != nil {
		return nil, err
	}
	if sameSettings(st.CachedInfo().Config, cfg) {
		return st, nil
	}
	return js.UpdateStream(ctx, cfg)
}

// sameSettings reports whether the stream configuration have holds every setting the
// tickstash streams set in want.
func sameSettings(have, want jetstream.StreamConfig) bool {
	return have.Description == want.Description && slices.Equal(have.Subjects, want.Subjects) &&
		have.Retention == want.Retention && have.Discard == want.Discard && have.MaxAge == want.MaxAge &&
		have.MaxBytes == want.MaxBytes && have.MaxMsgs == want.MaxMsgs && have.Duplicates == want.Duplicates &&
		have.Replicas == want.Replicas && have.Storage == want.Storage
}
