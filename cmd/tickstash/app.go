package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/peterbourgon/ff/v4"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3"; otherwise it
// comes from the module's build information.
var version = ""

// env is the environment the command sees: real streams in main, buffers in tests.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

type command struct {
	name    string
	summary string
	// build returns the command's tree: its flags, subcommands and what it runs.
	build func(e env) *ff.Command
}

func commands() []command {
	return []command{
		{"run", "run every role in one process (embedded Redis and NATS unless URLs are given)", cmdRun},
		{"ingest", "run the ingest role alone: sources → candles → Redis", cmdIngest},
		{"analyze", "run the analysis worker role alone: indicator jobs from the Redis queue", cmdAnalyze},
		{"signals", "run the signals role alone; signals tail|entitle|permissions for bots and operators", cmdSignals},
		{"gateway", "run the HTTP gateway alone: /v1 API, Server-Sent Events, Upstash-compatible /redis", cmdGateway},
		{"jobs", "submit analysis jobs, show their status, list and retry dead ones", cmdJobs},
		{"backfill", "fetch candles from the exchanges' REST history into Redis, resumable and idempotent", cmdBackfill},
		{"replay", "feed capture files through the exchange decoders, into Redis or as JSON lines (--dry-run)", cmdReplay},
		{"books", "replay captures through the depth decoders and print each market's verified order book, offline", cmdBooks},
		{"candles", "aggregate normalized trade JSON lines into candle JSON lines, offline", cmdCandles},
		{"indicators", "compute technical indicators over an OHLCV CSV file, offline", cmdIndicators},
		{"leaderboard", "read a leaderboard: top BOARD, rank BOARD MEMBER", cmdLeaderboard},
		{"flags", "feature flags: set, get, list, eval, history", cmdFlags},
		{"token", "issue, list, revoke and rotate gateway tokens", cmdToken},
		{"audit", "print the gateway's audit stream (audit tail [--follow])", cmdAudit},
		{"bench", "how to run the benchmarks, which live in their own binary, tickstash-bench (runs it when installed)", cmdBench},
		{"version", "print the version", cmdVersion},
	}
}

// errUsage marks an error that is the caller's: exit status 2.
var errUsage = cli.ErrUsage

// exitError carries an exit status other than 1 for a command that did its work but
// must report failure (e.g. candles skipped malformed lines).
type exitError = cli.ExitError

// Main runs the tickstash command line and returns the process exit status.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := env{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) > 0 && args[0] == "help" { // tickstash help [command...]
		args = append(args[1:len(args):len(args)], "--help")
	}
	root := newFlags("", "<command> [flags] [args]\n\n"+
		"tickstash: a self-hosted market-data layer for trading bots.\n\n"+
		"Every flag can also be set by an environment variable, named after it:\n"+
		"--redis-url is TICKSTASH_REDIS_URL. Flags win over the environment.\n"+
		"Flags may come before or after a command's arguments.\n"+
		"Run 'tickstash <command> --help' for a command's flags.", e)
	var subs []*ff.Command
	for _, c := range commands() {
		cmd := c.build(e)
		cmd.ShortHelp = c.summary
		subs = append(subs, cmd)
	}
	noCommand := false
	tree := root.Command("", func(_ context.Context, args []string) error {
		if len(args) == 0 {
			noCommand = true
			return nil
		}
		return fmt.Errorf("%w: unknown command %q; run 'tickstash help' for the commands", errUsage, args[0])
	}, subs...)
	tree.Name = "tickstash"
	code := cli.Run(ctx, "tickstash", tree, args, stdout, stderr)
	if noCommand {
		root.WriteHelp(stderr, "tickstash", subs)
		return 2
	}
	return code
}

// flags is a command's flag set: every flag takes its default from a TICKSTASH_*
// environment variable and --help says so (see internal/cli).
type flags = cli.Flags

// newFlags returns the flag set of the command path name (e.g. "jobs submit"); synopsis
// is the usage line, then after a blank line the help paragraphs.
func newFlags(name, synopsis string, _ env) *flags {
	usage, long, _ := strings.Cut(synopsis, "\n\n")
	return cli.NewFlags(name, usage, long)
}

func envName(flagName string) string { return cli.EnvName(flagName) }

// redisURLForms is the one description of the forms of a Redis URL.
const redisURLForms = "redis://host:port/db, rediss:// for TLS, redis://h1:p1?addr=h2:p2 for Redis Cluster, ?master_name=M for Sentinel"

// registerRedisURL registers --redis-url, the flag of every command that talks to Redis:
// what says what the Redis holds.
func registerRedisURL(f *flags, p *string, def, what string) {
	f.String(p, "redis-url", def, what+": "+redisURLForms)
}

// registerStore registers --redis-url, defaulting to the local server, and --key-prefix:
// the flags of the commands that read or write tickstash's keys directly.
func registerStore(f *flags, url, prefix *string, what string) {
	registerRedisURL(f, url, "redis://127.0.0.1:6379/0", what)
	f.String(prefix, "key-prefix", cache.DefaultPrefix, "prefix of every Redis key tickstash writes")
}

// logConfig is the logging flags every long-running command has.
type logConfig struct {
	level  string
	format string
}

func (l *logConfig) register(f *flags) {
	f.String(&l.level, "log-level", "info", "log level: debug, info, warn or error")
	f.String(&l.format, "log-format", "text", "log format: text (for people) or json (for log shippers)")
}

func (l *logConfig) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, l.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch l.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w: --log-format %q: want text or json", errUsage, l.format)
}

func cmdVersion(e env) *ff.Command {
	f := newFlags("version", "version", e)
	return f.Command("", func(_ context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		fmt.Fprintln(e.stdout, "tickstash", versionString())
		return nil
	})
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		if v != "" {
			return v + " " + bi.GoVersion
		}
	}
	return "(devel)"
}
