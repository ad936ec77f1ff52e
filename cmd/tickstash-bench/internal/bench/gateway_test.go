package bench

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tickstash/tickstash/internal/redistest"
)

func TestGatewayBench(t *testing.T) {
	rdb := redistest.Client(t)
	rep, err := Gateway(context.Background(), rdb, GatewayConfig{Duration: 400 * time.Millisecond, Rounds: 2, Goroutines: 4}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Cases) != 5 || rep.TickerVsBare <= 0 || rep.RESTVsDirect <= 0 || rep.NamespaceVsPrefix <= 0 || rep.Cases[4].Errors != 0 ||
		len(rep.TickerRounds) != 2 || rep.TickerRounds[0] <= 0 || rep.TickerRounds[1] <= 0 {
		t.Fatalf("report %+v", rep)
	}
	if users, _ := rdb.Do(context.Background(), "acl", "users").StringSlice(); len(users) > 0 {
		for _, u := range users {
			if strings.Contains(u, ":rns:") && strings.HasPrefix(u, "tsbench") {
				t.Fatalf("the bench left its namespace's ACL user %q", u)
			}
		}
	}
	if md := rep.Markdown(); !strings.Contains(md, "gateway ticker ÷ bare handler") || !strings.Contains(md, "namespaced /redis GET") {
		t.Fatal(md)
	}
}
