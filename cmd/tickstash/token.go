package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v4"
	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/gateway"
	"github.com/tickstash/tickstash/internal/redisconn"
)

// storeFlags are the flags of commands that read or write the gateway's keys directly.
type storeFlags struct {
	redisURL string
	prefix   string
}

func (s *storeFlags) register(f *flags) {
	registerRedisURL(f, &s.redisURL, "redis://127.0.0.1:6379/0", "Redis holding the gateway's keys")
	f.String(&s.prefix, "store-prefix", cache.DefaultPrefix, "prefix of tickstash's Redis keys: the gateway's --key-prefix")
}

func (s *storeFlags) connect(ctx context.Context) (redis.UniversalClient, error) {
	return redisconn.Connect(ctx, s.redisURL)
}

func cmdToken(e env) *ff.Command {
	f := newFlags("token", "token create|list|revoke|rotate-secret [flags]\n\n"+
		"Issues, lists, revokes and rotates gateway tokens. Run 'tickstash token <subcommand> --help'\n"+
		"for each one's flags.", e)
	return f.Command("", nil, tokenCreate(e), tokenList(e), tokenByID("revoke", e), tokenByID("rotate-secret", e))
}

func tokenCreate(e env) *ff.Command {
	f := newFlags("token create", "token create --name N --scopes S,S [flags]\n\n"+
		"Issues a gateway token and prints it once: only its SHA-256 is stored.\n"+
		"Scopes: "+strings.Join(scopeNames(), ", ")+".\n"+
		"Rate policies: [gcra|bucket|sliding|fixed:]LIMIT/WINDOW[+BURST], comma-separated,\n"+
		"e.g. 10/s or gcra:10/s+20,sliding:10000/d.", e)
	var sf storeFlags
	var name, subject, scopes, rate, class string
	var prefixes []string
	var ttl time.Duration
	var signing, scripts, asJSON bool
	sf.register(f)
	f.String(&name, "name", "", "who or what holds the token (required)")
	f.String(&subject, "subject", "", "the user the token acts for (entitlements, state); empty means --name")
	f.String(&scopes, "scopes", "", "comma-separated scopes (required)")
	f.Duration(&ttl, "ttl", 365*24*time.Hour, "lifetime of the token")
	f.String(&rate, "rate", "", "rate policy; empty means the gateway's default")
	f.String(&class, "redis", "", "command class on /redis: read or write (needs the redis scope)")
	f.Bool(&scripts, "redis-scripts", false, "allow EVAL/EVALSHA on /redis (scripts can reach undeclared keys: trusted callers only)")
	f.List(&prefixes, "key-prefix", nil, "key prefix every /redis key must start with")
	f.Bool(&signing, "signing", false, "require HMAC-signed requests; prints the signing secret once")
	f.Bool(&asJSON, "json", false, "print the token as JSON")
	return f.Command("issue a token; prints it (and its signing secret) once", func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		sc, err := gateway.ParseScopes(scopes)
		if err != nil {
			return fmt.Errorf("%w: --scopes: %v", errUsage, err)
		}
		spec := gateway.TokenSpec{Name: name, Subject: subject, Scopes: sc, TTL: ttl, Rate: rate,
			Redis: gateway.RedisClass(class), RedisScripts: scripts, KeyPrefixes: prefixes, Signing: signing}
		if err := spec.Validate(); err != nil {
			return fmt.Errorf("%w: %v", errUsage, strings.TrimPrefix(err.Error(), "gateway: invalid token spec: "))
		}
		rdb, err := sf.connect(ctx)
		if err != nil {
			return err
		}
		defer rdb.Close()
		raw, secret, tok, err := gateway.NewTokenStore(rdb, gateway.TokenStoreConfig{Prefix: sf.prefix}).Create(ctx, spec)
		if err != nil {
			return err
		}
		if asJSON {
			enc := json.NewEncoder(e.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(map[string]any{"token": raw, "signing_secret": secret, "record": tok})
		}
		fmt.Fprintf(e.stdout, "token          %s\n", raw)
		if secret != "" {
			fmt.Fprintf(e.stdout, "signing secret %s\n", secret)
		}
		fmt.Fprintf(e.stdout, "id             %s\nexpires        %s\n", tok.ID, tok.ExpiresAt.Format(time.RFC3339))
		fmt.Fprintln(e.stderr, "Store the token now: it is not shown again.")
		return nil
	})
}

func scopeNames() []string {
	var out []string
	for _, s := range gateway.Scopes {
		out = append(out, string(s))
	}
	return out
}

func tokenList(e env) *ff.Command {
	f := newFlags("token list", "token list [flags]", e)
	var sf storeFlags
	var asJSON bool
	sf.register(f)
	f.Bool(&asJSON, "json", false, "print JSON lines")
	return f.Command("list tokens (never their secrets)", func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		rdb, err := sf.connect(ctx)
		if err != nil {
			return err
		}
		defer rdb.Close()
		toks, err := gateway.NewTokenStore(rdb, gateway.TokenStoreConfig{Prefix: sf.prefix}).List(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			enc := json.NewEncoder(e.stdout)
			for _, t := range toks {
				if err := enc.Encode(t); err != nil {
					return err
				}
			}
			return nil
		}
		tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSUBJECT\tSCOPES\tREDIS\tRATE\tEXPIRES\tSTATUS")
		now := time.Now()
		for _, t := range toks {
			status := "active"
			switch {
			case t.Revoked:
				status = "revoked"
			case !now.Before(t.ExpiresAt):
				status = "expired"
			}
			var sc []string
			for _, s := range t.Scopes {
				sc = append(sc, string(s))
			}
			redisCol := string(t.Redis)
			if len(t.KeyPrefixes) > 0 {
				redisCol += " " + strings.Join(t.KeyPrefixes, "|")
			}
			if t.Signing {
				status += ",signing"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Subject, strings.Join(sc, ","),
				dash(redisCol), dash(t.Rate), t.ExpiresAt.Format(time.RFC3339), status)
		}
		return tw.Flush()
	})
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func tokenByID(sub string, e env) *ff.Command {
	short := "revoke a token (running gateways notice within their token cache TTL)"
	if sub == "rotate-secret" {
		short = "give a signing token a new secret; the previous one stays valid beside it"
	}
	f := newFlags("token "+sub, "token "+sub+" [flags] ID\n\n"+strings.ToUpper(short[:1])+short[1:]+".", e)
	var sf storeFlags
	sf.register(f)
	return f.Command(short, func(ctx context.Context, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("%w: give one token id (see tickstash token list)", errUsage)
		}
		id := args[0]
		rdb, err := sf.connect(ctx)
		if err != nil {
			return err
		}
		defer rdb.Close()
		store := gateway.NewTokenStore(rdb, gateway.TokenStoreConfig{Prefix: sf.prefix})
		if sub == "revoke" {
			err = store.Revoke(ctx, id)
			if err == nil {
				fmt.Fprintf(e.stdout, "revoked %s\n", id)
			}
		} else {
			var secret string
			secret, err = store.RotateSecret(ctx, id)
			if err == nil {
				fmt.Fprintf(e.stdout, "signing secret %s\n", secret)
				fmt.Fprintln(e.stderr, "The previous secret stays valid beside it until the next rotation.")
			}
		}
		if errors.Is(err, gateway.ErrTokenUnknown) || errors.Is(err, gateway.ErrInvalidTokenSpec) {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		return err
	})
}
