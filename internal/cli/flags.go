package cli

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v4"
)

// EnvPrefix starts the environment variable of every flag: --redis-url is
// TICKSTASH_REDIS_URL.
const EnvPrefix = "TICKSTASH"

// EnvName returns the environment variable of the flag called name.
func EnvName(name string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Flags is the flag set of one command. It implements ff.Flags, so it is the Flags of an
// ff.Command, and adds what ff leaves to its callers: typed registration helpers whose
// errors name the flag and explain the value wanted, repeatable flags whose environment
// variable holds several values separated by spaces, flags and arguments in any order
// on a command without subcommands, and a --help that lists each flag's variable.
//
// Flags are written --name or -name (the standard library's convention, which ff keeps
// for a flag set adapted from one). A command's flags include those of its parent
// (SetParent), so flags shared by a group of subcommands are registered once.
type Flags struct {
	path     string // the command's words after the program, e.g. "jobs submit"
	synopsis string // the first line of --help after "Usage: <program> "
	long     string // the paragraphs after it
	std      *flag.FlagSet
	core     *ff.FlagSet // built from std on first use: flags are all registered by then
	parent   *Flags
	defs     []*flagDef
	// interleave lets flags follow positional arguments; set by Command for commands
	// without subcommands (with subcommands, the first argument names one).
	interleave bool
	lists      []*listValue
	cli        map[string]bool // flags set on the command line, not from the environment
	// passAll hands every argument to the command unparsed (PassArgs).
	passAll bool
}

// PassArgs makes the command take every argument as it is, flags and --help included:
// for a command that hands its arguments to another program.
func (f *Flags) PassArgs() { f.passAll = true }

var _ ff.Flags = (*Flags)(nil)

// flagDef is what --help says about a flag.
type flagDef struct {
	name, typ, usage, def string
}

// NewFlags returns the flag set of the command path (the words after the program name,
// e.g. "jobs submit"); synopsis is the usage line, long the help paragraphs (either may
// hold several lines).
func NewFlags(path, synopsis, long string) *Flags {
	std := flag.NewFlagSet(path, flag.ContinueOnError)
	std.SetOutput(io.Discard)
	return &Flags{path: path, synopsis: synopsis, long: long, std: std, cli: map[string]bool{}}
}

// Path returns the command's words after the program name.
func (f *Flags) Path() string { return f.path }

// SetParent makes the flags of parent valid on this command too (after it on the command
// line). It must be called before the flags are parsed.
func (f *Flags) SetParent(parent *Flags) *Flags {
	f.parent = parent
	return f
}

func (f *Flags) ff() *ff.FlagSet {
	if f.core == nil {
		f.core = ff.NewFlagSetFrom(f.path, f.std)
		if f.parent != nil {
			f.core.SetParent(f.parent.ff())
		}
	}
	return f.core
}

func (f *Flags) add(v flag.Value, name, typ, def, usage string) {
	if f.core != nil {
		panic("cli: flag --" + name + " registered after parsing began")
	}
	f.std.Var(v, name, usage)
	f.defs = append(f.defs, &flagDef{name: name, typ: typ, usage: usage, def: def})
}

// String registers a string flag.
func (f *Flags) String(p *string, name, def, usage string) {
	*p = def
	f.add(&stringValue{p}, name, "string", def, usage)
}

// Int registers an integer flag.
func (f *Flags) Int(p *int, name string, def int, usage string) {
	*p = def
	f.add(&intValue{name, p}, name, "int", zeroless(strconv.Itoa(def), "0"), usage)
}

// Float registers a number flag.
func (f *Flags) Float(p *float64, name string, def float64, usage string) {
	*p = def
	f.add(&floatValue{name, p}, name, "float", zeroless(strconv.FormatFloat(def, 'g', -1, 64), "0"), usage)
}

// Duration registers a duration flag (500ms, 2m, 1h30m).
func (f *Flags) Duration(p *time.Duration, name string, def time.Duration, usage string) {
	*p = def
	f.add(&durationValue{name, p}, name, "duration", zeroless(def.String(), "0s"), usage)
}

// Bool registers a boolean flag: --name, --name=false.
func (f *Flags) Bool(p *bool, name string, def bool, usage string) {
	*p = def
	f.add(&boolValue{name, p}, name, "", zeroless(strconv.FormatBool(def), "false"), usage)
}

// List registers a repeatable flag: each use adds a value, and the first replaces the
// default. Its environment variable holds the values separated by spaces.
func (f *Flags) List(p *[]string, name string, def []string, usage string) {
	*p = def
	v := &listValue{p: p}
	f.lists = append(f.lists, v)
	f.add(v, name, "value", strings.Join(def, " "), usage+" (repeatable; the variable takes values separated by spaces)")
}

func zeroless(s, zero string) string {
	if s == zero {
		return ""
	}
	return s
}

// Args returns the positional arguments left after parsing.
func (f *Flags) Args() []string { return f.ff().GetArgs() }

// SetOnCommandLine reports whether the flag called name, of this set, was given on the
// command line (not from the environment), before or after a subcommand.
func (f *Flags) SetOnCommandLine(name string) bool { return f.cli[name] }

// GetName implements ff.Flags.
func (f *Flags) GetName() string { return f.path }

// IsParsed implements ff.Flags.
func (f *Flags) IsParsed() bool { return f.ff().IsParsed() }

// WalkFlags implements ff.Flags: this set's flags, then its parents'.
func (f *Flags) WalkFlags(fn func(ff.Flag) error) error { return f.ff().WalkFlags(fn) }

// GetFlag implements ff.Flags.
func (f *Flags) GetFlag(name string) (ff.Flag, bool) { return f.ff().GetFlag(name) }

// GetArgs implements ff.Flags.
func (f *Flags) GetArgs() []string { return f.ff().GetArgs() }

// Parse implements ff.Flags: it parses the command line; ff then applies the environment
// to the flags the command line left unset.
func (f *Flags) Parse(args []string) error {
	args, err := f.permute(args)
	if err != nil {
		return err
	}
	core := f.ff()
	before := map[ff.Flag]bool{}
	_ = core.WalkFlags(func(fl ff.Flag) error {
		before[fl] = fl.IsSet()
		return nil
	})
	err = core.Parse(args)
	// What the command line set is recorded with the set that owns the flag (this one or
	// a parent), before ff applies the environment.
	_ = core.WalkFlags(func(fl ff.Flag) error {
		if fl.IsSet() && !before[fl] {
			name, _ := fl.GetLongName()
			for s := f; s != nil; s = s.parent {
				if fl.GetFlags() == ff.Flags(s.ff()) {
					s.cli[name] = true
				}
			}
		}
		return nil
	})
	for _, l := range f.lists {
		l.fromEnv = true // ff sets the rest from the environment: one variable, several values
	}
	return err
}

// lookup returns whether name is a flag of f or a parent, and whether it is boolean.
func (f *Flags) lookup(name string) (known, isBool bool) {
	for s := f; s != nil; s = s.parent {
		if fl := s.std.Lookup(name); fl != nil {
			b, ok := fl.Value.(interface{ IsBoolFlag() bool })
			return true, ok && b.IsBoolFlag()
		}
	}
	return false, false
}

// permute checks that every flag that takes a value has one (ff's own message would not
// name the flag) and, when f interleaves, moves the positional arguments after the flags
// ("--" between them), so flags may come before, between or after them, as in
// `leaderboard top BOARD --n 5`. A lone "-" (standard input) is positional; everything
// after "--" is too. Without interleaving, the first positional argument (a subcommand)
// and what follows it are left as they are.
func (f *Flags) permute(args []string) ([]string, error) {
	if f.passAll {
		return append([]string{"--"}, args...), nil
	}
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			if f.interleave {
				pos = append(pos, args[i+1:]...)
			} else {
				pos = append(pos, args[i:]...) // ff drops the "--"
			}
			break
		}
		if len(a) < 2 || a[0] != '-' {
			if !f.interleave {
				pos = append(pos, args[i:]...)
				break
			}
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		known, isBool := f.lookup(name)
		switch {
		case !known:
			// ff reports it
		case isBool:
			if i+1 < len(args) {
				if _, err := strconv.ParseBool(args[i+1]); err == nil {
					flags = append(flags, args[i+1]) // --json false
					i++
				}
			}
		case i+1 == len(args):
			return nil, fmt.Errorf("--%s: missing value", name)
		default:
			flags = append(flags, args[i+1])
			i++
		}
	}
	if !f.interleave {
		return append(flags, pos...), nil
	}
	return append(append(flags, "--"), pos...), nil
}

// WriteHelp writes the command's --help: usage, description, subcommands and flags,
// each flag with its environment variable.
func (f *Flags) WriteHelp(w io.Writer, program string, subcommands []*ff.Command) {
	fmt.Fprintf(w, "Usage: %s %s\n", program, f.synopsis)
	if f.long != "" {
		fmt.Fprintf(w, "\n%s\n", f.long)
	}
	if len(subcommands) > 0 {
		fmt.Fprint(w, "\nSubcommands:\n")
		for _, c := range subcommands {
			fmt.Fprintf(w, "  %-14s %s\n", c.Name, c.ShortHelp)
		}
	}
	var defs []*flagDef
	for s := f; s != nil; s = s.parent {
		defs = append(defs, s.defs...)
	}
	sort.SliceStable(defs, func(i, j int) bool { return defs[i].name < defs[j].name })
	if len(defs) == 0 {
		return
	}
	// The layout of the standard library's PrintDefaults, which scripts may parse.
	fmt.Fprint(w, "\nFlags (environment variable in brackets):\n")
	for _, d := range defs {
		line := "  -" + d.name
		if d.typ != "" {
			line += " " + d.typ
		}
		line += "\n    \t" + strings.ReplaceAll(d.usage, "\n", "\n    \t") + " [$" + EnvName(d.name) + "]"
		if d.def != "" {
			if d.typ == "string" {
				line += fmt.Sprintf(" (default %q)", d.def)
			} else {
				line += " (default " + d.def + ")"
			}
		}
		fmt.Fprintln(w, line)
	}
}

// ValueError is a flag value that does not parse: it names the flag, the value and what
// is wanted.
type ValueError struct {
	Flag, Value, Want string
	// Env is the environment variable the value came from, "" for the command line.
	Env string
}

func (e *ValueError) Error() string {
	if e.Env != "" {
		return fmt.Sprintf("$%s=%q: %s", e.Env, e.Value, e.Want)
	}
	return fmt.Sprintf("--%s %q: %s", e.Flag, e.Value, e.Want)
}

func valueError(name, value, want string) error {
	return &ValueError{Flag: name, Value: value, Want: want}
}

type stringValue struct{ p *string }

func (v *stringValue) Set(s string) error { *v.p = s; return nil }
func (v *stringValue) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return *v.p
}

type intValue struct {
	name string
	p    *int
}

func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return valueError(v.name, s, "not an integer")
	}
	*v.p = n
	return nil
}
func (v *intValue) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return strconv.Itoa(*v.p)
}

type floatValue struct {
	name string
	p    *float64
}

func (v *floatValue) Set(s string) error {
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return valueError(v.name, s, "not a number")
	}
	*v.p = n
	return nil
}
func (v *floatValue) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return strconv.FormatFloat(*v.p, 'g', -1, 64)
}

type durationValue struct {
	name string
	p    *time.Duration
}

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return valueError(v.name, s, "not a duration such as 500ms or 2m")
	}
	*v.p = d
	return nil
}
func (v *durationValue) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return v.p.String()
}

type boolValue struct {
	name string
	p    *bool
}

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return valueError(v.name, s, "want true or false")
	}
	*v.p = b
	return nil
}
func (v *boolValue) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return strconv.FormatBool(*v.p)
}
func (v *boolValue) IsBoolFlag() bool { return true }

// listValue is a repeatable flag. On the command line each use adds one value; from the
// environment (fromEnv, after the command line is parsed) one variable holds several,
// separated by spaces.
type listValue struct {
	p       *[]string
	seen    bool
	fromEnv bool
}

func (v *listValue) Set(s string) error {
	if v.fromEnv {
		*v.p = strings.Fields(s)
		return nil
	}
	if !v.seen {
		*v.p, v.seen = nil, true // the first use replaces the default
	}
	*v.p = append(*v.p, s)
	return nil
}
func (v *listValue) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return strings.Join(*v.p, " ")
}
