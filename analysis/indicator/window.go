package indicator

import (
	"fmt"
	"math"
)

// SumWindow holds the last Period values of a series in a ring buffer with their sum. The
// running sum is recomputed from the buffer each time the ring wraps, so rounding error
// cannot build up over a long stream; the cost stays O(1) per value, amortised.
type SumWindow struct {
	Period int       `json:"period"`
	Buf    []float64 `json:"buf"` // grows to Period values, then is overwritten in place
	Pos    int       `json:"pos"` // slot the next value replaces once Buf is full
	Sum    float64   `json:"sum"`
}

func newSumWindow(period int) SumWindow {
	return SumWindow{Period: period, Buf: make([]float64, 0, period)}
}

// Full reports whether the window holds Period values.
func (w *SumWindow) Full() bool { return len(w.Buf) == w.Period }

// push adds x and returns the value that left the window (0 while filling).
func (w *SumWindow) push(x float64) (old float64) {
	if len(w.Buf) < w.Period {
		w.Buf = append(w.Buf, x)
		w.Sum += x
		return 0
	}
	old = w.Buf[w.Pos]
	w.Buf[w.Pos] = x
	w.Pos++
	if w.Pos == w.Period {
		w.Pos = 0
		w.Sum = sumOf(w.Buf)
	} else {
		w.Sum += x - old
	}
	return old
}

func (w *SumWindow) validate() error {
	if w.Period < 1 || len(w.Buf) > w.Period || w.Pos < 0 || w.Pos >= w.Period ||
		(w.Pos != 0 && len(w.Buf) < w.Period) {
		return fmt.Errorf("analysis: inconsistent window state (period %d, %d values, pos %d)", w.Period, len(w.Buf), w.Pos)
	}
	if cap(w.Buf) < w.Period {
		buf := make([]float64, len(w.Buf), w.Period)
		copy(buf, w.Buf)
		w.Buf = buf
	}
	return checkFinite(append([]float64{w.Sum}, w.Buf...)...)
}

func sumOf(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s
}

// Extremum tracks the maximum (Max true) or minimum of the last Period values with a
// monotonic queue kept in ring buffers: O(1) amortised per value, at most Period entries.
type Extremum struct {
	Period int       `json:"period"`
	Max    bool      `json:"max"`
	Vals   []float64 `json:"vals"` // ring of candidate values, best at Head
	Seqs   []int64   `json:"seqs"` // sequence number of each candidate
	Head   int       `json:"head"`
	Len    int       `json:"len"`
	Seq    int64     `json:"seq"` // sequence number the next value gets
}

func newExtremum(period int, isMax bool) Extremum {
	return Extremum{Period: period, Max: isMax, Vals: make([]float64, period), Seqs: make([]int64, period)}
}

// push adds x and returns the extremum of the last Period values including x.
func (e *Extremum) push(x float64) float64 {
	seq := e.Seq
	e.Seq++
	for e.Len > 0 && e.Seqs[e.Head] <= seq-int64(e.Period) {
		e.Head = (e.Head + 1) % e.Period
		e.Len--
	}
	for e.Len > 0 {
		back := (e.Head + e.Len - 1) % e.Period
		if (e.Max && e.Vals[back] > x) || (!e.Max && e.Vals[back] < x) {
			break
		}
		e.Len--
	}
	slot := (e.Head + e.Len) % e.Period
	e.Vals[slot] = x
	e.Seqs[slot] = seq
	e.Len++
	return e.Vals[e.Head]
}

func (e *Extremum) validate() error {
	if e.Period < 1 || len(e.Vals) != e.Period || len(e.Seqs) != e.Period ||
		e.Head < 0 || e.Head >= e.Period || e.Len < 0 || e.Len > e.Period || e.Seq < 0 {
		return fmt.Errorf("analysis: inconsistent extremum state (period %d)", e.Period)
	}
	return checkFinite(e.Vals...)
}

func checkFinite(xs ...float64) error {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("analysis: state holds non-finite value %v", x)
		}
	}
	return nil
}

// nanSlice returns n NaNs.
func nanSlice(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = math.NaN()
	}
	return out
}

func checkPeriod(name string, period, min int) {
	if period < min || period > MaxPeriod {
		panic(fmt.Sprintf("analysis: %s period %d out of range [%d, %d]", name, period, min, MaxPeriod))
	}
}

// MaxPeriod is the largest period any kernel accepts (TA-Lib's limit too).
const MaxPeriod = 100000
