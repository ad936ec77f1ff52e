package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/tickstash/tickstash/analysis/indicator"
	"github.com/tickstash/tickstash/market"
	"github.com/tickstash/tickstash/pipeline"
)

// ErrNoResult is returned by LatestResult when no result is stored for the target (never
// analysed, or expired after QueueConfig.ResultTTL).
var ErrNoResult = errors.New("analysis: no result")

// ErrInsufficientData is returned (wrapped) by an analysis that has too few closed
// candles: the market is unknown to the cache or too young. Such a job finishes as
// JobFailed with this error and is not retried.
var ErrInsufficientData = errors.New("analysis: insufficient data")

// errLeaseLost means a delivery's fencing token is no longer the job's: another worker
// took the job over, so this one's result was refused.
var errLeaseLost = errors.New("analysis: lease lost: another worker holds the job")

// DefaultIndicators is the indicator set of the "default" analyzer.
var DefaultIndicators = []string{
	"sma:20", "sma:50", "ema:50", "rsi:14", "macd:12,26,9", "bbands:20,2", "atr:14",
	"stoch:14,3,3", "obv", "adx:14", "vwap:session",
}

// Result is the latest analysis of one target, as stored in Redis and published to the
// analysis update stream: the stage contract pipeline.AnalysisUpdate, whose JSON shape
// and idempotency key (MsgID) the signals role reads with the same definition.
type Result = pipeline.AnalysisUpdate

// LatestResult returns the latest result of the default analyzer for a market and
// interval. It returns an error wrapping ErrNoResult if none is stored.
func (q *Queue) LatestResult(ctx context.Context, ex market.Exchange, sym market.Symbol, iv market.Interval) (Result, error) {
	return q.LatestResultOf(ctx, ex, sym, iv, q.cfg.DefaultAnalyzer)
}

// LatestResultOf is LatestResult for a named analyzer.
func (q *Queue) LatestResultOf(ctx context.Context, ex market.Exchange, sym market.Symbol, iv market.Interval, analyzer string) (Result, error) {
	t := target(ex, sym, iv, analyzer)
	data, err := q.rdb.HGet(ctx, q.keys.result(t), "data").Bytes()
	if errors.Is(err, redis.Nil) {
		return Result{}, fmt.Errorf("%w for %s", ErrNoResult, t)
	}
	if err != nil {
		return Result{}, fmt.Errorf("analysis: result of %s: %w", t, err)
	}
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		return Result{}, fmt.Errorf("analysis: decode result of %s: %w", t, err)
	}
	return r, nil
}

// savedState is what a target's state key holds: the indicator streams after the candle
// opening at Last, and their values there.
type savedState struct {
	Specs   []string            `json:"specs"`
	Last    int64               `json:"last"` // open time of the last candle fed, Unix ms
	Streams []*indicator.Stream `json:"streams"`
	Values  map[string]float64  `json:"values"`
}

// storeResult writes r and state under d's fencing token. It returns errLeaseLost if the
// token is stale.
func (q *Queue) storeResult(ctx context.Context, d *delivery, r *Result, state []byte) error {
	t := d.spec.target()
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("analysis: encode result of %s: %w", t, err)
	}
	ok, err := storeResultScript.Run(ctx, q.rdb,
		[]string{q.keys.job(d.id), q.keys.result(t), q.keys.state(t)},
		d.token, data, state, secs(q.cfg.ResultTTL), q.nowMs()).Int()
	if err != nil {
		return fmt.Errorf("analysis: store result of %s: %w", t, err)
	}
	if ok == 0 {
		return errLeaseLost
	}
	return nil
}

// loadState returns the saved state of a target, or nil if there is none or it does not
// decode (it is then rebuilt from candles).
func (q *Queue) loadState(ctx context.Context, t string) (*savedState, error) {
	data, err := q.rdb.Get(ctx, q.keys.state(t)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("analysis: load state of %s: %w", t, err)
	}
	var s savedState
	if json.Unmarshal(data, &s) != nil || len(s.Streams) != len(s.Specs) {
		return nil, nil
	}
	return &s, nil
}

// analyse computes specs over closed candles, resuming from prev when it ends at one of
// them, and returns the values at the newest candle, the number of candles fed and the
// new state. It returns ErrInsufficientData if there are fewer closed candles than the
// specs need and no state to resume.
func analyse(specs []indicator.Spec, candles []market.Candle, prev *savedState) (map[string]float64, int, *savedState, error) {
	closed := make([]market.Candle, 0, len(candles))
	for _, c := range candles {
		if c.Closed {
			closed = append(closed, c)
		}
	}
	names := make([]string, len(specs))
	need := 1
	for i, s := range specs {
		names[i] = s.String()
		need = max(need, s.Lookback()+1)
	}
	start := -1
	if prev != nil && slices.Equal(prev.Specs, names) {
		for i, c := range closed {
			if c.OpenTime.UnixMilli() == prev.Last {
				start = i + 1
				break
			}
		}
	}
	var streams []*indicator.Stream
	values := map[string]float64{}
	if start >= 0 {
		streams = prev.Streams
		values = prev.Values
		if values == nil {
			values = map[string]float64{}
		}
	} else {
		if len(closed) < need {
			return nil, 0, nil, fmt.Errorf("%w: %d closed candles, the indicators need %d", ErrInsufficientData, len(closed), need)
		}
		start = 0
		streams = make([]*indicator.Stream, len(specs))
		for i, s := range specs {
			st, err := indicator.NewStream(s)
			if err != nil {
				return nil, 0, nil, err
			}
			streams[i] = st
		}
	}
	fed := closed[start:]
	for i, c := range fed {
		bar := indicator.Bar{Time: c.OpenTime, Open: c.Open.InexactFloat64(), High: c.High.InexactFloat64(),
			Low: c.Low.InexactFloat64(), Close: c.Close.InexactFloat64(), Volume: c.Volume.InexactFloat64()}
		last := i == len(fed)-1
		for _, st := range streams {
			vals := st.Update(bar)
			if !last {
				continue
			}
			for j, col := range st.Spec().Columns() {
				if v := vals[j]; !math.IsNaN(v) && !math.IsInf(v, 0) {
					values[col] = v
				} else {
					delete(values, col)
				}
			}
		}
	}
	state := &savedState{Specs: names, Streams: streams, Values: values}
	if n := len(closed); n > 0 {
		state.Last = closed[n-1].OpenTime.UnixMilli()
	}
	return values, len(fed), state, nil
}
