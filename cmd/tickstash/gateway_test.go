package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRunServesGateway runs the pipeline with its gateway on embedded servers, creates a
// token with `tickstash token create`, and reads live market data, candles and
// indicators over HTTP, as a bot would; without a token the gateway refuses.
func TestRunServesGateway(t *testing.T) {
	t.Setenv("TICKSTASH_REDIS_URL", "")
	t.Setenv("TICKSTASH_NATS_URL", "")
	stderr, stop := started(t, "run", "--http-addr", "127.0.0.1:0", "--intervals", "1s", "--synthetic-rate", "300",
		"--grace", "100ms", "--flush-interval", "50ms", "--indicators", "sma:2 obv")
	redisURL := find(t, stderr, `Redis  (redis://\S+)  \(embedded`)
	base := "http://" + find(t, stderr, `HTTP   http://(\S+)/v1`)

	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"token", "create", "--redis-url", redisURL, "--name", "bot-1",
		"--scopes", "market:read,jobs:read"}, strings.NewReader(""), &out, &errb)
	if code != 0 {
		t.Fatalf("token create: exit %d: %s", code, errb.String())
	}
	token := ""
	for _, line := range strings.Split(out.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "token"); ok {
			token = strings.TrimSpace(v)
		}
	}
	if token == "" {
		t.Fatalf("token create printed no token:\n%s", out.String())
	}

	get := func(path, tok string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, body := get("/v1/markets/synthetic/BTC-USD/ticker", ""); code != http.StatusUnauthorized {
		t.Errorf("without a token: %d %s", code, body)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := get("/v1/markets/synthetic/BTC-USD/candles?interval=1s&limit=5", token)
		var page struct {
			Candles []map[string]any `json:"candles"`
		}
		if code == 200 && json.Unmarshal(body, &page) == nil && len(page.Candles) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no candles over HTTP within 20s: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, body := get("/v1/markets/synthetic/BTC-USD/ticker", token)
	if code != 200 || !strings.Contains(string(body), "BTC-USD") {
		t.Errorf("ticker: %d %s", code, body)
	}
	for {
		code, body = get("/v1/markets/synthetic/BTC-USD/indicators?interval=1s", token)
		if code == 200 && strings.Contains(string(body), "sma_2") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no indicators over HTTP: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, body := get("/openapi.json", ""); code != 200 || !strings.Contains(string(body), `"openapi"`) {
		t.Errorf("/openapi.json: %d %.200s", code, body)
	}
	if code := stop(); code != 0 {
		t.Fatalf("run exited %d:\n%s", code, stderr)
	}
}
