package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/peterbourgon/ff/v4"
)

// tree is a small command tree: group [--url] with leaf [--n --list --v] ARGS and other.
type tree struct {
	url       string
	n         int
	list      []string
	verbose   bool
	wait      time.Duration
	ran       string
	args      []string
	groupArgs []string
}

func (tr *tree) root() *ff.Command {
	group := NewFlags("group", "group leaf|other", "")
	group.String(&tr.url, "url", "u0", "a URL")
	leaf := NewFlags("group leaf", "group leaf [flags] ARGS", "").SetParent(group)
	leaf.Int(&tr.n, "n", 20, "how many")
	leaf.List(&tr.list, "item", []string{"d"}, "an item")
	leaf.Bool(&tr.verbose, "v", false, "verbose")
	leaf.Duration(&tr.wait, "wait", time.Second, "how long")
	other := NewFlags("group other", "group other", "")
	exec := func(name string) func(context.Context, []string) error {
		return func(_ context.Context, args []string) error {
			tr.ran, tr.args = name, args
			return nil
		}
	}
	root := NewFlags("", "<command>", "")
	cmd := root.Command("", nil, group.Command("", nil, leaf.Command("", exec("leaf")), other.Command("", exec("other"))))
	cmd.Name = "prog"
	return cmd
}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want tree
	}{
		{[]string{"group", "leaf", "a", "--n", "5", "b", "-v", "--item", "x y", "-", "--", "--n"},
			nil, tree{url: "u0", n: 5, list: []string{"x y"}, verbose: true, wait: time.Second, ran: "leaf", args: []string{"a", "b", "-", "--n"}}},
		{[]string{"group", "--url", "u1", "leaf", "--url=u2", "--wait", "-1s"},
			nil, tree{url: "u2", n: 20, list: []string{"d"}, wait: -time.Second, ran: "leaf", args: []string{}}},
		{[]string{"group", "leaf", "--v", "false", "a"},
			map[string]string{"TEST_ITEM": "p q  r", "TEST_N": "7", "TEST_URL": "u3"},
			tree{url: "u3", n: 7, list: []string{"p", "q", "r"}, wait: time.Second, ran: "leaf", args: []string{"a"}}},
		{[]string{"group", "leaf", "--item", "a", "--item", "b", "--n", "1"},
			map[string]string{"TEST_ITEM": "p q", "TEST_N": "7"},
			tree{url: "u0", n: 1, list: []string{"a", "b"}, wait: time.Second, ran: "leaf", args: []string{}}},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv("TICKSTASH_"+strings.TrimPrefix(k, "TEST_"), v)
			}
			var tr tree
			var out, errb bytes.Buffer
			if code := Run(context.Background(), "prog", tr.root(), tt.args, &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			if tr.args == nil {
				tr.args = []string{}
			}
			if diff := cmp.Diff(tt.want, tr, cmp.AllowUnexported(tree{})); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		env  map[string]string
		code int
		want string
	}{
		{[]string{"group", "leaf", "--n", "x"}, nil, 2, `prog group leaf: --n "x": not an integer`},
		{[]string{"group", "leaf", "--wait", "soon"}, nil, 2, `--wait "soon": not a duration`},
		{[]string{"group", "leaf", "--v=maybe"}, nil, 2, `--v "maybe": want true or false`},
		{[]string{"group", "leaf"}, map[string]string{"TICKSTASH_N": "many"}, 2, `$TICKSTASH_N="many": not an integer`},
		{[]string{"group", "leaf", "--nope"}, nil, 2, "unknown flag --nope"},
		{[]string{"group", "leaf", "a", "--n"}, nil, 2, "--n: missing value"},
		{[]string{"group", "--url"}, nil, 2, "--url: missing value"},
		{[]string{"group"}, nil, 2, "name a subcommand: leaf, other"},
		{[]string{"group", "sideways"}, nil, 2, `unknown subcommand "sideways"`},
		{[]string{"group", "--url", "x", "other"}, nil, 2, `--url is a flag of "group", not of "group other"`},
		{[]string{"group", "leaf", "--help"}, nil, 0, ""},
		{[]string{"group", "-h"}, nil, 0, ""},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var tr tree
			var out, errb bytes.Buffer
			code := Run(context.Background(), "prog", tr.root(), tt.args, &out, &errb)
			if code != tt.code || !strings.Contains(errb.String(), tt.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errb.String(), tt.code, tt.want)
			}
			if tr.ran != "" {
				t.Errorf("%s ran", tr.ran)
			}
			if tt.code == 0 && !strings.HasPrefix(out.String(), "Usage: prog "+strings.Join(tt.args[:len(tt.args)-1], " ")) {
				t.Errorf("help:\n%s", out.String())
			}
		})
	}
}

// TestHelpListsParentsFlags checks the help layout: each flag with its variable and
// default, the parent's flags included.
func TestHelpListsParentsFlags(t *testing.T) {
	var tr tree
	var out bytes.Buffer
	if code := Run(context.Background(), "prog", tr.root(), []string{"group", "leaf", "--help"}, &out, &out); code != 0 {
		t.Fatal(out.String())
	}
	for _, want := range []string{"Usage: prog group leaf [flags] ARGS", "  -url string\n    \ta URL [$TICKSTASH_URL] (default \"u0\")",
		"  -n int\n    \thow many [$TICKSTASH_N] (default 20)", "  -v\n    \tverbose [$TICKSTASH_V]\n", "(default 1s)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
}
