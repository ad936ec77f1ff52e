package main

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/internal/testenv"
)

// boundedWithoutTTL lists the keys that may live without a TTL, by suffix, with the
// bound that keeps them small instead.
var boundedWithoutTTL = map[string]string{
	":{aq}:fence":   "one integer: the fencing counter of job deliveries",
	":{aq}:jobs":    "the job stream: entries deleted on completion, MAXLEN-bounded",
	":{aq}:dead":    "the dead-letter stream: MAXLEN-bounded",
	":{aq}:delayed": "the retry set: bounded by the queue length limit",
}

// TestEveryKeyHasTTLOrBound runs every role against the real Redis for a few seconds,
// with gateway traffic, and then checks every key the run wrote: each has a TTL, or is
// one of the few whose size is bounded otherwise.
func TestEveryKeyHasTTLOrBound(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	signalStream := "TT_KEYS_" + prefix[3:]
	streamArgs, _ := testAnalysisStream(t, prefix[3:], signalStream)
	stderr, stop := started(t, append([]string{"run", "--redis-url", redistest.URL(), "--nats-url", testenv.NATSURL(),
		"--key-prefix", prefix, "--intervals", "1s,1m", "--synthetic-rate", "300", "--grace", "100ms",
		"--flush-interval", "50ms", "--indicators", "rsi:2 sma:2 rsi:14",
		"--signals-stream", signalStream, "--signals-subject-prefix", "ttkeys." + prefix[3:],
		"--signals-max-bytes", strconv.Itoa(testenv.StreamMaxBytes)}, streamArgs...)...)
	base := "http://" + find(t, stderr, `HTTP   http://(\S+)/v1`)
	var out bytes.Buffer
	if code := Main(context.Background(), []string{"token", "create", "--redis-url", redistest.URL(), "--store-prefix", prefix,
		"--name", "keys-test", "--scopes", "market:read", "--rate", "100/s"}, strings.NewReader(""), &out, &bytes.Buffer{}); code != 0 {
		t.Fatalf("token create: exit %d", code)
	}
	token := strings.TrimSpace(strings.TrimPrefix(strings.Split(out.String(), "\n")[0], "token"))
	for i := 0; i < 20; i++ {
		req, _ := http.NewRequest("GET", base+"/v1/markets/synthetic/BTC-USD/ticker", nil)
		if i%2 == 0 {
			req.Header.Set("Authorization", "Bearer "+token) // the others are refused: audited
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	time.Sleep(3 * time.Second)
	if code := stop(); code != 0 {
		t.Fatalf("run exited %d:\n%s", code, stderr)
	}
	keys := redistest.Keys(t, rdb, prefix+"*")
	if len(keys) < 20 {
		t.Fatalf("only %d keys written: %v", len(keys), keys)
	}
	kinds := map[string]bool{}
	for _, k := range keys {
		ttl, err := rdb.PTTL(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		kinds[strings.SplitN(strings.TrimPrefix(k, prefix+":"), ":", 3)[0]] = true
		if ttl > 0 {
			continue
		}
		bounded := false
		for suffix := range boundedWithoutTTL {
			if strings.HasSuffix(k, suffix) {
				bounded = true
			}
		}
		if !bounded {
			t.Errorf("%s has no TTL (PTTL %v) and no documented bound", k, ttl)
		}
	}
	t.Logf("%d keys checked, of kinds %v", len(keys), kinds)
}
