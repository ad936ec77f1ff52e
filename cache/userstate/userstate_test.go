package userstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/internal/redistest"
)

func TestUserStateCASUnderConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	s := NewUserStateStore(rdb, UserStateConfig{Prefix: redistest.Prefix(t, rdb), MaxBytes: 1024}, prometheus.NewRegistry())

	if st, err := s.Get(ctx, "u1"); err != nil || st.Version != 0 || st.Doc != nil {
		t.Fatalf("missing doc: %+v %v", st, err)
	}
	v, err := s.Update(ctx, "u1", 0, json.RawMessage(`{"count":0}`))
	if err != nil || v != 1 {
		t.Fatalf("create: %d %v", v, err)
	}
	if _, err := s.Update(ctx, "u1", 0, json.RawMessage(`{"count":99}`)); !errors.Is(err, cache.ErrConflict) {
		t.Fatalf("second create: %v", err)
	}

	// Writers that blindly retry on conflict: every increment lands exactly once.
	const writers, each = 8, 20
	var conflicts atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; {
				cur, err := s.Get(ctx, "u1")
				if err != nil {
					t.Error(err)
					return
				}
				var doc struct{ Count int }
				_ = json.Unmarshal(cur.Doc, &doc)
				doc.Count++
				b, _ := json.Marshal(doc)
				if _, err := s.Update(ctx, "u1", cur.Version, b); errors.Is(err, cache.ErrConflict) {
					conflicts.Add(1)
					continue
				} else if err != nil {
					t.Error(err)
					return
				}
				i++
			}
		}()
	}
	wg.Wait()
	st, _ := s.Get(ctx, "u1")
	if string(st.Doc) != fmt.Sprintf(`{"Count":%d}`, writers*each) || st.Version != 1+writers*each {
		t.Errorf("after %d updates: %s v%d", writers*each, st.Doc, st.Version)
	}
	t.Logf("%d conflicts among %d writers", conflicts.Load(), writers)

	st2, err := s.Modify(ctx, "u1", func(doc json.RawMessage) (json.RawMessage, error) {
		return json.RawMessage(`{"Count":0}`), nil
	})
	if err != nil || st2.Version != st.Version+1 {
		t.Errorf("modify: %+v %v", st2, err)
	}
	before, _ := s.Get(ctx, "u1")
	for _, bad := range []string{`{"x":`, `"` + strings.Repeat("y", 2000) + `"`} {
		if _, err := s.Update(ctx, "u1", before.Version, json.RawMessage(bad)); !errors.Is(err, cache.ErrInvalid) && !errors.Is(err, cache.ErrTooLarge) {
			t.Errorf("bad doc %.10q: %v", bad, err)
		}
	}
	if after, _ := s.Get(ctx, "u1"); after.Version != before.Version || string(after.Doc) != string(before.Doc) {
		t.Errorf("a refused update wrote: %+v", after)
	}
}
