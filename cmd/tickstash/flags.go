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
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/featureflag"
	"github.com/tickstash/tickstash/internal/redisconn"
)

func cmdFlags(ctx context.Context, args []string, e env) error {
	f := newFlags("flags", "flags set KEY [FILE|-] | get KEY | list | eval KEY USER [--attr k=v] | history [KEY] [--n 20]\n\n"+
		"Manages feature flags in Redis. set reads the JSON definition from FILE or standard\n"+
		"input, e.g. {\"enabled\":true,\"rollout\":[{\"variant\":\"on\",\"percent\":10},{\"variant\":\"off\",\"percent\":90}]}\n"+
		"(the key comes from the command line), records the change and announces it on NATS\n"+
		"when --nats-url is set (otherwise running processes see it at their next resync).\n"+
		"eval evaluates from a fresh copy of the definitions, as a running process would.", e)
	var redisURL, natsURL, prefix, subject, who string
	var n int
	var attrs []string
	f.String(&redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis URL: redis://host:port/db, rediss:// for TLS, redis://h1:p1?addr=h2:p2 for Redis Cluster")
	f.String(&natsURL, "nats-url", "", "NATS URL to announce changes on; empty announces nothing")
	f.String(&prefix, "key-prefix", cache.DefaultPrefix, "prefix of every Redis key tickstash writes")
	f.String(&subject, "subject", featureflag.DefaultSubject, "NATS subject of change announcements")
	f.String(&who, "who", os.Getenv("USER"), "set: who makes the change, for the history")
	f.Int(&n, "n", 20, "history: how many changes")
	f.List(&attrs, "attr", nil, "eval: a user attribute, name=value")
	pos, err := parseInterleaved(f, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return fmt.Errorf("%w: want set, get, list, eval or history", errUsage)
	}
	arity := map[string][2]int{"set": {2, 3}, "get": {2, 2}, "list": {1, 1}, "eval": {3, 3}, "history": {1, 2}}
	a, ok := arity[pos[0]]
	if !ok || len(pos) < a[0] || len(pos) > a[1] {
		return fmt.Errorf("%w: want set KEY [FILE], get KEY, list, eval KEY USER or history [KEY]; got %q", errUsage, pos)
	}
	user := featureflag.User{Attrs: map[string]string{}}
	for _, kv := range attrs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("%w: --attr %q: want name=value", errUsage, kv)
		}
		user.Attrs[k] = v
	}
	var def featureflag.Flag
	if pos[0] == "set" {
		// Validate before connecting: a malformed definition never reaches Redis.
		in := e.stdin
		if len(pos) == 3 && pos[2] != "-" {
			file, err := os.Open(pos[2])
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
			return fmt.Errorf("%w: %v", featureflag.ErrInvalid, err)
		}
		if k, ok := m["key"]; ok && string(k) != `"`+pos[1]+`"` {
			return fmt.Errorf("%w: the definition's key %s is not %q", featureflag.ErrInvalid, k, pos[1])
		}
		m["key"], _ = json.Marshal(pos[1])
		raw, _ = json.Marshal(m)
		if def, err = featureflag.ParseFlag(raw); err != nil {
			return err
		}
	}
	rdb, err := redisconn.Connect(ctx, redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	var nc *nats.Conn
	if natsURL != "" && pos[0] == "set" {
		if nc, err = nats.Connect(natsURL, nats.Name("tickstash flags")); err != nil {
			return fmt.Errorf("nats at %s: %w (check --nats-url / TICKSTASH_NATS_URL)", natsURL, err)
		}
		defer nc.Close()
	}
	fl := featureflag.New(rdb, nc, featureflag.Config{Prefix: prefix, Subject: subject}, nil, prometheus.NewRegistry())
	switch pos[0] {
	case "set":
		if err := fl.Set(ctx, def, who); err != nil {
			return err
		}
		if nc != nil {
			if err := nc.Flush(); err != nil {
				return fmt.Errorf("nats: announce: %w", err)
			}
		}
		return printJSON(e.stdout, def)
	case "get":
		got, err := fl.Get(ctx, pos[1])
		if err != nil {
			return err
		}
		return printJSON(e.stdout, got)
	case "list":
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
	case "eval":
		if err := fl.Refresh(ctx); err != nil {
			return err
		}
		user.ID = pos[2]
		if !fl.Known(pos[1]) {
			fmt.Fprintf(e.stderr, "flags: %s is not defined: programs get their own default\n", pos[1])
			return &exitError{code: 1, msg: "no such flag: " + pos[1]}
		}
		fmt.Fprintln(e.stdout, fl.Variant(pos[1], user, ""))
		return nil
	case "history":
		key := ""
		if len(pos) == 2 {
			key = pos[1]
		}
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
	}
	return nil
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
