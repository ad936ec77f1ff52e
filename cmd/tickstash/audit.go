package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/peterbourgon/ff/v4"

	"github.com/tickstash/tickstash/gateway"
)

func cmdAudit(e env) *ff.Command {
	f := newFlags("audit", "audit tail [-n N] [--follow] [--counts] [--json]", e)
	return f.Command("", nil, auditTail(e))
}

func auditTail(e env) *ff.Command {
	f := newFlags("audit tail", "audit tail [flags]\n\n"+
		"Prints the newest entries of the gateway's audit record, oldest first: mutating and\n"+
		"refused requests of tokens, and refused credentials that did not authenticate\n"+
		"(marked \"anon\"); --follow keeps printing new ones until interrupted. --counts prints\n"+
		"instead the refusals counted per minute, client and reason (token-less requests, and\n"+
		"refusals beyond their allowance). Every field is printed escaped, Go style: control\n"+
		"and invisible characters, invalid UTF-8 and backslashes can not forge a line.", e)
	var sf storeFlags
	var n int
	var follow, counts, asJSON bool
	sf.register(f)
	f.Int(&n, "n", 20, "how many of the newest entries to print")
	f.Bool(&follow, "follow", false, "keep printing new entries")
	f.Bool(&counts, "counts", false, "print the per-minute refusal counts instead of the entries")
	f.Bool(&asJSON, "json", false, "print JSON lines (fields escaped the same way)")
	return f.Command("print the newest audit entries; --follow keeps printing", func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		if n < 0 {
			return fmt.Errorf("%w: -n must not be negative", errUsage)
		}
		if counts && follow {
			return fmt.Errorf("%w: --counts and --follow do not go together", errUsage)
		}
		rdb, err := sf.connect(ctx)
		if err != nil {
			return err
		}
		defer rdb.Close()
		log := gateway.NewAuditLog(rdb, sf.prefix)
		if counts {
			cs, err := log.Counts(ctx, int64(n))
			if err != nil {
				return err
			}
			for _, c := range cs {
				if err := printAuditCount(e.stdout, c, asJSON); err != nil {
					return err
				}
			}
			return nil
		}
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
	for _, f := range []*string{&en.ID, &en.RequestID, &en.TokenID, &en.Method, &en.Route, &en.Target, &en.Client, &en.Denial} {
		*f = escapeField(*f)
	}
	if asJSON {
		return json.NewEncoder(w).Encode(en)
	}
	tok := en.TokenID
	if tok == "" {
		tok = "-"
	}
	if en.Unauthenticated {
		tok = "anon:" + tok
	}
	line := fmt.Sprintf("%s %d %-6s %-40s %-16s %-15s %s", en.Time.Format(time.RFC3339Nano), en.Status, en.Method, en.Route, tok, en.Client, en.Target)
	if en.Denial != "" {
		line += "  denied: " + en.Denial
	}
	_, err := fmt.Fprintf(w, "%s  rid=%s\n", line, en.RequestID)
	return err
}

func printAuditCount(w io.Writer, c gateway.AuditCount, asJSON bool) error {
	for _, f := range []*string{&c.ID, &c.Client, &c.TokenID, &c.Reason} {
		*f = escapeField(*f)
	}
	if asJSON {
		return json.NewEncoder(w).Encode(c)
	}
	tok := c.TokenID
	if tok == "" {
		tok = "-"
	}
	_, err := fmt.Fprintf(w, "%s %-8d %-20s %-16s %s\n", c.Minute.Format("2006-01-02T15:04Z07:00"), c.Count, c.Client, tok, c.Reason)
	return err
}

// escapeField makes a field of the audit record safe to print on a terminal, one entry
// per line: a backslash becomes \\, a byte of invalid UTF-8 \xNN, and every character
// that is not graphic (control characters such as newline and escape, format characters
// such as bidirectional overrides) a Go escape (\n, \x1b, \u202e). Printable text,
// spaces included, is kept.
func escapeField(s string) string {
	clean := true
	for _, r := range s {
		if r == '\\' || r == utf8.RuneError || !unicode.IsGraphic(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case unicode.IsGraphic(r):
			b.WriteString(s[i : i+n])
		default:
			q := strconv.QuoteRune(r) // '\n', '\x1b', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}
