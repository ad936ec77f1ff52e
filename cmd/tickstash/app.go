package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
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
	run     func(ctx context.Context, args []string, e env) error
}

func commands() []command {
	return []command{
		{"run", "run every role in one process (embedded Redis and NATS unless URLs are given)", cmdRun},
		{"ingest", "run the ingest role alone: sources → candles → Redis", cmdIngest},
		{"analyze", "run the analysis worker role alone: indicator jobs from the Redis queue", cmdAnalyze},
		{"signals", "run the signals role alone; signals tail|entitle|permissions for bots and operators", cmdSignals},
		{"gateway", "run the HTTP gateway alone: /v1 API, Server-Sent Events, Upstash-compatible /redis", cmdGateway},
		{"jobs", "submit analysis jobs, show their status, list and retry dead ones", cmdJobs},
		{"replay", "feed capture files through the exchange decoders, into Redis or as JSON lines (--dry-run)", cmdReplay},
		{"candles", "aggregate normalized trade JSON lines into candle JSON lines, offline", cmdCandles},
		{"indicators", "compute technical indicators over an OHLCV CSV file, offline", cmdIndicators},
		{"leaderboard", "read a leaderboard: top BOARD, rank BOARD MEMBER", cmdLeaderboard},
		{"flags", "feature flags: set, get, list, eval, history", cmdFlags},
		{"token", "issue, list, revoke and rotate gateway tokens", cmdToken},
		{"audit", "print the gateway's audit stream (audit tail [--follow])", cmdAudit},
		{"bench", "measure tickstash beside a reference on the real servers: ingest, replay, queue, ratelimit, signals, gateway, leaderboard", cmdBench},
		{"version", "print the version", cmdVersion},
	}
}

// errUsage marks an error that is the caller's: exit status 2.
var errUsage = errors.New("usage")

// exitError carries an exit status other than 1 for a command that did its work but
// must report failure (e.g. candles skipped malformed lines).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// Main runs the tickstash command line and returns the process exit status.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := env{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		if len(args) > 1 {
			return Main(ctx, []string{args[1], "--help"}, stdin, stdout, stderr)
		}
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], e)
		var ee *exitError
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "tickstash %s: %v\nRun 'tickstash %s --help' for its flags.\n", c.name, err, c.name)
			return 2
		case errors.As(err, &ee):
			fmt.Fprintf(stderr, "tickstash %s: %v\n", c.name, ee.msg)
			return ee.code
		default:
			fmt.Fprintf(stderr, "tickstash %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "tickstash: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `tickstash: a self-hosted market-data layer for trading bots.

Usage: tickstash <command> [flags] [args]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Every flag can also be set by an environment variable, named after it:
--redis-url is TICKSTASH_REDIS_URL. Flags win over the environment.
Run 'tickstash <command> --help' for a command's flags.
`)
}

// flags wraps a flag.FlagSet so that every flag takes its default from a TICKSTASH_*
// environment variable and says so in --help.
type flags struct {
	fs     *flag.FlagSet
	envErr []error
}

func newFlags(name, synopsis string, e env) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	f := &flags{fs: fs}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: tickstash %s\n\nFlags (environment variable in brackets):\n", synopsis)
		fs.PrintDefaults()
	}
	return f
}

func envName(flagName string) string {
	return "TICKSTASH_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (f *flags) fromEnv(name string) (string, bool) {
	return os.LookupEnv(envName(name))
}

func (f *flags) help(name, usage string) string { return usage + " [$" + envName(name) + "]" }

func (f *flags) String(p *string, name, def, usage string) {
	if v, ok := f.fromEnv(name); ok {
		def = v
	}
	f.fs.StringVar(p, name, def, f.help(name, usage))
}

func (f *flags) Int(p *int, name string, def int, usage string) {
	if v, ok := f.fromEnv(name); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			f.envErr = append(f.envErr, fmt.Errorf("$%s=%q: not an integer", envName(name), v))
		} else {
			def = n
		}
	}
	f.fs.IntVar(p, name, def, f.help(name, usage))
}

func (f *flags) Float(p *float64, name string, def float64, usage string) {
	if v, ok := f.fromEnv(name); ok {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			f.envErr = append(f.envErr, fmt.Errorf("$%s=%q: not a number", envName(name), v))
		} else {
			def = n
		}
	}
	f.fs.Float64Var(p, name, def, f.help(name, usage))
}

func (f *flags) Duration(p *time.Duration, name string, def time.Duration, usage string) {
	if v, ok := f.fromEnv(name); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			f.envErr = append(f.envErr, fmt.Errorf("$%s=%q: not a duration such as 500ms or 2m", envName(name), v))
		} else {
			def = d
		}
	}
	f.fs.DurationVar(p, name, def, f.help(name, usage))
}

func (f *flags) Bool(p *bool, name string, def bool, usage string) {
	if v, ok := f.fromEnv(name); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			f.envErr = append(f.envErr, fmt.Errorf("$%s=%q: want true or false", envName(name), v))
		} else {
			def = b
		}
	}
	f.fs.BoolVar(p, name, def, f.help(name, usage))
}

// List registers a repeatable flag; the environment variable holds its values separated
// by spaces.
func (f *flags) List(p *[]string, name string, def []string, usage string) {
	if v, ok := f.fromEnv(name); ok {
		def = strings.Fields(v)
	}
	*p = def
	seen := false
	f.fs.Func(name, f.help(name, usage+" (repeatable; the variable takes values separated by spaces)"), func(s string) error {
		if !seen {
			*p, seen = nil, true // the first flag replaces the default
		}
		*p = append(*p, s)
		return nil
	})
}

// Parse parses args and reports a bad environment variable as a usage error.
func (f *flags) Parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if len(f.envErr) > 0 {
		return fmt.Errorf("%w: %w", errUsage, errors.Join(f.envErr...))
	}
	return nil
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

func cmdVersion(_ context.Context, args []string, e env) error {
	f := newFlags("version", "version", e)
	if err := f.Parse(args); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "tickstash", versionString())
	return nil
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
