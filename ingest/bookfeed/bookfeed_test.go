package bookfeed

import (
	"fmt"
	"testing"

	"github.com/tickstash/tickstash/book"
)

// TestReasonClass classifies the reasons the book package gives.
func TestReasonClass(t *testing.T) {
	for reason, want := range map[string]string{
		"gap: diff U=5 u=6 after u=3 (want U=4); fetch a new snapshot":                                          "gap",
		"gap: the snapshot (lastUpdateId 9) is older than the first diff after it (U=12); fetch a new snapshot": "gap",
		"connection sequence gap: sequence_num 9 after 7, 1 messages lost; resubscribe for new snapshots":       "gap",
		"checksum mismatch: the book hashes to 1, the exchange sent 2; resubscribe":                             "checksum",
		"crossed book: best bid 2 ≥ best ask 1; resync":                                                         "crossed",
		fmt.Sprintf("bid level %q %q: %v", "1e99", "1", book.ErrNumber):                                         "number",
		"something new": "other",
	} {
		if got := ReasonClass(reason); got != want {
			t.Errorf("ReasonClass(%q) = %s, want %s", reason, got, want)
		}
	}
}
