package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/peterbourgon/ff/v4"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/internal/redisconn"
	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/signals"
)

//go:embed strategies.default.yaml
var defaultStrategies []byte

// signalsConfig is the signals role's flags, shared by run and signals.
type signalsConfig struct {
	strategies string
	maxAge     time.Duration
	maxBytes   int
	dupWindow  time.Duration
	ackWait    time.Duration
	stream     signals.StreamConfig
	loaded     []signals.Strategy
	// contract is the analyze role's (run) or own (signals alone).
	contract *analysisContract
	own      analysisContract
	columns  []string
	// skipped are the built-in strategies left out because the indicators do not feed them.
	skipped []string
}

// register registers the role's flags; shared is the analyze role's contract when both
// roles run in one process (nil: the role registers the contract's flags itself).
func (c *signalsConfig) register(f *flags, shared *analysisContract) {
	if shared == nil {
		c.own.register(f)
		shared = &c.own
	}
	c.contract = shared
	f.Duration(&c.ackWait, "signals-ack-wait", 30*time.Second, "how long an analysis update handed to a signals role may go unacknowledged before it is delivered again (bounds the delay after a role dies)")
	f.String(&c.strategies, "strategies", "", "strategy file (YAML or JSON) with the rules that turn analysis results into signals; empty means the built-in rsi-reversal, trend and breakout strategies (those --indicators feeds)")
	f.Duration(&c.maxAge, "signals-max-age", 7*24*time.Hour, "how long the JetStream stream keeps signals")
	f.Int(&c.maxBytes, "signals-max-bytes", 1<<30, "size bound of the signal stream; the oldest go first")
	f.Duration(&c.dupWindow, "signals-dup-window", 10*time.Minute, "window in which a republished signal id is dropped as a duplicate (covers the longest publish retry)")
	registerStream(f, &c.stream)
}

// registerStream registers the flags naming the JetStream signal stream.
func registerStream(f *flags, sc *signals.StreamConfig) {
	f.String(&sc.Stream, "signals-stream", signals.DefaultStream, "name of the JetStream stream of signals")
	f.String(&sc.SubjectPrefix, "signals-subject-prefix", signals.DefaultSubjectPrefix, "signals are published on <prefix>.<strategy>.<exchange>.<symbol>")
}

// check loads and validates the strategies, also against the analyzer's indicators, so
// a bad file stops start-up with its line.
func (c *signalsConfig) check() error {
	var err error
	if c.strategies == "" {
		if c.loaded, err = signals.ParseStrategies("built-in strategies", defaultStrategies); err != nil {
			return err
		}
	} else if c.loaded, err = signals.LoadStrategies(c.strategies); err != nil {
		return fmt.Errorf("%w: --strategies: %s", errUsage, strings.TrimPrefix(err.Error(), "signals: "))
	}
	switch {
	case c.maxAge <= 0:
		return fmt.Errorf("%w: --signals-max-age %v: want a positive duration", errUsage, c.maxAge)
	case c.dupWindow <= 0:
		return fmt.Errorf("%w: --signals-dup-window %v: want a positive duration", errUsage, c.dupWindow)
	case c.maxBytes <= 0:
		return fmt.Errorf("%w: --signals-max-bytes %d: want a positive size", errUsage, c.maxBytes)
	case c.ackWait <= 0:
		return fmt.Errorf("%w: --signals-ack-wait %v: want a positive duration", errUsage, c.ackWait)
	}
	if c.columns, err = c.contract.check(); err != nil {
		return err
	}
	if c.strategies != "" {
		return signals.CheckColumns(c.loaded, c.columns)
	}
	// Of the built-in strategies, run those the indicators feed.
	var fed []signals.Strategy
	for _, s := range c.loaded {
		if signals.CheckColumns([]signals.Strategy{s}, c.columns) == nil {
			fed = append(fed, s)
		} else {
			c.skipped = append(c.skipped, s.Name)
		}
	}
	if len(fed) == 0 {
		return fmt.Errorf("%w: none of the built-in strategies can fire with --indicators %q: add rsi:14 (rsi-reversal), macd:12,26,9 sma:20 sma:50 (trend) or bbands:20,2 (breakout), or give --strategies",
			errUsage, c.contract.indicators)
	}
	c.loaded = fed
	return nil
}

// role builds the distributor (creating or updating the stream) and the signals role.
func (c *signalsConfig) role(ctx context.Context, p *process, prefix string, store *cache.MarketStore) (*signals.Role, error) {
	dist, err := signals.NewDistributor(ctx, p.nc, signals.DistributorConfig{
		StreamConfig: c.stream, MaxAge: c.maxAge, MaxBytes: int64(c.maxBytes), Duplicates: c.dupWindow,
	}, p.log.With("role", "signals"), p.reg)
	if err != nil {
		return nil, err
	}
	if len(c.skipped) > 0 {
		p.log.Warn("built-in strategies left out: --indicators lacks their columns", "strategies", c.skipped, "indicators", c.contract.indicators)
	}
	return signals.NewRole(ctx, p.nc, p.rdb, dist, store, signals.RoleConfig{Strategies: c.loaded, Columns: c.columns,
		Stream: c.contract.stream, AckWait: c.ackWait, Prefix: prefix}, p.log.With("role", "signals"), p.reg)
}

func cmdSignals(e env) *ff.Command {
	f := newFlags("signals", "signals [flags] | signals tail|entitle|permissions|check [flags]\n\n"+
		"Without a subcommand, runs the signals role alone: evaluates the strategies' rules on\n"+
		"every analysis update (JetStream stream TS_ANALYSIS, durable consumer tickstash-signals,\n"+
		"acknowledged after the signals are stored) and publishes the signals on JetStream,\n"+
		"subjects ts.signals.<strategy>.<exchange>.<symbol>, each exactly once. Strategies whose\n"+
		"rules read a column the analyzer does not compute (--indicators) are refused.", e)
	var sc serverConfig
	var gc signalsConfig
	sc.register(f, false)
	gc.register(f, nil)
	return f.Command("", func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("%w: unknown subcommand %q: want tail, entitle, permissions or check", errUsage, args[0])
		}
		return runRoles(ctx, &sc, roles{signals: &gc}, false, e)
	}, cmdSignalsTail(e), cmdSignalsEntitle(e), cmdSignalsPermissions(e), cmdSignalsCheck(e))
}

func cmdSignalsCheck(e env) *ff.Command {
	f := newFlags("signals check", "signals check [--strategies FILE] [--indicators \"...\"]\n\n"+
		"Checks a strategy file as the signals role does at start-up, including that every rule reads\n"+
		"only columns the analyzer computes, and prints the strategies that would run.", e)
	var c signalsConfig
	f.String(&c.strategies, "strategies", "", "strategy file (YAML or JSON); empty means the built-in strategies")
	c.own.register(f)
	c.contract = &c.own
	return f.Command("check a strategy file against the analyzer's --indicators, starting nothing", func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		c.maxAge, c.dupWindow, c.maxBytes, c.ackWait = time.Hour, time.Minute, 1, time.Second // not checked here
		if err := c.check(); err != nil {
			return err
		}
		for _, s := range c.loaded {
			fmt.Fprintf(e.stdout, "ok  %s (%d rules)\n", s.Name, len(s.Rules))
		}
		for _, name := range c.skipped {
			fmt.Fprintf(e.stdout, "off %s: --indicators lacks its columns\n", name)
		}
		return nil
	})
}

func cmdSignalsTail(e env) *ff.Command {
	f := newFlags("signals tail", "signals tail [--strategy S] [--symbol X] [--from last|new|all]\n\n"+
		"Prints signals as JSON lines until interrupted: the newest (--from new), the last one of\n"+
		"every strategy and market first (--from last), or everything the stream holds (--from all).", e)
	var natsURL, strategy, symbol, from string
	var stream signals.StreamConfig
	f.String(&natsURL, "nats-url", "nats://127.0.0.1:4222", "NATS with the signal stream")
	registerStream(f, &stream)
	f.String(&strategy, "strategy", "", "only this strategy's signals")
	f.String(&symbol, "symbol", "", "only this market's signals, e.g. BTC-USDT")
	f.String(&from, "from", "new", "where to start: new, last or all")
	return f.Command("print signals as JSON lines, a bot in one command", func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		start, err := signals.ParseStartFrom(from)
		if err != nil {
			return fmt.Errorf("%w: --from %q: %v", errUsage, from, err)
		}
		var sym market.Symbol
		if symbol != "" {
			if sym, err = market.ParseSymbol(symbol); err != nil {
				return fmt.Errorf("%w: --symbol %q: %v", errUsage, symbol, err)
			}
		}
		nc, err := nats.Connect(natsURL, nats.Name("tickstash-signals-tail"))
		if err != nil {
			return fmt.Errorf("nats at %s: %w", natsURL, err)
		}
		defer nc.Close()
		return signals.Tail(ctx, nc, e.stdout, signals.TailOptions{StreamConfig: stream, Strategy: strategy, Symbol: sym, From: start})
	})
}

func cmdSignalsEntitle(e env) *ff.Command {
	f := newFlags("signals entitle", "signals entitle --user U --strategies S1,S2|'*' --symbols X,Y|'*' | --user U --revoke | --list\n\n"+
		"Both --strategies and --symbols are required to entitle: '*' grants all of them.", e)
	var redisURL, prefix, user, strats, syms string
	var revoke, list bool
	registerStore(f, &redisURL, &prefix, "Redis holding the entitlements")
	f.String(&user, "user", "", "the bot user")
	f.String(&strats, "strategies", "", "strategies the user may receive, comma-separated; '*' for all (required)")
	f.String(&syms, "symbols", "", "symbols the user may receive, comma-separated; '*' for all (required)")
	f.Bool(&revoke, "revoke", false, "remove the user's entitlement")
	f.Bool(&list, "list", false, "print every entitlement as JSON lines")
	return f.Command("set which strategies and symbols a user may receive", func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		if !list && user == "" {
			return fmt.Errorf("%w: --user is required (or --list)", errUsage)
		}
		ent := signals.Entitlement{User: user, Strategies: splitList(strats), Symbols: splitList(syms)}
		for i, s := range ent.Symbols {
			if s != signals.Any {
				sym, err := market.ParseSymbol(s)
				if err != nil {
					return fmt.Errorf("%w: --symbols: %v", errUsage, err)
				}
				ent.Symbols[i] = string(sym)
			}
		}
		if !list && !revoke {
			// An entitlement without strategies or symbols would be stored and allow nothing.
			if len(ent.Strategies) == 0 {
				return fmt.Errorf("%w: --strategies is required: list the strategies %s may receive (e.g. rsi-reversal,trend), or '*' for all", errUsage, user)
			}
			if len(ent.Symbols) == 0 {
				return fmt.Errorf("%w: --symbols is required: list the symbols %s may receive (e.g. BTC-USDT,ETH-USD), or '*' for all", errUsage, user)
			}
			if err := ent.Validate(); err != nil {
				return fmt.Errorf("%w: %v", errUsage, err)
			}
		}
		rdb, err := redisconn.Connect(ctx, redisURL)
		if err != nil {
			return err
		}
		defer rdb.Close()
		store := signals.NewEntitlementStore(rdb, signals.EntitlementConfig{Prefix: prefix})
		switch {
		case list:
			ents, err := store.List(ctx)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(e.stdout)
			for _, en := range ents {
				if err := enc.Encode(en); err != nil {
					return err
				}
			}
			return nil
		case revoke:
			return store.Delete(ctx, user)
		default:
			return store.Put(ctx, ent)
		}
	})
}

func cmdSignalsPermissions(e env) *ff.Command {
	f := newFlags("signals permissions", "signals permissions\n\n"+
		"Prints a nats-server `authorization { users = [...] }` block in which each entitled user may\n"+
		"create consumers only on the signal subjects it is entitled to (passwords left for you to fill).", e)
	var redisURL, prefix string
	registerStore(f, &redisURL, &prefix, "Redis holding the entitlements")
	return f.Command("print a nats-server authorization block enforcing the entitlements", func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		rdb, err := redisconn.Connect(ctx, redisURL)
		if err != nil {
			return err
		}
		defer rdb.Close()
		ents, err := signals.NewEntitlementStore(rdb, signals.EntitlementConfig{Prefix: prefix}).List(ctx)
		if err != nil {
			return err
		}
		users, err := signals.NATSPermissions(ents, signals.PermissionsConfig{})
		if err != nil {
			return err
		}
		conf, err := signals.NATSAuthorizationConf(users)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(e.stdout, conf)
		return err
	})
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
