package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/internal/redisconn"
	"github.com/tickstash/tickstash/leaderboard"
)

// parseInterleaved parses flags that may come before, between or after the positional
// arguments, and returns the positional ones.
func parseInterleaved(f *flags, args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			return nil, err
		}
		rest := f.fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func cmdLeaderboard(ctx context.Context, args []string, e env) error {
	f := newFlags("leaderboard", "leaderboard top BOARD [--window all|day|week|month] [--n 10]\n"+
		"       tickstash leaderboard rank BOARD MEMBER [--window all|day|week|month] [--around K]\n\n"+
		"Reads a leaderboard in Redis (the current day, week or month for windowed reads).\n"+
		"Built-in boards: "+strings.Join(builtinBoardNames(), ", "), e)
	var redisURL, prefix, window string
	var n, around int
	f.String(&redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis URL: redis://host:port/db, rediss:// for TLS, redis://h1:p1?addr=h2:p2 for Redis Cluster")
	f.String(&prefix, "key-prefix", cache.DefaultPrefix, "prefix of every Redis key tickstash writes")
	f.String(&window, "window", "all", "window: all, day, week or month")
	f.Int(&n, "n", 10, "top: how many entries")
	f.Int(&around, "around", 0, "rank: also show this many entries above and below the member")
	pos, err := parseInterleaved(f, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return fmt.Errorf("%w: want top BOARD or rank BOARD MEMBER", errUsage)
	}
	w, err := leaderboard.ParseWindow(window)
	if err != nil {
		return fmt.Errorf("%w: --window: %v", errUsage, err)
	}
	switch {
	case pos[0] == "top" && len(pos) == 2:
		if n <= 0 || n > 10_000 {
			return fmt.Errorf("%w: --n %d: want 1 to 10000", errUsage, n)
		}
	case pos[0] == "rank" && len(pos) == 3:
		if around < 0 || around > 1000 {
			return fmt.Errorf("%w: --around %d: want 0 to 1000", errUsage, around)
		}
	default:
		return fmt.Errorf("%w: want top BOARD or rank BOARD MEMBER, got %q", errUsage, pos)
	}
	if err := leaderboard.ValidateBoardName(pos[1]); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	rdb, err := redisconn.Connect(ctx, redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	lb, err := leaderboard.NewStore(rdb, leaderboard.Config{Prefix: prefix}, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	board := pos[1]
	if _, err := lb.Board(board); errors.Is(err, leaderboard.ErrUnknownBoard) {
		// Boards defined by other programs (Mercury Bot's) are read with the defaults.
		if err := lb.Define(leaderboard.Board{Name: board}); err != nil {
			return err
		}
	}
	var entries []leaderboard.Entry
	mark := -1
	if pos[0] == "top" {
		entries, err = lb.Top(ctx, board, w, n)
	} else {
		entries, mark, _, err = lb.Around(ctx, board, w, pos[2], around)
	}
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		fmt.Fprintf(e.stderr, "%s (%s): no entries\n", board, w)
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "RANK\tMEMBER\tVALUE\t")
	for i, en := range entries {
		rank := fmt.Sprint(en.Rank)
		if i == mark && around > 0 {
			rank = "> " + rank
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", rank, en.Member, en.Value)
	}
	return tw.Flush()
}

func builtinBoardNames() []string {
	var out []string
	for _, b := range leaderboard.BuiltinBoards() {
		out = append(out, b.Name)
	}
	return out
}
