// Package cli is the command-line layer shared by tickstash's commands: flag sets with
// TICKSTASH_* environment variables over github.com/peterbourgon/ff/v4, --help at every
// level of a command tree, and one way to turn errors into messages and exit statuses.
//
//	f := cli.NewFlags("jobs dead", "jobs dead [--n 20]", "Lists dead-lettered jobs.")
//	f.Int(&n, "n", 20, "how many to list")
//	cmd := f.Command("list dead-lettered jobs", func(ctx context.Context, args []string) error { ... })
//	os.Exit(cli.Run(ctx, "tickstash", root, os.Args[1:], os.Stdout, os.Stderr))
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/peterbourgon/ff/v4"
)

// ErrUsage marks an error that is the caller's (a bad flag or argument): exit status 2,
// with a pointer to --help.
var ErrUsage = errors.New("usage")

// ExitError carries an exit status other than 1 for a command that did its work but must
// report failure (e.g. candles skipped malformed lines). An empty Msg prints nothing (the
// failure was reported already).
type ExitError struct {
	Code int
	Msg  string
}

func (e *ExitError) Error() string { return e.Msg }

// Usagef returns an error wrapping ErrUsage.
func Usagef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, args...))
}

// Command returns the ff.Command whose flags are f, named after the last word of f's
// path. A command without subcommands takes its flags anywhere among its arguments; a
// command with subcommands takes its own flags before the subcommand's name, and its
// flags are valid after it too when the subcommand's Flags has it as parent. exec may be
// nil for a command that only groups subcommands: it then asks for one.
func (f *Flags) Command(short string, exec func(ctx context.Context, args []string) error, subcommands ...*ff.Command) *ff.Command {
	name := f.path
	if i := strings.LastIndexByte(name, ' '); i >= 0 {
		name = name[i+1:]
	}
	f.interleave = len(subcommands) == 0
	if exec == nil {
		exec = func(_ context.Context, args []string) error {
			var names []string
			for _, c := range subcommands {
				names = append(names, c.Name)
			}
			if len(args) == 0 {
				return Usagef("name a subcommand: %s", strings.Join(names, ", "))
			}
			return Usagef("unknown subcommand %q: want %s", args[0], strings.Join(names, ", "))
		}
	}
	return &ff.Command{Name: name, ShortHelp: short, Usage: f.synopsis, LongHelp: f.long, Flags: f, Subcommands: subcommands, Exec: exec}
}

// Run parses args against the command tree root (environment variables included), runs
// the selected command and returns the exit status: 0 on success and for --help (the
// help goes to stdout), 2 for usage errors, ExitError's code, 1 for other errors (the
// message goes to stderr, prefixed by the program and command).
func Run(ctx context.Context, program string, root *ff.Command, args []string, stdout, stderr io.Writer) int {
	err := root.Parse(args, ff.WithEnvVarPrefix(EnvPrefix))
	sel := root.GetSelected()
	if sel == nil {
		sel = root
	}
	flags, _ := sel.Flags.(*Flags)
	where := program
	if flags != nil && flags.path != "" {
		where += " " + flags.path
	}
	if errors.Is(err, ff.ErrHelp) {
		if flags != nil {
			flags.WriteHelp(stdout, program, sel.Subcommands)
		}
		return 0
	}
	if err != nil {
		err = fmt.Errorf("%w: %s", ErrUsage, parseMessage(err))
	} else if err = strayFlags(root, sel); err == nil {
		err = root.Run(ctx)
	}
	var ee *ExitError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrUsage):
		fmt.Fprintf(stderr, "%s: %s\nRun '%s --help' for its flags.\n", where, strings.TrimPrefix(err.Error(), "usage: "), where)
		return 2
	case errors.As(err, &ee):
		if ee.Msg != "" {
			fmt.Fprintf(stderr, "%s: %s\n", where, ee.Msg)
		}
		return ee.Code
	default:
		fmt.Fprintf(stderr, "%s: %v\n", where, err)
		return 1
	}
}

// parseMessage turns ff's parse error into one that names the flag and its value.
func parseMessage(err error) string {
	var ve *ValueError
	if errors.As(err, &ve) {
		if strings.Contains(err.Error(), "parse environment: ") {
			cp := *ve
			cp.Env = EnvName(ve.Flag)
			return cp.Error()
		}
		return ve.Error()
	}
	msg := err.Error()
	for _, sep := range []string{"parse args: ", "parse environment: "} {
		if i := strings.LastIndex(msg, sep); i >= 0 {
			msg = msg[i+len(sep):]
		}
	}
	if errors.Is(err, ff.ErrUnknownFlag) {
		name := strings.Trim(strings.TrimPrefix(msg, ff.ErrUnknownFlag.Error()+" "), `"`)
		return fmt.Sprintf("unknown flag --%s", name)
	}
	return msg
}

// strayFlags refuses flags given on the command line to a command that then handed over
// to a subcommand which does not share them: they would do nothing.
func strayFlags(root, sel *ff.Command) error {
	selFlags, _ := sel.Flags.(*Flags)
	for c := sel.GetParent(); c != nil; c = c.GetParent() {
		cf, ok := c.Flags.(*Flags)
		if !ok || len(cf.cli) == 0 {
			continue
		}
		shared := false
		for s := selFlags; s != nil; s = s.parent {
			shared = shared || s == cf
		}
		if shared {
			continue
		}
		for name := range cf.cli {
			return Usagef("--%s is a flag of %q, not of %q: give it after %s or drop it", name, cf.path, selFlags.path, sel.Name)
		}
	}
	return nil
}
