package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/internal/redistest"
	"github.com/tickstash/tickstash/leaderboard"
)

func runMain(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestLeaderboardCommand(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	lb, err := leaderboard.NewStore(rdb, leaderboard.Config{Prefix: prefix}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	for user, pnl := range map[string]string{"ann": "120.5", "bob": "-3", "cy": "99999999999999999999.01", "dee": "120.5"} {
		if _, err := lb.ReportPnL(ctx, user, "", decimal.RequireFromString(pnl)); err != nil {
			t.Fatal(err)
		}
	}
	common := []string{"--redis-url", redistest.URL(), "--key-prefix", prefix}
	code, out, errs := runMain(t, "", append([]string{"leaderboard", "top", leaderboard.BoardTraderPnL, "--window", "day", "--n", "3"}, common...)...)
	if code != 0 {
		t.Fatalf("top: exit %d: %s", code, errs)
	}
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) != 4 || !strings.Contains(rows[1], "cy") || !strings.Contains(rows[1], "99999999999999999999.01") ||
		!strings.Contains(rows[3], "120.5") || strings.Contains(out, "bob") {
		t.Errorf("top 3:\n%s", out)
	}
	code, out, errs = runMain(t, "", append([]string{"leaderboard", "rank", leaderboard.BoardTraderPnL, "bob"}, common...)...)
	if code != 0 || !strings.Contains(out, "4") || !strings.Contains(out, "-3") {
		t.Errorf("rank bob: exit %d\n%s%s", code, out, errs)
	}
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"leaderboard", "rank", leaderboard.BoardTraderPnL, "nobody"}, 1, "not on the board"},
		{[]string{"leaderboard", "top", "Bad Board"}, 2, "invalid board"},
		{[]string{"leaderboard", "top", "x", "--window", "year"}, 2, "want all, day, week or month"},
		{[]string{"leaderboard", "sideways", "x"}, 2, "want top BOARD"},
		{[]string{"leaderboard", "top", leaderboard.BoardStrategyReturn, "--window", "day"}, 1, "does not keep"},
	} {
		code, _, errs := runMain(t, "", append(c.args, common...)...)
		if code != c.code || !strings.Contains(errs, c.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, errs, c.code, c.msg)
		}
	}
}
