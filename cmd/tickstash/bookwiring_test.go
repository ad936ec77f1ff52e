package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tickstash/tickstash/book/bookstore"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/market"
)

// TestReplayBooksIntoRedis replays the Binance capture with --books: every book in
// Redis equals the line `tickstash books` prints for the same market.
func TestReplayBooksIntoRedis(t *testing.T) {
	path := capturePath(t, "binance-spot-2021.jsonl")
	var offline, errb bytes.Buffer
	if code := Main(context.Background(), []string{"books", "--depth", "7", path}, strings.NewReader(""), &offline, &errb); code != 0 {
		t.Fatalf("books: exit %d: %s", code, errb.String())
	}
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	errb.Reset()
	args := []string{"replay", "--redis-url", redistest.URL(), "--key-prefix", prefix, "--intervals", "1m",
		"--books", "--book-depth", "7", path}
	var out bytes.Buffer
	if code := Main(context.Background(), args, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("replay --books: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "4 order books into Redis (0 not live)") {
		t.Errorf("replay --books summary missing:\n%s", errb.String())
	}
	r := bookstore.NewReader(rdb, bookstore.ReaderConfig{Prefix: prefix})
	sc := bufio.NewScanner(&offline)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var want struct {
			Symbol   market.Symbol `json:"symbol"`
			Sequence int64         `json:"sequence"`
			Bids     [][2]string   `json:"bids"`
			Asks     [][2]string   `json:"asks"`
		}
		if err := json.Unmarshal(sc.Bytes(), &want); err != nil {
			t.Fatal(err)
		}
		e, err := r.Read(context.Background(), market.Binance, want.Symbol)
		if err != nil {
			t.Fatalf("%s: %v", want.Symbol, err)
		}
		got, _ := json.Marshal([]any{e.Sequence, e.Bids, e.Asks})
		exp, _ := json.Marshal([]any{want.Sequence, want.Bids, want.Asks})
		if e.Stale || !bytes.Equal(got, exp) {
			t.Errorf("%s in Redis (stale=%v %s): %s\nbooks printed: %s", want.Symbol, e.Stale, e.Reason, got, exp)
		}
		n++
	}
	if n != 4 {
		t.Errorf("%d books printed, want the capture's 4", n)
	}
}

func TestBookFlagsRefused(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"ingest", "--books", "--book-depth", "0"}, "--book-depth 0"},
		{[]string{"ingest", "--books", "--book-interval", "0s"}, "--book-interval 0s"},
	} {
		var out, errb bytes.Buffer
		code := Main(context.Background(), c.args, strings.NewReader(""), &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 naming %q", c.args, code, errb.String(), c.want)
		}
	}
}
