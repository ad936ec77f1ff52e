package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/internal/redistest"
)

func TestSessions(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	now := time.Date(2026, 1, 7, 12, 0, 0, 0, time.UTC)
	var tick atomic.Int64
	s := NewSessionStore(rdb, SessionConfig{Prefix: prefix, TTL: time.Hour, MaxPerUser: 3,
		Now: func() time.Time { return now.Add(time.Duration(tick.Add(1)) * time.Second) }}, prometheus.NewRegistry())

	var ids []string
	for i := 0; i < 5; i++ {
		sess, err := s.Create(ctx, "alice", json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sess.ID)
	}
	if _, err := s.Create(ctx, "bob", nil); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range list {
		got = append(got, string(x.Data))
	}
	if strings.Join(got, " ") != `{"n":2} {"n":3} {"n":4}` {
		t.Errorf("alice's sessions after 5 creates with a cap of 3: %v", got)
	}
	for _, id := range ids[:2] {
		if _, err := s.Get(ctx, id); !errors.Is(err, cache.ErrNotFound) {
			t.Errorf("evicted session %s: %v", id, err)
		}
	}
	sess, err := s.Get(ctx, ids[4])
	if err != nil || sess.User != "alice" || string(sess.Data) != `{"n":4}` || sess.TTL <= 59*time.Minute {
		t.Fatalf("get: %+v %v", sess, err)
	}

	// Sliding TTL: Touch restores the full TTL.
	key := s.keys.Session("alice", ids[4][strings.LastIndexByte(ids[4], '.')+1:])
	rdb.PExpire(ctx, key, time.Minute)
	if err := s.Touch(ctx, ids[4]); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, key).Val(); ttl <= 59*time.Minute {
		t.Errorf("TTL after touch %v, want about 1h", ttl)
	}
	// An expired session frees its slot without evicting a live one.
	rdb.PExpire(ctx, key, 10*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	if err := s.Touch(ctx, ids[4]); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("touch of an expired session: %v", err)
	}
	if _, err := s.Create(ctx, "alice", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, ids[2]); err != nil {
		t.Errorf("the oldest live session was evicted though an expired one made room: %v", err)
	}
	if err := s.Destroy(ctx, ids[3]); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.List(ctx, "alice"); len(list) != 2 {
		t.Errorf("%d sessions after destroy, want 2", len(list))
	}
	if ttl := rdb.PTTL(ctx, s.keys.UserSessions("alice")).Val(); ttl <= 0 {
		t.Errorf("session index without TTL: %v", ttl)
	}

	for _, c := range []struct {
		user, data string
		err        error
	}{
		{"", "{}", cache.ErrInvalid}, {"a.b", "{}", cache.ErrInvalid}, {"carol", "{not json", cache.ErrInvalid},
		{"carol", `"` + strings.Repeat("x", 20<<10) + `"`, cache.ErrTooLarge},
	} {
		if _, err := s.Create(ctx, c.user, json.RawMessage(c.data)); !errors.Is(err, c.err) {
			t.Errorf("create(%q, %.10q): %v, want %v", c.user, c.data, err, c.err)
		}
	}
	if n := rdb.Exists(ctx, s.keys.UserSessions("carol")).Val(); n != 0 {
		t.Error("a refused session wrote its index")
	}
}

// TestSessionsSameMillisecond creates sessions faster than the clock ticks: the cap still
// evicts the oldest, and List still returns them in the order they were created.
func TestSessionsSameMillisecond(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	now := time.Date(2026, 1, 7, 12, 0, 0, 0, time.UTC)
	s := NewSessionStore(rdb, SessionConfig{Prefix: prefix, TTL: time.Hour, MaxPerUser: 2,
		Now: func() time.Time { return now }}, prometheus.NewRegistry())
	var ids []string
	for i := 0; i < 6; i++ {
		sess, err := s.Create(ctx, "carol", nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sess.ID)
	}
	list, err := s.List(ctx, "carol")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != ids[4] || list[1].ID != ids[5] {
		got := make([]string, len(list))
		for i, l := range list {
			got[i] = l.ID
		}
		t.Fatalf("sessions %v; want the two newest in order, %v", got, ids[4:])
	}
	for _, id := range ids[:4] {
		if _, err := s.Get(ctx, id); !errors.Is(err, cache.ErrNotFound) {
			t.Errorf("session %s: %v; want it evicted", id, err)
		}
	}
}
