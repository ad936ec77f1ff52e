package gateway

import (
	"fmt"
	"net/http"

	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/leaderboard"
)

// BoardEntry is the wire form of one member's place on a leaderboard.
type BoardEntry struct {
	Member string `json:"member"`
	Rank   int64  `json:"rank"` // 1 is the top, by the board's ranking
	// Score is the exact decimal value.
	Score string `json:"score"`
}

func boardEntries(es []leaderboard.Entry) []BoardEntry {
	out := make([]BoardEntry, len(es))
	for i, e := range es {
		out[i] = boardEntry(e)
	}
	return out
}

func boardEntry(e leaderboard.Entry) BoardEntry {
	return BoardEntry{Member: e.Member, Rank: e.Rank, Score: e.Value.String()}
}

// windowParam reads ?window=: day, week, month or all (the default).
func windowParam(r *http.Request) (leaderboard.Window, error) {
	v := r.URL.Query().Get("window")
	w, err := leaderboard.ParseWindow(v)
	if err != nil {
		return 0, fmt.Errorf("%w: window=%q: want day, week, month or all", ErrInvalid, v)
	}
	return w, nil
}

func (s *Server) handleBoardTop(w http.ResponseWriter, r *http.Request) {
	if s.deps.Leaderboards == nil {
		s.writeError(w, r, errNotConfigured)
		return
	}
	win, err := windowParam(r)
	var n int
	if err == nil {
		n, err = intParam(r, "limit", 10, 1, 100)
	}
	var es []leaderboard.Entry
	if err == nil {
		es, err = s.deps.Leaderboards.Top(r.Context(), r.PathValue("board"), win, n)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"board": r.PathValue("board"), "window": win.String(), "entries": boardEntries(es)})
}

func (s *Server) handleBoardRank(w http.ResponseWriter, r *http.Request) {
	if s.deps.Leaderboards == nil {
		s.writeError(w, r, errNotConfigured)
		return
	}
	win, err := windowParam(r)
	var e leaderboard.Entry
	if err == nil {
		e, err = s.deps.Leaderboards.Rank(r.Context(), r.PathValue("board"), win, r.PathValue("member"))
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, boardEntry(e))
}

func (s *Server) handleBoardAround(w http.ResponseWriter, r *http.Request) {
	if s.deps.Leaderboards == nil {
		s.writeError(w, r, errNotConfigured)
		return
	}
	win, err := windowParam(r)
	var k int
	if err == nil {
		k, err = intParam(r, "limit", 5, 1, 50)
	}
	var (
		es    []leaderboard.Entry
		index int
		count int64
	)
	if err == nil {
		es, index, count, err = s.deps.Leaderboards.Around(r.Context(), r.PathValue("board"), win, r.PathValue("member"), k)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"board": r.PathValue("board"), "window": win.String(),
		"count": count, "index": index, "entries": boardEntries(es)})
}

// ScoreRequest is the body of POST /v1/leaderboards/{board}/scores.
type ScoreRequest struct {
	Member string `json:"member"`
	// Score is a decimal, as a JSON string or number (read exactly).
	Score *decimal.Decimal `json:"score"`
	// Op is "increment" (the default: add Score to the member's value) or "set".
	Op string `json:"op,omitempty"`
}

func (s *Server) handleBoardScore(w http.ResponseWriter, r *http.Request) {
	if s.deps.Leaderboards == nil {
		s.writeError(w, r, errNotConfigured)
		return
	}
	var req ScoreRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	board := r.PathValue("board")
	if err := leaderboard.ValidateMember(req.Member); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Score == nil {
		s.writeError(w, r, fmt.Errorf("%w: score is required (a decimal)", ErrInvalid))
		return
	}
	stateOf(r).target = board + "/" + req.Member
	value := *req.Score
	var err error
	switch req.Op {
	case "", "increment":
		value, err = s.deps.Leaderboards.Increment(r.Context(), board, req.Member, *req.Score)
	case "set":
		err = s.deps.Leaderboards.Set(r.Context(), board, req.Member, *req.Score)
	default:
		err = fmt.Errorf("%w: op %q: want increment or set", ErrInvalid, req.Op)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"board": board, "member": req.Member, "score": value.String()})
}

// PnLReport is the body of POST /v1/leaderboards/traders.pnl/reports: one realized PnL
// of a trader, as Mercury Bot reports it.
type PnLReport struct {
	User string `json:"user"`
	// ReportID makes the report idempotent: a retry with the same id is not counted twice.
	ReportID string `json:"report_id"`
	// PnL is a decimal, as a JSON string or number (read exactly); negative for a loss.
	PnL *decimal.Decimal `json:"pnl"`
}

func (s *Server) handlePnLReport(w http.ResponseWriter, r *http.Request) {
	if s.deps.Leaderboards == nil {
		s.writeError(w, r, errNotConfigured)
		return
	}
	var req PnLReport
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := leaderboard.ValidateMember(req.User); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.ReportID == "" || len(req.ReportID) > 128 {
		s.writeError(w, r, fmt.Errorf("%w: report_id: want 1 to 128 characters (it makes retries safe)", ErrInvalid))
		return
	}
	if req.PnL == nil {
		s.writeError(w, r, fmt.Errorf("%w: pnl is required (a decimal)", ErrInvalid))
		return
	}
	stateOf(r).target = leaderboard.BoardTraderPnL + "/" + req.User + " report " + req.ReportID
	applied, err := s.deps.Leaderboards.ReportPnL(r.Context(), req.User, req.ReportID, *req.PnL)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": req.User, "report_id": req.ReportID, "applied": applied})
}
