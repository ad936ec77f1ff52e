package book

import (
	"fmt"

	"github.com/shopspring/decimal"
)

// RatioPlaces is the number of decimal places of the figures that are quotients and so
// cannot always be exact (microprice, imbalance, average fill price, slippage in basis
// points): they are rounded half away from zero at this many places beyond the book's
// price scale (microprice, average price) or absolutely (imbalance, basis points).
const RatioPlaces = 12

var (
	half     = decimal.New(5, -1)
	tenThous = decimal.NewFromInt(10000)
)

// ErrEmptySide is returned by figures that need a level on a side that has none.
var ErrEmptySide = fmt.Errorf("book: a side of the book is empty")

// touch returns the best bid and ask, checking state and emptiness.
func (b *Book) touch() (bid, ask Level, err error) {
	if err = b.check(); err != nil {
		return
	}
	if b.bids.best == 0 || b.asks.best == 0 {
		return bid, ask, ErrEmptySide
	}
	bn, an := &b.bids.nodes[b.bids.best], &b.asks.nodes[b.asks.best]
	bid = Level{Price: toDecimal(-bn.key, b.pscale), Qty: toDecimal(bn.qty, b.qscale)}
	ask = Level{Price: toDecimal(an.key, b.pscale), Qty: toDecimal(an.qty, b.qscale)}
	return bid, ask, nil
}

// Spread returns best ask − best bid, exactly. Errors: *StaleError, ErrEmptySide.
func (b *Book) Spread() (decimal.Decimal, error) {
	bid, ask, err := b.touch()
	if err != nil {
		return decimal.Zero, err
	}
	return ask.Price.Sub(bid.Price), nil
}

// Mid returns (best bid + best ask) / 2, exactly. Errors: *StaleError, ErrEmptySide.
func (b *Book) Mid() (decimal.Decimal, error) {
	bid, ask, err := b.touch()
	if err != nil {
		return decimal.Zero, err
	}
	return bid.Price.Add(ask.Price).Mul(half), nil
}

// Microprice returns the size-weighted mid (bid·askQty + ask·bidQty) / (bidQty +
// askQty), rounded to RatioPlaces beyond the price scale. Errors: *StaleError,
// ErrEmptySide.
func (b *Book) Microprice() (decimal.Decimal, error) {
	bid, ask, err := b.touch()
	if err != nil {
		return decimal.Zero, err
	}
	num := bid.Price.Mul(ask.Qty).Add(ask.Price.Mul(bid.Qty))
	return num.DivRound(bid.Qty.Add(ask.Qty), int32(b.pscale+RatioPlaces)), nil
}

// Imbalance returns (B − A) / (B + A) where B and A are the bid and ask quantities of
// the top k levels (all levels if k ≤ 0), rounded to RatioPlaces: +1 all bids, −1 all
// asks. Errors: *StaleError, ErrEmptySide.
func (b *Book) Imbalance(k int) (decimal.Decimal, error) {
	if _, _, err := b.touch(); err != nil {
		return decimal.Zero, err
	}
	var bq, aq int64Sum
	b.Levels(Bid, k, func(_, q int64) bool { bq.add(q); return true })
	b.Levels(Ask, k, func(_, q int64) bool { aq.add(q); return true })
	B, A := bq.decimal(b.qscale), aq.decimal(b.qscale)
	return B.Sub(A).DivRound(B.Add(A), RatioPlaces), nil
}

// Band is the quantity resting within a band around the mid.
type Band struct {
	Bid, Ask decimal.Decimal // summed quantities
	// BidNotional and AskNotional are Σ price·qty of the same levels, exact.
	BidNotional, AskNotional decimal.Decimal
}

// DepthWithin returns the quantity of the levels priced within ±bps basis points of
// the mid: bids at or above mid·(1 − bps/10000), asks at or below mid·(1 + bps/10000),
// compared exactly. Errors: *StaleError, ErrEmptySide, and an error for negative bps.
func (b *Book) DepthWithin(bps decimal.Decimal) (Band, error) {
	var d Band
	if bps.Sign() < 0 {
		return d, fmt.Errorf("book: depth within %s bps: want bps ≥ 0", bps)
	}
	mid, err := b.Mid()
	if err != nil {
		return d, err
	}
	band := mid.Mul(bps).Shift(-4)
	lo, hi := mid.Sub(band), mid.Add(band)
	d.Bid, d.BidNotional = b.sumWhile(Bid, func(p decimal.Decimal) bool { return p.Cmp(lo) >= 0 })
	d.Ask, d.AskNotional = b.sumWhile(Ask, func(p decimal.Decimal) bool { return p.Cmp(hi) <= 0 })
	return d, nil
}

func (b *Book) sumWhile(s Side, in func(decimal.Decimal) bool) (qty, notional decimal.Decimal) {
	qty, notional = decimal.Zero, decimal.Zero
	b.Levels(s, 0, func(pm, qm int64) bool {
		p := toDecimal(pm, b.pscale)
		if !in(p) {
			return false
		}
		q := toDecimal(qm, b.qscale)
		qty = qty.Add(q)
		notional = notional.Add(p.Mul(q))
		return true
	})
	return qty, notional
}

// Fill is the result of walking the book with a market order.
type Fill struct {
	Requested decimal.Decimal
	Filled    decimal.Decimal // less than Requested when the side ran out
	Complete  bool            // Filled == Requested
	Cost      decimal.Decimal // Σ price·qty taken, exact
	// AvgPrice is Cost / Filled, rounded to RatioPlaces beyond the price scale; zero
	// when nothing filled.
	AvgPrice decimal.Decimal
	Best     decimal.Decimal // the touch price the walk started from
	Worst    decimal.Decimal // the last level's price the walk reached
	Levels   int             // levels touched
	// Slippage is how much worse than Best the average price is (AvgPrice − Best for
	// a buy, Best − AvgPrice for a sell), and SlippageBps the same in basis points of
	// Best, rounded to RatioPlaces.
	Slippage    decimal.Decimal
	SlippageBps decimal.Decimal
}

// Walk returns the fill of buying (buy true: taking the asks) or selling (taking the
// bids) qty at market, walking the book from the best level. Errors: *StaleError,
// ErrEmptySide, and an error for a quantity that is not positive.
func (b *Book) Walk(buy bool, qty decimal.Decimal) (Fill, error) {
	f := Fill{Requested: qty, Filled: decimal.Zero, Cost: decimal.Zero, AvgPrice: decimal.Zero,
		Slippage: decimal.Zero, SlippageBps: decimal.Zero}
	if qty.Sign() <= 0 {
		return f, fmt.Errorf("book: walk %s: want a positive quantity", qty)
	}
	if err := b.check(); err != nil {
		return f, err
	}
	s := Bid
	if buy {
		s = Ask
	}
	if b.side(s).best == 0 {
		return f, ErrEmptySide
	}
	left := qty
	b.Levels(s, 0, func(pm, qm int64) bool {
		p, q := toDecimal(pm, b.pscale), toDecimal(qm, b.qscale)
		if f.Levels == 0 {
			f.Best = p
		}
		f.Levels++
		f.Worst = p
		take := decimal.Min(q, left)
		f.Filled = f.Filled.Add(take)
		f.Cost = f.Cost.Add(p.Mul(take))
		left = left.Sub(take)
		return left.Sign() > 0
	})
	f.Complete = left.Sign() == 0
	f.AvgPrice = f.Cost.DivRound(f.Filled, int32(b.pscale+RatioPlaces))
	if buy {
		f.Slippage = f.AvgPrice.Sub(f.Best)
	} else {
		f.Slippage = f.Best.Sub(f.AvgPrice)
	}
	f.SlippageBps = f.Slippage.Mul(tenThous).DivRound(f.Best, RatioPlaces)
	return f, nil
}

// int64Sum adds non-negative mantissas, spilling into a decimal before int64
// overflows.
type int64Sum struct {
	small int64
	big   decimal.Decimal
	spilt bool
}

func (s *int64Sum) add(q int64) {
	if s.small > (1<<62) || q > (1<<62) {
		s.big = s.big.Add(decimal.NewFromInt(s.small))
		s.small, s.spilt = 0, true
	}
	s.small += q
}

func (s *int64Sum) decimal(scale int) decimal.Decimal {
	v := decimal.NewFromInt(s.small)
	if s.spilt {
		v = v.Add(s.big)
	}
	return v.Shift(-int32(scale))
}
