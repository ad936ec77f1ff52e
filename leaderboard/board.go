package leaderboard

import (
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"
)

// Window is the span of time a board's values accumulate over. Windowed boards are
// separate keys per period, aligned to UTC: a day starts at 00:00 UTC, a week on Monday
// 00:00 UTC, a month on its first day.
type Window uint8

// The windows.
const (
	AllTime Window = iota
	Day
	Week
	Month
)

// AllWindows lists every window.
var AllWindows = []Window{AllTime, Day, Week, Month}

// String returns "all", "day", "week" or "month".
func (w Window) String() string {
	switch w {
	case AllTime:
		return "all"
	case Day:
		return "day"
	case Week:
		return "week"
	case Month:
		return "month"
	}
	return fmt.Sprintf("window(%d)", uint8(w))
}

// ParseWindow parses "all" (also "all-time", ""), "day", "week" or "month".
func ParseWindow(s string) (Window, error) {
	switch s {
	case "", "all", "all-time", "alltime":
		return AllTime, nil
	case "day":
		return Day, nil
	case "week":
		return Week, nil
	case "month":
		return Month, nil
	}
	return 0, fmt.Errorf("leaderboard: window %q: want all, day, week or month", s)
}

// bounds returns the period of w that contains t: its start, its end and a bucket name
// for keys ("" for AllTime).
func (w Window) bounds(t time.Time) (start, end time.Time, bucket string) {
	t = t.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	switch w {
	case Day:
		return day, day.AddDate(0, 0, 1), day.Format("2006-01-02")
	case Week:
		// time.Weekday counts from Sunday; weeks start on Monday.
		start = day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
		return start, start.AddDate(0, 0, 7), start.Format("2006-01-02")
	case Month:
		start = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 1, 0), start.Format("2006-01")
	}
	return time.Time{}, time.Time{}, ""
}

// Order says which end of a board leads.
type Order uint8

// The orders.
const (
	// HighFirst ranks the largest value first (profit, volume, gainers).
	HighFirst Order = iota
	// LowFirst ranks the smallest value first (losers, latency).
	LowFirst
)

// Ranking says how equal values are ranked. Listing order is the same in every mode:
// by value, then by who reached the value first.
type Ranking uint8

// The rankings.
const (
	// Ordinal gives every member its own rank; of equal values, the one reached first
	// ranks higher (1, 2, 3, 4).
	Ordinal Ranking = iota
	// Competition gives equal values the same rank and skips the ranks they use up
	// (1, 2, 2, 4).
	Competition
	// Dense gives equal values the same rank and skips none (1, 2, 2, 3). It keeps a
	// sorted set of the distinct values beside the board.
	Dense
)

// String returns "ordinal", "competition" or "dense".
func (r Ranking) String() string {
	switch r {
	case Ordinal:
		return "ordinal"
	case Competition:
		return "competition"
	case Dense:
		return "dense"
	}
	return fmt.Sprintf("ranking(%d)", uint8(r))
}

// Board defines a leaderboard.
type Board struct {
	// Name is 1 to 64 characters of a-z, 0-9, '.', '_' and '-', starting with a letter
	// or digit.
	Name string
	// Order says which end leads; the zero value is HighFirst.
	Order Order
	// Ranking says how ties are ranked; the zero value is Ordinal.
	Ranking Ranking
	// Windows the board keeps; nil means all of them (all-time, day, week, month).
	// Every write goes to each window's current period.
	Windows []Window
	// MaxMembers bounds each window's key: past it, the last-ranked members are dropped.
	// 0 means Config.MaxMembers.
	MaxMembers int
}

var boardNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidateBoardName returns an error wrapping ErrInvalidBoard unless name is a valid
// board name.
func ValidateBoardName(name string) error {
	if !boardNameRE.MatchString(name) {
		return fmt.Errorf("%w: name %q: want 1-64 of a-z 0-9 . _ - starting with a letter or digit", ErrInvalidBoard, name)
	}
	return nil
}

func (b *Board) validate() error {
	if err := ValidateBoardName(b.Name); err != nil {
		return err
	}
	if b.Order > LowFirst {
		return fmt.Errorf("%w: %s: unknown order %d", ErrInvalidBoard, b.Name, b.Order)
	}
	if b.Ranking > Dense {
		return fmt.Errorf("%w: %s: unknown ranking %d", ErrInvalidBoard, b.Name, b.Ranking)
	}
	if b.MaxMembers < 0 {
		return fmt.Errorf("%w: %s: negative MaxMembers", ErrInvalidBoard, b.Name)
	}
	seen := map[Window]bool{}
	for _, w := range b.Windows {
		if w > Month || seen[w] {
			return fmt.Errorf("%w: %s: window %s unknown or repeated", ErrInvalidBoard, b.Name, w)
		}
		seen[w] = true
	}
	return nil
}

func (b *Board) has(w Window) bool {
	for _, x := range b.Windows {
		if x == w {
			return true
		}
	}
	return false
}

// MaxMemberLen is the longest member name, in bytes.
const MaxMemberLen = 200

// ValidateMember returns an error wrapping ErrInvalidMember unless m is a valid member
// name: 1 to MaxMemberLen bytes of UTF-8 without control characters.
func ValidateMember(m string) error {
	if m == "" || len(m) > MaxMemberLen || !utf8.ValidString(m) {
		return fmt.Errorf("%w: %q: want 1-%d bytes of UTF-8", ErrInvalidMember, m, MaxMemberLen)
	}
	for _, r := range m {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: %q: control character", ErrInvalidMember, m)
		}
	}
	return nil
}

// Names of the built-in boards, fed by the pipeline (movers, volume, strategies) and by
// Mercury Bot (traders).
const (
	BoardGainers         = "movers.gainers"   // 24 h price change in percent, highest first
	BoardLosers          = "movers.losers"    // 24 h price change in percent, lowest first
	BoardVolume          = "volume.quote24h"  // 24 h quote volume, highest first
	BoardStrategyReturn  = "strategy.return"  // cumulative compounded paper return in percent
	BoardStrategyWinRate = "strategy.winrate" // closed paper trades that won, in percent
	BoardTraderPnL       = "traders.pnl"      // realized PnL reported per user, summed
)

// BuiltinBoards returns the definitions of the built-in boards. Movers and volume are
// snapshots of a rolling 24 h figure, kept all-time (the latest value) and per day.
func BuiltinBoards() []Board {
	snap := []Window{AllTime, Day}
	return []Board{
		{Name: BoardGainers, Order: HighFirst, Windows: snap},
		{Name: BoardLosers, Order: LowFirst, Windows: snap},
		{Name: BoardVolume, Order: HighFirst, Windows: snap},
		{Name: BoardStrategyReturn, Order: HighFirst, Ranking: Competition, Windows: []Window{AllTime}},
		{Name: BoardStrategyWinRate, Order: HighFirst, Ranking: Competition, Windows: []Window{AllTime}},
		{Name: BoardTraderPnL, Order: HighFirst, Ranking: Competition},
	}
}
