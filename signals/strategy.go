package signals

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tickstash/tickstash/market"
)

// ErrStrategyFile is wrapped by every error of LoadStrategies and ParseStrategies.
var ErrStrategyFile = errors.New("signals: invalid strategy file")

// StrategyError is a problem in a strategy file, at a line.
type StrategyError struct {
	File   string
	Line   int // 1-based; 0 when the file as a whole is at fault
	Reason string
}

func (e *StrategyError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("signals: %s:%d: %s", e.File, e.Line, e.Reason)
	}
	return fmt.Sprintf("signals: %s: %s", e.File, e.Reason)
}

// Unwrap makes errors.Is(err, ErrStrategyFile) true.
func (e *StrategyError) Unwrap() error { return ErrStrategyFile }

// Strategy is a named set of rules and the markets and intervals they apply to.
type Strategy struct {
	// Name is a NATS subject token: 1 to 64 of [a-z0-9_-].
	Name string
	// Exchanges and Symbols restrict the markets; empty means every one.
	Exchanges []market.Exchange
	Symbols   []market.Symbol
	// Intervals the strategy runs on; at least one.
	Intervals []market.Interval
	// Rules vote on every analysis update; see Evaluate.
	Rules []Rule
	// File and Line say where the strategy starts (set by ParseStrategies).
	File string
	Line int
}

// AppliesTo reports whether the strategy runs on the market and interval.
func (s *Strategy) AppliesTo(ex market.Exchange, sym market.Symbol, iv market.Interval) bool {
	return (len(s.Exchanges) == 0 || slices.Contains(s.Exchanges, ex)) &&
		(len(s.Symbols) == 0 || slices.Contains(s.Symbols, sym)) &&
		slices.Contains(s.Intervals, iv)
}

// Columns returns the analysis columns the strategy's rules read, sorted, without
// repeats.
func (s *Strategy) Columns() []string {
	var cols []string
	for i := range s.Rules {
		cols = append(cols, s.Rules[i].Columns()...)
	}
	slices.Sort(cols)
	return slices.Compact(cols)
}

// CheckColumns reports the rules that read an analysis column outside columns (those
// the analyzer computes: indicator.Spec.Columns of its indicators). Such a rule never
// votes, so its strategy may never fire. The error joins one *StrategyError per rule,
// naming the strategy, the rule, its line, the missing columns and the indicator to add
// to the analyzer (--indicators); it wraps ErrStrategyFile. nil means every rule is fed.
func CheckColumns(strategies []Strategy, columns []string) error {
	have := map[string]bool{}
	for _, c := range columns {
		have[c] = true
	}
	var errs []error
	for _, s := range strategies {
		for i := range s.Rules {
			r := &s.Rules[i]
			var missing []string
			for _, c := range r.Columns() {
				if !have[c] {
					missing = append(missing, c)
				}
			}
			if len(missing) == 0 {
				continue
			}
			errs = append(errs, &StrategyError{File: s.File, Line: r.Line, Reason: fmt.Sprintf(
				"strategy %q, rule %s reads %s, which the analyzer does not compute, so the rule would never fire: add %s to the analyzer's --indicators (of tickstash analyze/run, and the same list to tickstash signals), or change the rule",
				s.Name, r.Name(), strings.Join(missing, " and "), strings.Join(r.Indicators(), " "))})
		}
	}
	return errors.Join(errs...)
}

// LoadStrategies reads and parses a strategy file (see ParseStrategies). Errors name the
// file and, for its content, the line; they wrap ErrStrategyFile.
func LoadStrategies(path string) ([]Strategy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &StrategyError{File: path, Reason: err.Error()}
	}
	return ParseStrategies(path, data)
}

// ParseStrategies parses a strategy file; name is used in errors. The file is YAML (JSON,
// a subset of YAML, works too):
//
//	strategies:
//	  - name: rsi-reversal          # [a-z0-9_-], unique
//	    exchanges: [binance]        # optional; empty: every exchange
//	    symbols: [BTC-USDT]         # optional; empty: every symbol
//	    intervals: [1m, 5m]         # required
//	    rules:
//	      - type: rsi               # RSI crosses up through lower: buy; down through upper: sell
//	        period: 14              # column rsi_14
//	        lower: 30
//	        upper: 70
//	      - type: macd              # MACD crosses above its signal line: buy; below: sell
//	        fast: 12
//	        slow: 26
//	        signal: 9               # columns macd_12_26_9, macd_signal_12_26_9
//	      - type: bbands            # close moves below the lower band: buy; above the upper: sell
//	        period: 20
//	        dev: 2                  # columns bbands_upper_20_2, bbands_lower_20_2
//	      - type: sma_cross         # fast average crosses above the slow one: buy; below: sell
//	        fast: 20
//	        slow: 50                # columns sma_20, sma_50 (ma: ema for ema_20, ema_50)
//	        weight: 2               # optional, default 1
//
// Omitted periods take the defaults shown. Unknown keys, unknown intervals or rule
// types, malformed symbols, repeated names and out-of-range parameters are errors of
// type *StrategyError giving the line, wrapping ErrStrategyFile. A file with no
// strategies is an error too.
func ParseStrategies(name string, data []byte) ([]Strategy, error) {
	p := &parser{file: name}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, p.yamlError(err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &StrategyError{File: name, Reason: "empty file: want a mapping with a strategies list"}
	}
	root := doc.Content[0]
	var list *yaml.Node
	err := p.mapping(root, "the file", func(key string, v *yaml.Node) error {
		if key != "strategies" {
			return p.errf(v, "unknown key %q: want strategies", key)
		}
		list = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	if list == nil {
		return nil, p.errf(root, "no strategies key")
	}
	if list.Kind != yaml.SequenceNode || len(list.Content) == 0 {
		return nil, p.errf(list, "strategies: want a non-empty list")
	}
	var out []Strategy
	seen := map[string]int{}
	for _, n := range list.Content {
		s, err := p.strategy(n)
		if err != nil {
			return nil, err
		}
		if line, ok := seen[s.Name]; ok {
			return nil, p.errf(n, "strategy %q is already defined at line %d", s.Name, line)
		}
		seen[s.Name] = s.Line
		out = append(out, s)
	}
	return out, nil
}

type parser struct{ file string }

func (p *parser) errf(n *yaml.Node, format string, args ...any) error {
	return &StrategyError{File: p.file, Line: n.Line, Reason: fmt.Sprintf(format, args...)}
}

// yamlError turns a yaml.v3 syntax error ("yaml: line 3: ...") into a StrategyError.
func (p *parser) yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, reason, ok := strings.Cut(rest, ": "); ok {
			if n, convErr := strconv.Atoi(num); convErr == nil {
				line, msg = n, reason
			}
		}
	}
	return &StrategyError{File: p.file, Line: line, Reason: msg}
}

// mapping calls f for each key of a mapping node, rejecting repeated keys.
func (p *parser) mapping(n *yaml.Node, what string, f func(key string, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return p.errf(n, "%s: want a mapping", what)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return p.errf(k, "%s: keys must be plain names", what)
		}
		if seen[k.Value] {
			return p.errf(k, "%s: key %q repeated", what, k.Value)
		}
		seen[k.Value] = true
		if err := f(k.Value, v); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) scalar(n *yaml.Node, key string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", p.errf(n, "%s: want a single value", key)
	}
	return n.Value, nil
}

func (p *parser) list(n *yaml.Node, key string) ([]*yaml.Node, error) {
	switch n.Kind {
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return nil, p.errf(c, "%s: want a list of values", key)
			}
		}
		return n.Content, nil
	case yaml.ScalarNode:
		return []*yaml.Node{n}, nil
	}
	return nil, p.errf(n, "%s: want a list", key)
}

func (p *parser) integer(n *yaml.Node, key string, lo, hi int) (int, error) {
	s, err := p.scalar(n, key)
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, p.errf(n, "%s: %q is not a whole number from %d to %d", key, s, lo, hi)
	}
	return v, nil
}

func (p *parser) number(n *yaml.Node, key string) (float64, error) {
	s, err := p.scalar(n, key)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, p.errf(n, "%s: %q is not a finite number", key, s)
	}
	return v, nil
}

func (p *parser) strategy(n *yaml.Node) (Strategy, error) {
	s := Strategy{File: p.file, Line: n.Line}
	var rules *yaml.Node
	err := p.mapping(n, "strategy", func(key string, v *yaml.Node) error {
		switch key {
		case "name":
			name, err := p.scalar(v, key)
			if err != nil {
				return err
			}
			if err := market.ValidateStrategyName(name); err != nil {
				return p.errf(v, "name %q: want 1 to 64 of a-z, 0-9, '-' and '_'", name)
			}
			s.Name = name
		case "exchanges":
			items, err := p.list(v, key)
			if err != nil {
				return err
			}
			for _, it := range items {
				ex := market.Exchange(it.Value)
				if err := ex.Validate(); err != nil {
					return p.errf(it, "exchanges: %v", err)
				}
				s.Exchanges = append(s.Exchanges, ex)
			}
		case "symbols":
			items, err := p.list(v, key)
			if err != nil {
				return err
			}
			for _, it := range items {
				sym, err := market.ParseSymbol(it.Value)
				if err != nil {
					return p.errf(it, "symbols: %v", err)
				}
				s.Symbols = append(s.Symbols, sym)
			}
		case "intervals":
			items, err := p.list(v, key)
			if err != nil {
				return err
			}
			for _, it := range items {
				iv, err := market.ParseInterval(it.Value)
				if err != nil {
					return p.errf(it, "intervals: %v", err)
				}
				if slices.Contains(s.Intervals, iv) {
					return p.errf(it, "intervals: %s listed twice", iv)
				}
				s.Intervals = append(s.Intervals, iv)
			}
		case "rules":
			rules = v
		default:
			return p.errf(v, "strategy: unknown key %q: want name, exchanges, symbols, intervals or rules", key)
		}
		return nil
	})
	if err != nil {
		return Strategy{}, err
	}
	if s.Name == "" {
		return Strategy{}, p.errf(n, "strategy without a name")
	}
	if len(s.Intervals) == 0 {
		return Strategy{}, p.errf(n, "strategy %q: no intervals", s.Name)
	}
	if rules == nil || rules.Kind != yaml.SequenceNode || len(rules.Content) == 0 {
		at := n
		if rules != nil {
			at = rules
		}
		return Strategy{}, p.errf(at, "strategy %q: want a non-empty list of rules", s.Name)
	}
	for i, rn := range rules.Content {
		r, err := p.rule(rn, fmt.Sprintf("strategy %q rule %d", s.Name, i+1))
		if err != nil {
			return Strategy{}, err
		}
		s.Rules = append(s.Rules, r)
	}
	return s, nil
}

func (p *parser) rule(n *yaml.Node, what string) (Rule, error) {
	r := Rule{Weight: 1, Line: n.Line}
	var kind string
	set := map[string]*yaml.Node{}
	err := p.mapping(n, what, func(key string, v *yaml.Node) error {
		if key == "type" {
			s, err := p.scalar(v, key)
			kind = s
			return err
		}
		set[key] = v
		return nil
	})
	if err != nil {
		return Rule{}, err
	}
	allowed := map[string][]string{
		"rsi":       {"period", "lower", "upper"},
		"macd":      {"fast", "slow", "signal"},
		"bbands":    {"period", "dev"},
		"sma_cross": {"fast", "slow", "ma"},
	}
	keys, ok := allowed[kind]
	if !ok {
		return Rule{}, p.errf(n, "%s: type %q: want rsi, macd, bbands or sma_cross", what, kind)
	}
	keys = append(keys, "weight")
	for k, v := range set {
		if !slices.Contains(keys, k) {
			return Rule{}, p.errf(v, "%s: unknown key %q for type %s: want %s", what, k, kind, strings.Join(keys, ", "))
		}
	}
	intOr := func(key string, def int) (int, error) {
		if v, ok := set[key]; ok {
			return p.integer(v, what+": "+key, 2, 100000)
		}
		return def, nil
	}
	numOr := func(key string, def float64) (float64, error) {
		if v, ok := set[key]; ok {
			return p.number(v, what+": "+key)
		}
		return def, nil
	}
	var errs []error
	get := func(dst *int, key string, def int) {
		v, err := intOr(key, def)
		errs = append(errs, err)
		*dst = v
	}
	getf := func(dst *float64, key string, def float64) {
		v, err := numOr(key, def)
		errs = append(errs, err)
		*dst = v
	}
	getf(&r.Weight, "weight", 1)
	switch kind {
	case "rsi":
		r.Kind = RSICross
		get(&r.Period, "period", 14)
		getf(&r.Lower, "lower", 30)
		getf(&r.Upper, "upper", 70)
	case "macd":
		r.Kind = MACDCross
		get(&r.Fast, "fast", 12)
		get(&r.Slow, "slow", 26)
		get(&r.Signal, "signal", 9)
	case "bbands":
		r.Kind = BBandsBreak
		get(&r.Period, "period", 20)
		getf(&r.Dev, "dev", 2)
	case "sma_cross":
		r.Kind = MACross
		r.MA = "sma"
		get(&r.Fast, "fast", 20)
		get(&r.Slow, "slow", 50)
		if v, ok := set["ma"]; ok {
			s, err := p.scalar(v, "ma")
			if err != nil {
				return Rule{}, err
			}
			if s != "sma" && s != "ema" && s != "wma" {
				return Rule{}, p.errf(v, "%s: ma %q: want sma, ema or wma", what, s)
			}
			r.MA = s
		}
	}
	if err := errors.Join(errs...); err != nil {
		var se *StrategyError
		errors.As(err, &se)
		return Rule{}, se
	}
	at := func(key string) *yaml.Node {
		if v, ok := set[key]; ok {
			return v
		}
		return n
	}
	switch {
	case r.Weight <= 0:
		return Rule{}, p.errf(at("weight"), "%s: weight %v must be positive", what, r.Weight)
	case r.Kind == RSICross && !(0 < r.Lower && r.Lower < r.Upper && r.Upper < 100):
		return Rule{}, p.errf(at("lower"), "%s: want 0 < lower (%v) < upper (%v) < 100", what, r.Lower, r.Upper)
	case (r.Kind == MACDCross || r.Kind == MACross) && r.Fast >= r.Slow:
		return Rule{}, p.errf(at("fast"), "%s: fast period %d must be below slow period %d", what, r.Fast, r.Slow)
	case r.Kind == BBandsBreak && !(r.Dev > 0 && r.Dev <= 10):
		return Rule{}, p.errf(at("dev"), "%s: dev %v: want more than 0 and at most 10", what, r.Dev)
	}
	return r, nil
}
