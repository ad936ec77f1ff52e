package market

import (
	"fmt"
	"strings"
	"time"
)

// Interval is a candle width. Only the widths in Intervals are valid; each divides a UTC
// day, so buckets aligned to the Unix epoch are aligned to midnight UTC as well.
type Interval time.Duration

// The supported candle intervals.
const (
	Interval1s  = Interval(time.Second)
	Interval1m  = Interval(time.Minute)
	Interval3m  = Interval(3 * time.Minute)
	Interval5m  = Interval(5 * time.Minute)
	Interval15m = Interval(15 * time.Minute)
	Interval30m = Interval(30 * time.Minute)
	Interval1h  = Interval(time.Hour)
	Interval4h  = Interval(4 * time.Hour)
	Interval1d  = Interval(24 * time.Hour)
)

// Intervals lists every supported interval, shortest first.
var Intervals = []Interval{
	Interval1s, Interval1m, Interval3m, Interval5m, Interval15m,
	Interval30m, Interval1h, Interval4h, Interval1d,
}

var intervalNames = map[Interval]string{
	Interval1s: "1s", Interval1m: "1m", Interval3m: "3m", Interval5m: "5m",
	Interval15m: "15m", Interval30m: "30m", Interval1h: "1h", Interval4h: "4h",
	Interval1d: "1d",
}

// ParseInterval parses one of 1s 1m 3m 5m 15m 30m 1h 4h 1d. Any other text is an error
// that lists the valid names.
func ParseInterval(s string) (Interval, error) {
	for iv, name := range intervalNames {
		if name == s {
			return iv, nil
		}
	}
	return 0, fmt.Errorf("market: unknown interval %q: want one of %s", s, intervalList())
}

// ParseIntervals parses a comma-separated list such as "1m,5m,1h", rejecting repeats,
// and returns the intervals shortest first.
func ParseIntervals(s string) ([]Interval, error) {
	seen := make(map[Interval]bool)
	for _, part := range strings.Split(s, ",") {
		iv, err := ParseInterval(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		if seen[iv] {
			return nil, fmt.Errorf("market: interval %s listed twice", iv)
		}
		seen[iv] = true
	}
	var out []Interval
	for _, iv := range Intervals {
		if seen[iv] {
			out = append(out, iv)
		}
	}
	return out, nil
}

func intervalList() string {
	names := make([]string, len(Intervals))
	for i, iv := range Intervals {
		names[i] = intervalNames[iv]
	}
	return strings.Join(names, " ")
}

// Validate reports whether iv is one of Intervals.
func (iv Interval) Validate() error {
	if _, ok := intervalNames[iv]; !ok {
		return fmt.Errorf("market: unsupported interval %s: want one of %s", time.Duration(iv), intervalList())
	}
	return nil
}

// String returns the short name ("1m"), or the duration for an unsupported value.
func (iv Interval) String() string {
	if name, ok := intervalNames[iv]; ok {
		return name
	}
	return time.Duration(iv).String()
}

// Duration returns iv as a time.Duration.
func (iv Interval) Duration() time.Duration { return time.Duration(iv) }

// Align returns the open time of the bucket that contains t: the largest multiple of iv
// since the Unix epoch that is not after t, in UTC. Times before 1970 align downward too.
func (iv Interval) Align(t time.Time) time.Time {
	d := int64(iv)
	ns := t.UnixNano()
	r := ns % d
	if r < 0 {
		r += d
	}
	return time.Unix(0, ns-r).UTC()
}

// MarshalText implements encoding.TextMarshaler with the short name.
func (iv Interval) MarshalText() ([]byte, error) {
	if err := iv.Validate(); err != nil {
		return nil, err
	}
	return []byte(iv.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseInterval.
func (iv *Interval) UnmarshalText(b []byte) error {
	v, err := ParseInterval(string(b))
	if err != nil {
		return err
	}
	*iv = v
	return nil
}
