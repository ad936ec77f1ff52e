package pipeline

import (
	"errors"
	"fmt"

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
