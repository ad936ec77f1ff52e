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
	if len(rep.Cases) != 6 || rep.TickerVsBare <= 0 || rep.ExactVsBare <= 0 || rep.RESTVsDirect <= 0 || rep.NamespaceVsPrefix <= 0 ||
		len(rep.TickerRounds) != 2 || rep.TickerRounds[0] <= 0 || rep.TickerRounds[1] <= 0 {
		t.Fatalf("report %+v", rep)
	}
	for _, c := range rep.Cases {
		if c.Errors != 0 {
			t.Errorf("%s: %d errors", c.Name, c.Errors)
		}
	}
	if users, _ := rdb.Do(context.Background(), "acl", "users").StringSlice(); len(users) > 0 {
		for _, u := range users {
			if strings.Contains(u, ":rns:") && strings.HasPrefix(u, "tsbench") {
				t.Fatalf("the bench left its namespace's ACL user %q", u)
			}
		}
	}
	if md := rep.Markdown(); !strings.Contains(md, "gateway ticker ÷ bare handler") || !strings.Contains(md, "namespaced /redis GET") || !strings.Contains(md, "every rate check in Redis") {
		t.Fatal(md)
	}
}
