package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/peterbourgon/ff/v4"

	"github.com/tickstash/tickstash/gateway"
)

func cmdAudit(e env) *ff.Command {
	f := newFlags("audit", "audit tail [-n N] [--follow] [--json]", e)
	return f.Command("", nil, auditTail(e))
}

func auditTail(e env) *ff.Command {
	f := newFlags("audit tail", "audit tail [flags]\n\n"+
		"Prints the newest entries of the gateway's audit stream (mutating and refused\n"+
		"requests), oldest first; --follow keeps printing new ones until interrupted.", e)
	var sf storeFlags
	var n int
	var follow, asJSON bool
	sf.register(f)
	f.Int(&n, "n", 20, "how many of the newest entries to print")
	f.Bool(&follow, "follow", false, "keep printing new entries")
	f.Bool(&asJSON, "json", false, "print JSON lines")
	return f.Command("print the newest audit entries; --follow keeps printing", func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		if n < 0 {
			return fmt.Errorf("%w: -n must not be negative", errUsage)
		}
		rdb, err := sf.connect(ctx)
		if err != nil {
			return err
		}
		defer rdb.Close()
		log := gateway.NewAuditLog(rdb, sf.prefix)
		print := func(en gateway.AuditEntry) error { return printAudit(e.stdout, en, asJSON) }
		last := "$"
		if n > 0 {
			entries, err := log.Last(ctx, int64(n))
			if err != nil {
				return err
			}
			for _, en := range entries {
				if err := print(en); err != nil {
					return err
				}
				last = en.ID
			}
		}
		if !follow {
			return nil
		}
		return log.Follow(ctx, last, print)
	})
}

func printAudit(w io.Writer, en gateway.AuditEntry, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(en)
	}
	tok := en.TokenID
	if tok == "" {
		tok = "-"
	}
	line := fmt.Sprintf("%s %d %-6s %-40s %-16s %-15s %s", en.Time.Format(time.RFC3339Nano), en.Status, en.Method, en.Route, tok, en.Client, en.Target)
	if en.Denial != "" {
		line += "  denied: " + en.Denial
	}
	_, err := fmt.Fprintf(w, "%s  rid=%s\n", line, en.RequestID)
	return err
}
