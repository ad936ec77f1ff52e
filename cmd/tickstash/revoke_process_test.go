package main

import (
	"github.com/tickstash/tickstash/internal/testenv"

	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tickstash/tickstash/gateway"
	"github.com/tickstash/tickstash/internal/redistest"
)

// TestGatewayProcessesRevocationAndKeys runs two `tickstash gateway` processes on the
// real Redis and NATS with one secret key file: a signing token made by `token create`
// with that file works on both, and `token revoke --nats-url` reaches both over NATS
// (each counts the event; both refuse the token).
func TestGatewayProcessesRevocationAndKeys(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	natsURL := testenv.NATSURL()
	t.Setenv("TICKSTASH_SECRET_KEY", "")
	keyOut, _, code := tokenCLI("token", "new-key", "--id", "proc")
	if code != 0 {
		t.Fatal("new-key failed")
	}
	keyFile := t.TempDir() + "/keys"
	if err := os.WriteFile(keyFile, []byte(keyOut), 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{"--redis-url", redistest.URL(), "--key-prefix", prefix, "--secret-key-file", keyFile}
	out, errs, code := tokenCLI(append([]string{"token", "create", "--json", "--name", "proc", "--scopes", "usage:read", "--signing"}, common...)...)
	if code != 0 {
		t.Fatalf("create: exit %d: %s", code, errs)
	}
	var ct struct {
		Token  string        `json:"token"`
		Secret string        `json:"signing_secret"`
		Record gateway.Token `json:"record"`
	}
	if err := json.Unmarshal([]byte(out), &ct); err != nil {
		t.Fatal(err)
	}
	type gw struct {
		p           *proc
		base, admin string
	}
	var gws []gw
	for i := 0; i < 2; i++ {
		p := startProcess(t, append([]string{"gateway", "--nats-url", natsURL, "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, common...)...)
		gws = append(gws, gw{p: p, base: "http://" + findIn(t, p, `HTTP   http://(\S+)/v1`), admin: "http://" + findIn(t, p, `Admin  http://(\S+)/metrics`)})
	}
	n := 0
	signed := func(base string) int {
		n++
		at := time.Now().Add(time.Duration(n) * time.Second)
		req, _ := http.NewRequest("GET", base+"/v1/usage", nil)
		req.Header.Set("Authorization", "Bearer "+ct.Token)
		req.Header.Set(gateway.HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
		req.Header.Set(gateway.HeaderSignature, gateway.Sign(ct.Secret, "GET", "/v1/usage", at, nil))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for i, g := range gws {
		if status := signed(g.base); status != 200 {
			t.Fatalf("gateway %d: signed request: %d\n%s", i, status, g.p.stderr())
		}
	}
	out, errs, code = tokenCLI(append([]string{"token", "revoke", "--nats-url", natsURL}, append(common, ct.Record.ID)...)...)
	if code != 0 || !strings.Contains(errs, "Announced") {
		t.Fatalf("revoke: exit %d: %s %s", code, out, errs)
	}
	for i, g := range gws {
		testenv.WaitFor(t, "gateway "+strconv.Itoa(i)+" counts the revocation", func() bool {
			_, body := httpGet(t, g.admin+"/metrics")
			return strings.Contains(body, `tickstash_gateway_token_events_total{event="revoked"} 1`)
		})
		testenv.WaitFor(t, "gateway "+strconv.Itoa(i)+" refuses the revoked token", func() bool { return signed(g.base) == 401 })
	}
	for i, g := range gws {
		if code := g.p.stop(t); code != 0 {
			t.Errorf("gateway %d exited %d:\n%.2000s", i, code, g.p.stderr())
		}
	}
}
