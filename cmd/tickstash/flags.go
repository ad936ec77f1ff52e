package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/peterbourgon/ff/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/featureflag"
	"github.com/tickstash/tickstash/internal/jsonerr"
	"github.com/tickstash/tickstash/internal/redisconn"
)

// flagStore is what every flags subcommand shares: where the definitions are, and
// where changes are announced.
type flagStore struct {
	redisURL, natsURL, prefix, subject string
}

// open connects to Redis and returns the flags client and a function closing what it
// opened. With announce, it also connects to NATS when --nats-url is given, and the
// function closing flushes the announcements first.
func (fs *flagStore) open(ctx context.Context, announce bool) (*featureflag.Client, func() error, error) {
	rdb, err := redisconn.Connect(ctx, fs.redisURL)
	if err != nil {
		return nil, nil, err
	}
	var nc *nats.Conn
	if fs.natsURL != "" && announce {
		if nc, err = nats.Connect(fs.natsURL, nats.Name("tickstash flags")); err != nil {
			_ = rdb.Close()
			return nil, nil, fmt.Errorf("nats at %s: %w (check --nats-url / TICKSTASH_NATS_URL)", fs.natsURL, err)
		}
	}
	fl := featureflag.New(rdb, nc, featureflag.Config{Prefix: fs.prefix, Subject: fs.subject}, nil, prometheus.NewRegistry())
	return fl, func() error {
		var err error
		if nc != nil {
			if err = nc.Flush(); err != nil {
				err = fmt.Errorf("nats: announce: %w", err)
			}
			nc.Close()
		}
		_ = rdb.Close()
		return err
	}, nil
}

func cmdFlags(e env) *ff.Command {
	f := newFlags("flags", "flags set|get|list|eval|history [flags]\n\n"+
		"Manages feature flags in Redis. The flags below are valid before or after the\n"+
		"subcommand; run 'tickstash flags <subcommand> --help' for each one's own.", e)
	var st flagStore
	registerStore(f, &st.redisURL, &st.prefix, "Redis holding the feature flags")
	f.String(&st.natsURL, "nats-url", "", "NATS URL to announce changes on; empty announces nothing")
	f.String(&st.subject, "subject", featureflag.DefaultSubject, "NATS subject of change announcements")
	return f.Command("", nil, flagsSet(f, &st, e), flagsGet(f, &st, e), flagsList(f, &st, e), flagsEval(f, &st, e), flagsHistory(f, &st, e))
}

func flagsSet(parent *flags, st *flagStore, e env) *ff.Command {
	f := newFlags("flags set", "flags set KEY [FILE|-] [--who NAME]\n\n"+
		"Reads the JSON definition of flag KEY from FILE or standard input, e.g.\n"+
		"{\"enabled\":true,\"rollout\":[{\"variant\":\"on\",\"percent\":10},{\"variant\":\"off\",\"percent\":90}]}\n"+
		"(the key comes from the command line), records the change and announces it on NATS\n"+
		"when --nats-url is set (otherwise running processes see it at their next resync).", e).SetParent(parent)
	var who string
	f.String(&who, "who", os.Getenv("USER"), "who makes the change, for the history")
	return f.Command("define or change a flag from its JSON definition", func(ctx context.Context, args []string) error {
		if len(args) < 1 || len(args) > 2 {
			return fmt.Errorf("%w: want flags set KEY [FILE|-], got %q", errUsage, args)
		}
		// Validate before connecting: a malformed definition never reaches Redis.
		in := e.stdin
		if len(args) == 2 && args[1] != "-" {
			file, err := os.Open(args[1])
			if err != nil {
				return err
			}
			defer file.Close()
			in = file
		}
		raw, err := io.ReadAll(io.LimitReader(in, featureflag.MaxDefinitionBytes+1))
		if err != nil {
			return err
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("%w: %s", featureflag.ErrInvalid, jsonerr.Describe(err))
		}
		if k, ok := m["key"]; ok && string(k) != `"`+args[0]+`"` {
			return fmt.Errorf("%w: the definition's key %s is not %q", featureflag.ErrInvalid, k, args[0])
		}
		m["key"], _ = json.Marshal(args[0])
		raw, _ = json.Marshal(m)
		def, err := featureflag.ParseFlag(raw)
		if err != nil {
			return err
		}
		fl, done, err := st.open(ctx, true)
		if err != nil {
			return err
		}
		if err := fl.Set(ctx, def, who); err != nil {
			_ = done()
			return err
		}
		if err := done(); err != nil {
			return err
		}
		return printJSON(e.stdout, def)
	})
}

func flagsGet(parent *flags, st *flagStore, e env) *ff.Command {
	f := newFlags("flags get", "flags get KEY\n\nPrints the definition of flag KEY as JSON.", e).SetParent(parent)
	return f.Command("print a flag's definition as JSON", func(ctx context.Context, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("%w: want flags get KEY, got %q", errUsage, args)
		}
		fl, done, err := st.open(ctx, false)
		if err != nil {
			return err
		}
		defer func() { _ = done() }()
		got, err := fl.Get(ctx, args[0])
		if err != nil {
			return err
		}
		return printJSON(e.stdout, got)
	})
}

func flagsList(parent *flags, st *flagStore, e env) *ff.Command {
	f := newFlags("flags list", "flags list\n\nLists every flag.", e).SetParent(parent)
	return f.Command("list every flag", func(ctx context.Context, args []string) error {
		if len(args) != 0 {
			return fmt.Errorf("%w: flags list takes no arguments, got %q", errUsage, args)
		}
		fl, done, err := st.open(ctx, false)
		if err != nil {
			return err
		}
		defer func() { _ = done() }()
		all, err := fl.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KEY\tENABLED\tVARIANTS\tRULES\tROLLOUT\tDESCRIPTION")
		for _, x := range all {
			var shares []string
			for _, s := range x.Rollout {
				shares = append(shares, fmt.Sprintf("%s=%g%%", s.Variant, s.Percent))
			}
			fmt.Fprintf(tw, "%s\t%v\t%s\t%d\t%s\t%s\n", x.Key, x.Enabled, strings.Join(x.Variants, ","), len(x.Rules), strings.Join(shares, ","), x.Description)
		}
		return tw.Flush()
	})
}

func flagsEval(parent *flags, st *flagStore, e env) *ff.Command {
	f := newFlags("flags eval", "flags eval KEY USER [--attr name=value ...]\n\n"+
		"Evaluates flag KEY for USER from a fresh copy of the definitions, as a running process\n"+
		"would, and prints the variant.", e).SetParent(parent)
	var attrs []string
	f.List(&attrs, "attr", nil, "a user attribute, name=value")
	return f.Command("evaluate a flag for a user", func(ctx context.Context, args []string) error {
		if len(args) != 2 {
			return fmt.Errorf("%w: want flags eval KEY USER, got %q", errUsage, args)
		}
		user := featureflag.User{ID: args[1], Attrs: map[string]string{}}
		for _, kv := range attrs {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return fmt.Errorf("%w: --attr %q: want name=value", errUsage, kv)
			}
			user.Attrs[k] = v
		}
		fl, done, err := st.open(ctx, false)
		if err != nil {
			return err
		}
		defer func() { _ = done() }()
		if err := fl.Refresh(ctx); err != nil {
			return err
		}
		if !fl.Known(args[0]) {
			fmt.Fprintf(e.stderr, "flags: %s is not defined: programs get their own default\n", args[0])
			return &exitError{Code: 1, Msg: "no such flag: " + args[0]}
		}
		fmt.Fprintln(e.stdout, fl.Variant(args[0], user, ""))
		return nil
	})
}

func flagsHistory(parent *flags, st *flagStore, e env) *ff.Command {
	f := newFlags("flags history", "flags history [KEY] [--n 20]\n\n"+
		"Prints the newest changes to every flag, or to flag KEY.", e).SetParent(parent)
	var n int
	f.Int(&n, "n", 20, "how many changes")
	return f.Command("the newest changes, of every flag or of one", func(ctx context.Context, args []string) error {
		if len(args) > 1 {
			return fmt.Errorf("%w: want flags history [KEY], got %q", errUsage, args)
		}
		key := ""
		if len(args) == 1 {
			key = args[0]
		}
		fl, done, err := st.open(ctx, false)
		if err != nil {
			return err
		}
		defer func() { _ = done() }()
		hist, err := fl.History(ctx, key, n)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "WHEN\tKEY\tWHO\tCHANGE")
		for _, c := range hist {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.When.Format(time.RFC3339), c.Key, c.Who, describeChange(c))
		}
		return tw.Flush()
	})
}

func describeChange(c featureflag.Change) string {
	switch {
	case c.Before == nil:
		return "created " + compactJSON(c.After)
	case c.After == nil:
		return "deleted (was " + compactJSON(c.Before) + ")"
	}
	return compactJSON(c.Before) + " → " + compactJSON(c.After)
}

func compactJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
