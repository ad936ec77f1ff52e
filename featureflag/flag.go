package featureflag

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/tickstash/tickstash/internal/jsonerr"
)

// ErrInvalid is wrapped when a flag definition does not validate; nothing is written.
var ErrInvalid = errors.New("flags: invalid definition")

// ErrNotFound is wrapped by Get and Delete when the flag is not defined.
var ErrNotFound = errors.New("flags: no such flag")

// Flag is a flag's definition. Evaluation for a user goes:
//
//  1. not Enabled: OffVariant;
//  2. the user's id is listed in Targets: that variant;
//  3. the first Rule whose condition holds on the user's attributes: its variant;
//  4. Rollout, when set: the variant whose share contains the user's bucket, a stable
//     hash of "<flag key>:<user id>" into 10 000 buckets, so a user keeps its variant as
//     long as the percentages do not change, and growing a share only adds users;
//  5. Fallthrough.
type Flag struct {
	// Key names the flag: 1-64 of a-z 0-9 . _ - starting with a letter or digit.
	Key         string `json:"key"`
	Description string `json:"description,omitempty"`
	Enabled     bool   `json:"enabled"`
	// Variants are the values the flag can take; empty means "off" and "on".
	Variants []string `json:"variants,omitempty"`
	// OffVariant is served when the flag is disabled; "" means "off" if it is a
	// variant, else the first variant.
	OffVariant string `json:"off_variant,omitempty"`
	// Targets maps a variant to the user ids that always get it.
	Targets map[string][]string `json:"targets,omitempty"`
	// Rules are tried in order.
	Rules []Rule `json:"rules,omitempty"`
	// Rollout splits the remaining users by share; the percentages add up to 100.
	Rollout []Share `json:"rollout,omitempty"`
	// Fallthrough is served when nothing above decides; "" means "on" if it is a
	// variant, else the last variant.
	Fallthrough string `json:"fallthrough,omitempty"`
}

// Rule serves Variant to users whose attribute Attribute satisfies Op against Values.
// Ops: "eq" and "in" (the value is one of Values), "neq" and "not_in" (none of them),
// "prefix", "suffix", "contains" (against any of Values). A missing attribute is "".
type Rule struct {
	Attribute string   `json:"attribute"`
	Op        string   `json:"op"`
	Values    []string `json:"values"`
	Variant   string   `json:"variant"`
}

// Share is one variant's part of a rollout, in percent with at most two decimals.
type Share struct {
	Variant string  `json:"variant"`
	Percent float64 `json:"percent"`
}

// MaxDefinitionBytes bounds a flag's JSON definition.
const MaxDefinitionBytes = 64 << 10

var keyRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidateKey returns an error wrapping ErrInvalid unless key is a valid flag key.
func ValidateKey(key string) error {
	if !keyRE.MatchString(key) {
		return fmt.Errorf("%w: key %q: want 1-64 of a-z 0-9 . _ - starting with a letter or digit", ErrInvalid, key)
	}
	return nil
}

// ParseFlag decodes a JSON definition strictly (unknown fields are errors), fills in the
// defaults and validates it. Errors wrap ErrInvalid.
func ParseFlag(b []byte) (Flag, error) {
	if len(b) > MaxDefinitionBytes {
		return Flag{}, fmt.Errorf("%w: %d bytes, limit %d", ErrInvalid, len(b), MaxDefinitionBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f Flag
	if err := dec.Decode(&f); err != nil {
		return Flag{}, fmt.Errorf("%w: %s", ErrInvalid, jsonerr.Describe(err))
	}
	if dec.More() {
		return Flag{}, fmt.Errorf("%w: trailing data after the definition", ErrInvalid)
	}
	if err := f.Normalize(); err != nil {
		return Flag{}, err
	}
	return f, nil
}

// Normalize fills in the defaults (Variants, OffVariant, Fallthrough) and validates the
// definition. Errors wrap ErrInvalid.
func (f *Flag) Normalize() error {
	if err := ValidateKey(f.Key); err != nil {
		return err
	}
	if len(f.Variants) == 0 {
		f.Variants = []string{"off", "on"}
	}
	seen := map[string]bool{}
	for _, v := range f.Variants {
		if v == "" || len(v) > 64 || strings.ContainsAny(v, " \t\r\n") {
			return fmt.Errorf("%w: %s: variant %q: want 1-64 characters without spaces", ErrInvalid, f.Key, v)
		}
		if seen[v] {
			return fmt.Errorf("%w: %s: variant %q repeated", ErrInvalid, f.Key, v)
		}
		seen[v] = true
	}
	if f.OffVariant == "" {
		f.OffVariant = f.Variants[0]
		if seen["off"] {
			f.OffVariant = "off"
		}
	}
	if f.Fallthrough == "" {
		f.Fallthrough = f.Variants[len(f.Variants)-1]
		if seen["on"] {
			f.Fallthrough = "on"
		}
	}
	check := func(what, v string) error {
		if !seen[v] {
			return fmt.Errorf("%w: %s: %s names variant %q, not one of %v", ErrInvalid, f.Key, what, v, f.Variants)
		}
		return nil
	}
	if err := check("off_variant", f.OffVariant); err != nil {
		return err
	}
	if err := check("fallthrough", f.Fallthrough); err != nil {
		return err
	}
	users := map[string]string{}
	for v, ids := range f.Targets {
		if err := check("targets", v); err != nil {
			return err
		}
		for _, id := range ids {
			if prev, ok := users[id]; ok && prev != v {
				return fmt.Errorf("%w: %s: user %q targeted by both %q and %q", ErrInvalid, f.Key, id, prev, v)
			}
			users[id] = v
		}
	}
	for i, r := range f.Rules {
		if r.Attribute == "" {
			return fmt.Errorf("%w: %s: rule %d: empty attribute", ErrInvalid, f.Key, i+1)
		}
		if !slices.Contains([]string{"eq", "in", "neq", "not_in", "prefix", "suffix", "contains"}, r.Op) {
			return fmt.Errorf("%w: %s: rule %d: op %q: want eq, in, neq, not_in, prefix, suffix or contains", ErrInvalid, f.Key, i+1, r.Op)
		}
		if len(r.Values) == 0 {
			return fmt.Errorf("%w: %s: rule %d: no values", ErrInvalid, f.Key, i+1)
		}
		if err := check(fmt.Sprintf("rule %d", i+1), r.Variant); err != nil {
			return err
		}
	}
	if len(f.Rollout) > 0 {
		total := 0
		for _, s := range f.Rollout {
			if err := check("rollout", s.Variant); err != nil {
				return err
			}
			bp := math.Round(s.Percent * 100)
			if s.Percent < 0 || s.Percent > 100 || math.Abs(bp-s.Percent*100) > 1e-6 || math.IsNaN(s.Percent) {
				return fmt.Errorf("%w: %s: rollout %s: %v%%: want 0 to 100 with at most two decimals", ErrInvalid, f.Key, s.Variant, s.Percent)
			}
			total += int(bp)
		}
		if total != buckets {
			return fmt.Errorf("%w: %s: rollout adds up to %.2f%%, want 100%%", ErrInvalid, f.Key, float64(total)/100)
		}
	}
	return nil
}

// buckets is the number of rollout buckets: shares have a resolution of 0.01%.
const buckets = 10_000

// Bucket returns the user's rollout bucket for a flag, in [0, 10000): FNV-1a (64 bit) of
// "<flag>:<user>" modulo 10 000. It is stable across processes and releases.
func Bucket(flag, user string) int {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(flag); i++ {
		h ^= uint64(flag[i])
		h *= prime
	}
	h ^= ':'
	h *= prime
	for i := 0; i < len(user); i++ {
		h ^= uint64(user[i])
		h *= prime
	}
	return int(h % buckets)
}

// compiled is a flag ready for evaluation without allocation.
type compiled struct {
	flag    Flag
	targets map[string]string
	rollout []cut // cumulative bucket bounds
}

type cut struct {
	below   int
	variant string
}

func compile(f Flag) *compiled {
	c := &compiled{flag: f, targets: map[string]string{}}
	for v, ids := range f.Targets {
		for _, id := range ids {
			c.targets[id] = v
		}
	}
	acc := 0
	for _, s := range f.Rollout {
		acc += int(math.Round(s.Percent * 100))
		c.rollout = append(c.rollout, cut{below: acc, variant: s.Variant})
	}
	return c
}

// User is who a flag is evaluated for.
type User struct {
	ID    string
	Attrs map[string]string
}

func (c *compiled) eval(u User) string {
	f := &c.flag
	if !f.Enabled {
		return f.OffVariant
	}
	if v, ok := c.targets[u.ID]; ok {
		return v
	}
	for i := range f.Rules {
		if f.Rules[i].matches(u.Attrs[f.Rules[i].Attribute]) {
			return f.Rules[i].Variant
		}
	}
	if len(c.rollout) > 0 {
		b := Bucket(f.Key, u.ID)
		for _, x := range c.rollout {
			if b < x.below {
				return x.variant
			}
		}
	}
	return f.Fallthrough
}

func (r *Rule) matches(a string) bool {
	switch r.Op {
	case "eq", "in":
		return slices.Contains(r.Values, a)
	case "neq", "not_in":
		return !slices.Contains(r.Values, a)
	}
	for _, v := range r.Values {
		switch {
		case r.Op == "prefix" && strings.HasPrefix(a, v),
			r.Op == "suffix" && strings.HasSuffix(a, v),
			r.Op == "contains" && strings.Contains(a, v):
			return true
		}
	}
	return false
}
