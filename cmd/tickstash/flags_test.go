package main

import (
	"strings"
	"testing"

	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/internal/testenv"
)

func TestFlagsCommand(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	common := []string{"--redis-url", redistest.URL(), "--key-prefix", prefix, "--nats-url", testenv.NATSURL(), "--subject", "ts.flags.changed." + prefix}

	def := `{"enabled":true,"description":"new chart UI","rules":[{"attribute":"plan","op":"eq","values":["pro"],"variant":"on"}],` +
		`"rollout":[{"variant":"on","percent":0},{"variant":"off","percent":100}]}`
	code, out, errs := runMain(t, def, append([]string{"flags", "set", "new-ui", "--who", "alice"}, common...)...)
	if code != 0 || !strings.Contains(out, `"key": "new-ui"`) {
		t.Fatalf("set: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = runMain(t, "", append([]string{"flags", "get", "new-ui"}, common...)...)
	if code != 0 || !strings.Contains(out, `"fallthrough": "on"`) {
		t.Errorf("get: exit %d\n%s", code, out)
	}
	code, out, _ = runMain(t, "", append([]string{"flags", "list"}, common...)...)
	if code != 0 || !strings.Contains(out, "new-ui") || !strings.Contains(out, "off=100%") {
		t.Errorf("list: exit %d\n%s", code, out)
	}
	for attr, want := range map[string]string{"plan=pro": "on", "plan=free": "off"} {
		code, out, errs := runMain(t, "", append([]string{"flags", "eval", "new-ui", "user-1", "--attr", attr}, common...)...)
		if code != 0 || strings.TrimSpace(out) != want {
			t.Errorf("eval %s: exit %d %q %s, want %s", attr, code, out, errs, want)
		}
	}
	code, _, errs = runMain(t, "", append([]string{"flags", "eval", "missing", "user-1"}, common...)...)
	if code != 1 || !strings.Contains(errs, "not defined") {
		t.Errorf("eval of an unknown flag: exit %d %s", code, errs)
	}

	// Malformed definitions: refused with a reason, nothing recorded.
	for _, bad := range []string{`{"enabled":tru}`, `{"rollout":[{"variant":"on","percent":50}]}`, `{"key":"other"}`, `{"enabeld":true}`} {
		code, _, errs := runMain(t, bad, append([]string{"flags", "set", "new-ui", "--who", "mallory"}, common...)...)
		if code != 1 || !strings.Contains(errs, "flags: invalid definition") {
			t.Errorf("set %s: exit %d %s", bad, code, errs)
		}
	}
	code, out, _ = runMain(t, "", append([]string{"flags", "history", "new-ui"}, common...)...)
	if code != 0 || !strings.Contains(out, "alice") || strings.Contains(out, "mallory") || strings.Count(strings.TrimSpace(out), "\n") != 1 {
		t.Errorf("history: exit %d\n%s", code, out)
	}
	if code, _, _ := runMain(t, "", append([]string{"flags", "frobnicate"}, common...)...); code != 2 {
		t.Errorf("unknown subcommand: exit %d", code)
	}
}
