package main

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/market"
)

// interval is one process's stretch of ingesting one unit.
type interval struct {
	proc       int
	start, end time.Time
}

// ownership reads "unit started"/"unit stopped" from each process's JSON log; a unit
// still running ends at until (the process's death, or now).
func ownership(t *testing.T, procs []*proc, until []time.Time) map[string][]interval {
	t.Helper()
	out := map[string][]interval{}
	for i, p := range procs {
		open := map[string]time.Time{}
		for _, rec := range p.logs() {
			unit, _ := rec["unit"].(string)
			ts, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(rec["time"]))
			switch rec["msg"] {
			case "unit started":
				open[unit] = ts
			case "unit stopped":
				out[unit] = append(out[unit], interval{i, open[unit], ts})
				delete(open, unit)
			}
		}
		for unit, s := range open {
			out[unit] = append(out[unit], interval{i, s, until[i]})
		}
	}
	return out
}

// TestShardedIngestProcesses runs three real `tickstash ingest` processes in one shard
// group on the real Redis, kills one with SIGKILL, and checks from their logs and from
// Redis that every market is ingested by exactly one process at a time, that the dead
// one's markets are taken over within a few seconds, and that data keeps flowing.
func TestShardedIngestProcesses(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	const markets = 16
	args := []string{"ingest", "--redis-url", redistest.URL(), "--key-prefix", prefix, "--admin-addr", "127.0.0.1:0",
		"--log-format", "json", "--source", "synthetic", "--synthetic-symbols", fmt.Sprint(markets), "--synthetic-rate", "320",
		"--intervals", "1m", "--shard-group", "e2e", "--shard-lease", "1500ms"}
	var procs []*proc
	for i := 0; i < 3; i++ {
		procs = append(procs, startProcess(t, args...))
	}
	far := time.Now().Add(time.Hour)
	until := []time.Time{far, far, far}
	running := func() map[string][]int {
		now := time.Now()
		cur := map[string][]int{}
		for unit, ivs := range ownership(t, procs, until) {
			for _, iv := range ivs {
				if !iv.end.Before(now) {
					cur[unit] = append(cur[unit], iv.proc)
				}
			}
		}
		return cur
	}
	waitSettled := func(alive map[int]bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			cur := running()
			ok := len(cur) == markets
			users := map[int]bool{}
			for _, ps := range cur {
				ok = ok && len(ps) == 1 && alive[ps[0]]
				if len(ps) == 1 {
					users[ps[0]] = true
				}
			}
			// Rendezvous hashing spreads units by chance: with 16 units a live process
			// may rarely get none, so ask for at least two in use when several live.
			if ok && len(users) >= min(2, len(alive)) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("markets not spread over %d live processes within 20s: %v\nstderr:\n%.2000s\n---\n%.2000s\n---\n%.2000s", len(alive), cur, procs[0].stderr(), procs[1].stderr(), procs[2].stderr())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitSettled(map[int]bool{0: true, 1: true, 2: true})

	procs[1].kill()
	until[1] = time.Now()
	killed := time.Now()
	waitSettled(map[int]bool{0: true, 2: true})
	takeover := time.Since(killed)
	t.Logf("takeover after SIGKILL: %v", takeover)
	if takeover > 6*time.Second {
		t.Errorf("takeover took %v; want within a few seconds of the 1.5s lease", takeover)
	}

	// No unit ever ran on two processes at once.
	for unit, ivs := range ownership(t, procs, until) {
		sort.Slice(ivs, func(i, j int) bool { return ivs[i].start.Before(ivs[j].start) })
		for i := 1; i < len(ivs); i++ {
			if ivs[i].start.Before(ivs[i-1].end) {
				t.Errorf("%s ran on processes %d and %d at once: %v–%v and %v–%v", unit,
					ivs[i-1].proc, ivs[i].proc, ivs[i-1].start, ivs[i-1].end, ivs[i].start, ivs[i].end)
			}
		}
	}

	// Every market's data keeps arriving after the takeover.
	store := cache.NewMarketStore(rdb, cache.MarketConfig{Prefix: prefix}, nil)
	deadline := time.Now().Add(10 * time.Second)
	for _, sym := range []market.Symbol{"BTC-USD", "ETH-USD", "SOL-USD", "DOGE-USD", "XRP-USD", "ADA-USD", "PEPE-USD", "LINK-USD",
		"AVAX-USD", "LTC-USD", "BNB-USD", "DOT-USD", "ETH-BTC", "SOL-ETH", "TRX-USD", "ATOM-USD"} {
		for {
			tk, err := store.Ticker(context.Background(), market.Synthetic, sym)
			if err == nil && tk.UpdatedAt.After(killed.Add(takeover)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no trade written after the takeover (%v, %v)", sym, tk.UpdatedAt, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, i := range []int{0, 2} {
		if code := procs[i].stop(t); code != 0 {
			t.Errorf("process %d exited %d; stderr:\n%.3000s", i, code, procs[i].stderr())
		}
	}
}
