package ratelimit_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/ratelimit"
)

func TestMiddleware(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	lim, _ := newLimiter(t, rdb, policies(
		ratelimit.Policy{Name: "burst", Algorithm: ratelimit.FixedWindow, Limit: 2, Window: time.Hour},
		ratelimit.Policy{Name: "daily", Algorithm: ratelimit.SlidingWindow, Limit: 1000, Window: 24 * time.Hour},
	))
	mw := ratelimit.NewMiddleware(lim, ratelimit.MiddlewareConfig{
		Identify: func(r *http.Request) (string, error) {
			switch u := r.Header.Get("X-User"); u {
			case "broken":
				return "", errors.New("no token")
			default:
				return u, nil
			}
		},
	})
	calls := 0
	srv := httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		_, _ = io.WriteString(w, "ok")
	})))
	t.Cleanup(srv.Close)

	get := func(user string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if user != "" {
			req.Header.Set("X-User", user)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = resp.Body.Close() })
		return resp
	}

	const wantPolicy = `"burst";q=2;w=3600, "daily";q=1000;w=86400`
	for i, wantR := range []string{`"burst";r=1;t=\d+, "daily";r=999;t=\d+`, `"burst";r=0;t=\d+, "daily";r=998;t=\d+`} {
		resp := get("alice")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d", i+1, resp.StatusCode)
		}
		if got := resp.Header.Get("RateLimit-Policy"); got != wantPolicy {
			t.Fatalf("RateLimit-Policy %q, want %q", got, wantPolicy)
		}
		if got := resp.Header.Get("RateLimit"); !regexp.MustCompile("^" + wantR + "$").MatchString(got) {
			t.Fatalf("request %d: RateLimit %q, want %s", i+1, got, wantR)
		}
		if resp.Header.Get("Retry-After") != "" {
			t.Fatalf("Retry-After on an allowed request")
		}
	}

	resp := get("alice")
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third request: status %d, want 429", resp.StatusCode)
	}
	if calls != 2 {
		t.Fatalf("handler called %d times, want 2", calls)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/problem+json" {
		t.Fatalf("Content-Type %q", got)
	}
	if got := resp.Header.Get("RateLimit"); !regexp.MustCompile(`^"burst";r=0;t=\d+, "daily";r=998;t=\d+$`).MatchString(got) {
		t.Fatalf("RateLimit on 429: %q (the denial must not be charged to daily)", got)
	}
	ra := resp.Header.Get("Retry-After")
	if !regexp.MustCompile(`^[1-9]\d*$`).MatchString(ra) || len(ra) > 4 {
		t.Fatalf("Retry-After %q, want whole seconds up to an hour", ra)
	}
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	delete(body, "detail")
	want := map[string]any{"type": "about:blank", "title": "Too Many Requests", "status": float64(429), "policy": "burst"}
	if diff := cmp.Diff(want, body); diff != "" {
		t.Fatalf("problem body (-want +got):\n%s", diff)
	}

	// Unidentified requests pass unlimited and without headers; Identify errors are 500s.
	if resp := get(""); resp.StatusCode != http.StatusOK || resp.Header.Get("RateLimit") != "" {
		t.Fatalf("anonymous: status %d, RateLimit %q", resp.StatusCode, resp.Header.Get("RateLimit"))
	}
	if resp := get("broken"); resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("identify error: status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestMiddlewareRedisDown(t *testing.T) {
	t.Parallel()
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = down.Close() })
	pol := ratelimit.Policy{Name: "p", Algorithm: ratelimit.GCRA, Limit: 1, Window: time.Second}
	for _, tc := range []struct {
		failOpen bool
		want     int
	}{{false, http.StatusServiceUnavailable}, {true, http.StatusOK}} {
		lim, err := ratelimit.NewLimiter(down, ratelimit.Config{Policies: []ratelimit.Policy{pol}, FailOpen: tc.failOpen}, nil)
		if err != nil {
			t.Fatal(err)
		}
		h := ratelimit.NewMiddleware(lim, ratelimit.MiddlewareConfig{
			Identify: func(*http.Request) (string, error) { return "u", nil },
		})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if rec.Code != tc.want {
			t.Errorf("fail open %v: status %d, want %d", tc.failOpen, rec.Code, tc.want)
		}
	}
}

func TestHeaderSyntax(t *testing.T) {
	t.Parallel()
	ps := []ratelimit.Policy{
		{Name: "burst", Algorithm: ratelimit.GCRA, Limit: 10, Window: time.Second},
		{Name: "daily", Algorithm: ratelimit.FixedWindow, Limit: 1000, Window: 24 * time.Hour},
		{Name: "sub", Algorithm: ratelimit.TokenBucket, Limit: 5, Window: 200 * time.Millisecond},
	}
	if got, want := ratelimit.PolicyHeader(ps), `"burst";q=10;w=1, "daily";q=1000;w=86400, "sub";q=5;w=1`; got != want {
		t.Errorf("PolicyHeader = %q, want %q", got, want)
	}
	res := ratelimit.Result{Policies: []ratelimit.PolicyResult{
		{Policy: "burst", Remaining: 3, ResetAfter: 300 * time.Millisecond},
		{Policy: "daily", Remaining: 0, ResetAfter: 86399*time.Second + time.Microsecond},
		{Policy: "sub", Remaining: 5},
	}}
	if got, want := ratelimit.StatusHeader(res), `"burst";r=3;t=1, "daily";r=0;t=86400, "sub";r=5;t=0`; got != want {
		t.Errorf("StatusHeader = %q, want %q", got, want)
	}
}
