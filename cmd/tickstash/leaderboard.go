package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/peterbourgon/ff/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickstash/tickstash/internal/redisconn"
	"github.com/tickstash/tickstash/leaderboard"
)

// boardFlags are the flags every leaderboard subcommand shares.
type boardFlags struct {
	redisURL, prefix, window string
}

func cmdLeaderboard(e env) *ff.Command {
	f := newFlags("leaderboard", "leaderboard top|rank [flags]\n\n"+
		"Reads a leaderboard in Redis (the current day, week or month for windowed reads).\n"+
		"Built-in boards: "+strings.Join(builtinBoardNames(), ", ")+"\n"+
		"The flags below are valid before or after the subcommand.", e)
	var bf boardFlags
	registerStore(f, &bf.redisURL, &bf.prefix, "Redis holding the leaderboards")
	f.String(&bf.window, "window", "all", "window: all, day, week or month")
	top := newFlags("leaderboard top", "leaderboard top BOARD [--window all|day|week|month] [--n 10]", e).SetParent(f)
	var n int
	top.Int(&n, "n", 10, "how many entries")
	rank := newFlags("leaderboard rank", "leaderboard rank BOARD MEMBER [--window all|day|week|month] [--around K]", e).SetParent(f)
	var around int
	rank.Int(&around, "around", 0, "also show this many entries above and below the member")
	return f.Command("", func(context.Context, []string) error {
		return fmt.Errorf("%w: want top BOARD or rank BOARD MEMBER", errUsage)
	},
		top.Command("the best entries of a board", func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("%w: want leaderboard top BOARD, got %q", errUsage, args)
			}
			if n <= 0 || n > 10_000 {
				return fmt.Errorf("%w: --n %d: want 1 to 10000", errUsage, n)
			}
			return readBoard(ctx, &bf, e, args[0], "", n, 0)
		}),
		rank.Command("a member's rank, and its neighbours with --around", func(ctx context.Context, args []string) error {
			if len(args) != 2 {
				return fmt.Errorf("%w: want leaderboard rank BOARD MEMBER, got %q", errUsage, args)
			}
			if around < 0 || around > 1000 {
				return fmt.Errorf("%w: --around %d: want 0 to 1000", errUsage, around)
			}
			return readBoard(ctx, &bf, e, args[0], args[1], 0, around)
		}))
}

// readBoard prints the top n of board, or member's rank and around neighbours when member
// is not empty.
func readBoard(ctx context.Context, bf *boardFlags, e env, board, member string, n, around int) error {
	w, err := leaderboard.ParseWindow(bf.window)
	if err != nil {
		return fmt.Errorf("%w: --window %q: %v", errUsage, bf.window, err)
	}
	if err := leaderboard.ValidateBoardName(board); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	rdb, err := redisconn.Connect(ctx, bf.redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	lb, err := leaderboard.NewStore(rdb, leaderboard.Config{Prefix: bf.prefix}, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	if _, err := lb.Board(board); errors.Is(err, leaderboard.ErrUnknownBoard) {
		// Boards defined by other programs (Mercury Bot's) are read with the defaults.
		if err := lb.Define(leaderboard.Board{Name: board}); err != nil {
			return err
		}
	}
	var entries []leaderboard.Entry
	mark := -1
	if member == "" {
		entries, err = lb.Top(ctx, board, w, n)
	} else {
		entries, mark, _, err = lb.Around(ctx, board, w, member, around)
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
