package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
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

// register registers --redis-url and --key-prefix, named and read from the environment
// as in every other command, so that TICKSTASH_KEY_PREFIX means the same store for the
// gateway and for these commands. --store-prefix, their former name, stays an alias.
func (s *storeFlags) register(f *flags) {
	registerRedisURL(f, &s.redisURL, "redis://127.0.0.1:6379/0", "Redis holding the gateway's keys")
	f.String(&s.prefix, "key-prefix", cache.DefaultPrefix, "prefix of tickstash's Redis keys: the same as the gateway's --key-prefix")
	f.String(&s.prefix, "store-prefix", cache.DefaultPrefix, "former name of --key-prefix")
}

// check refuses a store prefix the gateway would not use; a trailing ':' is what the
// /redis key prefix (--redis-key-prefix) looks like, the former meaning of --key-prefix
// in token create.
func (s *storeFlags) check() error {
	if s.prefix == "" || strings.ContainsAny(s.prefix, "{}") || strings.HasSuffix(s.prefix, ":") {
		return fmt.Errorf("%w: --key-prefix %q: the prefix of tickstash's own keys (as the gateway's --key-prefix, e.g. ts) must be non-empty, without braces and without a trailing ':'; "+
			"a /redis key prefix for a token is --redis-key-prefix", errUsage, s.prefix)
	}
	return nil
}

func (s *storeFlags) connect(ctx context.Context) (redis.UniversalClient, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return redisconn.Connect(ctx, s.redisURL)
}

// tokenByIDShort is the one-line help of the commands that change one token.
var tokenByIDShort = map[string]string{
	"revoke":        "revoke a token; with --nats-url running gateways refuse it at once",
	"rotate-secret": "give a signing token a new secret; the previous one stays valid beside it",
}

func cmdToken(e env) *ff.Command {
	f := newFlags("token", "token create|list|revoke|rotate-secret|new-key|reencrypt [flags]\n\n"+
		"Issues, lists, revokes and rotates gateway tokens. Run 'tickstash token <subcommand> --help'\n"+
		"for each one's flags. Signing secrets are stored encrypted with the keys of\n"+
		"--secret-key-file or $TICKSTASH_SECRET_KEY; create --signing and rotate-secret need one.", e)
	return f.Command("", nil, tokenCreate(e), tokenList(e), tokenByID("revoke", e), tokenByID("rotate-secret", e),
		tokenNewKey(e), tokenReencrypt(e))
}

func tokenCreate(e env) *ff.Command {
	f := newFlags("token create", "token create --name N --scopes S,S [flags]\n\n"+
		"Issues a gateway token and prints it once: only its SHA-256 is stored.\n"+
		"Scopes: "+strings.Join(scopeNames(), ", ")+".\n"+
		"Rate policies: [gcra|bucket|sliding|fixed:]LIMIT/WINDOW[+BURST], comma-separated,\n"+
		"e.g. 10/s or gcra:10/s+20,sliding:10000/d.", e)
	var sf storeFlags
	var kf secretKeyFlags
	var name, subject, scopes, rate, class, namespace string
	var prefixes []string
	var ttl time.Duration
	var signing, scripts, asJSON bool
	sf.register(f)
	kf.register(f)
	f.String(&name, "name", "", "who or what holds the token (required)")
	f.String(&subject, "subject", "", "the user the token acts for (entitlements, state); empty means --name")
	f.String(&scopes, "scopes", "", "comma-separated scopes (required)")
	f.Duration(&ttl, "ttl", 365*24*time.Hour, "lifetime of the token")
	f.String(&rate, "rate", "", "rate policy; empty means the gateway's default")
	f.String(&class, "redis", "", "command class on /redis: read or write; implies the redis scope")
	f.String(&namespace, "namespace", "", "a private database on /redis shared by the tokens of this namespace (keys stored as <key-prefix>:rns:{<namespace>}:<key>); needs --redis")
	f.Bool(&scripts, "redis-scripts", false, "trust the token with EVAL/EVALSHA on /redis where Redis ACLs cannot confine it (key-prefix tokens, or a Redis without ACLs): scripts can reach undeclared keys; needs --redis")
	f.List(&prefixes, "redis-key-prefix", nil, "key prefix every /redis key of the token must start with, e.g. app1:; needs --redis")
	f.Bool(&signing, "signing", false, "require HMAC-signed requests; prints the signing secret once (stored encrypted: needs --secret-key-file or $TICKSTASH_SECRET_KEY)")
	f.Bool(&asJSON, "json", false, "print the token as JSON")
	return f.Command("issue a token; prints it (and its signing secret) once", func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		sc, err := gateway.ParseScopes(scopes)
		if err != nil {
			return fmt.Errorf("%w: --scopes: %v", errUsage, err)
		}
		if class == "" && (len(prefixes) > 0 || scripts || namespace != "") {
			return fmt.Errorf("%w: --namespace, --redis-key-prefix and --redis-scripts are for /redis: give --redis read or --redis write too", errUsage)
		}
		if class != "" && !slices.Contains(sc, gateway.ScopeRedis) {
			// A command class without the scope makes a token that /redis refuses.
			sc = append(sc, gateway.ScopeRedis)
			fmt.Fprintf(e.stderr, "--redis %s implies the redis scope: added it.\n", class)
		}
		spec := gateway.TokenSpec{Name: name, Subject: subject, Scopes: sc, TTL: ttl, Rate: rate,
			Redis: gateway.RedisClass(class), RedisScripts: scripts, KeyPrefixes: prefixes, Namespace: namespace, Signing: signing}
		if err := sf.check(); err != nil {
			return err
		}
		if err := spec.Validate(); err != nil {
			return fmt.Errorf("%w: %v", errUsage, strings.TrimPrefix(err.Error(), "gateway: invalid token spec: "))
		}
		keys, err := kf.load()
		if err != nil {
			return err
		}
		if signing && keys == nil {
			return fmt.Errorf("%w: --signing: %v", errUsage, gateway.ErrNoSecretKey)
		}
		rdb, err := sf.connect(ctx)
		if err != nil {
			return err
		}
		defer rdb.Close()
		raw, secret, tok, err := gateway.NewTokenStore(rdb, gateway.TokenStoreConfig{Prefix: sf.prefix, SecretKeys: keys}).Create(ctx, spec)
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
			if t.Namespace != "" {
				redisCol += " ns:" + t.Namespace
			}
			if t.Signing {
				status += ",signing:" + dash(t.SecretKey) // the key the secrets are sealed with; - in clear
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
	f := newFlags("token "+sub, "token "+sub+" [flags] ID", e)
	var sf storeFlags
	var kf secretKeyFlags
	var natsURL string
	sf.register(f)
	kf.register(f)
	f.String(&natsURL, "nats-url", "", "NATS URL of the gateways: the change is announced there and running gateways apply it at once; empty: they notice within their token cache TTL (2s)")
	return f.Command(tokenByIDShort[sub], func(ctx context.Context, args []string) error {

		if len(args) != 1 {
			return fmt.Errorf("%w: give one token id (see tickstash token list)", errUsage)
		}
		id := args[0]
		keys, err := kf.load()
		if err != nil {
			return err
		}
		if sub == "rotate-secret" && keys == nil {
			return fmt.Errorf("%w: %v", errUsage, gateway.ErrNoSecretKey)
		}
		rdb, err := sf.connect(ctx)
		if err != nil {
			return err
		}
		defer rdb.Close()
		cfg := gateway.TokenStoreConfig{Prefix: sf.prefix, SecretKeys: keys}
		var nc *nats.Conn
		if natsURL != "" {
			// A NATS outage must not stop a revocation: the change is stored, and the
			// gateways' caches expire.
			if nc, err = nats.Connect(natsURL, nats.Name("tickstash token")); err != nil {
				fmt.Fprintf(e.stderr, "warning: nats at %s: %v: running gateways will notice within their token cache TTL (2s)\n", natsURL, err)
			} else {
				defer nc.Close()
				cfg.Publisher = nc
			}
		}
		store := gateway.NewTokenStore(rdb, cfg)
		var secret string
		if sub == "revoke" {
			err = store.Revoke(ctx, id)
		} else {
			secret, err = store.RotateSecret(ctx, id)
		}
		if err == nil && nc != nil {
			if ferr := nc.FlushTimeout(5 * time.Second); ferr != nil {
				err = fmt.Errorf("%w: %w", gateway.ErrTokenEventNotSent, ferr)
			}
		}
		announced := err == nil && nc != nil
		if errors.Is(err, gateway.ErrTokenEventNotSent) {
			fmt.Fprintf(e.stderr, "warning: %v: running gateways will notice within their token cache TTL (2s)\n", err)
			err = nil
		}
		if errors.Is(err, gateway.ErrTokenUnknown) || errors.Is(err, gateway.ErrInvalidTokenSpec) ||
			errors.Is(err, gateway.ErrSecretKey) {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		if err != nil {
			return err
		}
		if sub == "revoke" {
			fmt.Fprintf(e.stdout, "revoked %s\n", id)
		} else {
			fmt.Fprintf(e.stdout, "signing secret %s\n", secret)
			fmt.Fprintln(e.stderr, "The previous secret stays valid beside it until the next rotation.")
		}
		switch {
		case announced:
			fmt.Fprintln(e.stderr, "Announced to running gateways on NATS.")
		case natsURL == "":
			fmt.Fprintln(e.stderr, "Running gateways notice within their token cache TTL (2s); give --nats-url to tell them at once.")
		}
		return nil
	})
}

func tokenNewKey(e env) *ff.Command {
	f := newFlags("token new-key", "token new-key [--id ID]\n\n"+
		"Prints a new random AES-256 key as ID:BASE64, for --secret-key-file or $TICKSTASH_SECRET_KEY.\n"+
		"To rotate: put the new key on the file's first line with the old keys after it, restart\n"+
		"the gateways, run tickstash token reencrypt, then remove the old keys.", e)
	var id string
	f.String(&id, "id", "k"+time.Now().UTC().Format("20060102"), "the key's id, named in every secret it seals")
	return f.Command("print a new key for sealing signing secrets (--secret-key-file)", func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		k, err := gateway.NewSecretKey(id)
		if err != nil {
			return fmt.Errorf("%w: --id: %v", errUsage, err)
		}
		fmt.Fprintln(e.stdout, k)
		return nil
	})
}

func tokenReencrypt(e env) *ff.Command {
	f := newFlags("token reencrypt", "token reencrypt [flags]\n\n"+
		"Seals every stored signing secret with the current key, the first of --secret-key-file or\n"+
		"$TICKSTASH_SECRET_KEY (the others must still be there to open the old ones); secrets\n"+
		"stored in clear by older versions are sealed too. Running it again does nothing.", e)
	var sf storeFlags
	var kf secretKeyFlags
	sf.register(f)
	kf.register(f)
	return f.Command("seal every stored signing secret with the current (first) key", func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		keys, err := kf.load()
		if err != nil {
			return err
		}
		if keys == nil {
			return fmt.Errorf("%w: %v", errUsage, gateway.ErrNoSecretKey)
		}
		rdb, err := sf.connect(ctx)
		if err != nil {
			return err
		}
		defer rdb.Close()
		n, err := gateway.NewTokenStore(rdb, gateway.TokenStoreConfig{Prefix: sf.prefix, SecretKeys: keys}).Reseal(ctx)
		fmt.Fprintf(e.stdout, "resealed %d tokens with key %s\n", n, keys.Current())
		if err != nil {
			return fmt.Errorf("some tokens were not resealed (the others were): %w", err)
		}
		return nil
	})
}
