package ingest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/market"
)

// SyntheticConfig configures a synthetic market. Zero values mean the defaults.
type SyntheticConfig struct {
	// Exchange names the venue; "" means "synthetic".
	Exchange market.Exchange
	// Seed makes the market reproducible: the same seed, Start and Symbols give the
	// same trades. 0 means 1.
	Seed uint64
	// Symbols is how many markets trade; 0 means 4. The first ones are well-known
	// pairs (BTC-USD, ETH-USD, ...), later ones SYN<n>-USD.
	Symbols int
	// Rate is the average number of trades per second across all markets; 0 means
	// 50. Gaps between trades are exponentially distributed.
	Rate float64
	// MaxSpeed emits trades as fast as the consumer takes them, with trade times still
	// spaced as Rate says (for benchmarks and backfills).
	MaxSpeed bool
	// Start is the time of the first trade; zero means the clock's now.
	Start time.Time
	// Limit stops the source after that many trades; 0 means no limit.
	Limit int64
	// Only restricts the source to these of its Symbols markets, at their share of
	// Rate, so that instances of a shard group can each run some of one market. nil
	// means every market.
	Only []market.Symbol
	// Now is the clock that paces trades in real time; nil means time.Now.
	Now func() time.Time
}

// Synthetic is a seeded, deterministic market: prices random-walk on each market's tick
// grid with a volatility typical of crypto, sizes are log-normal on the lot grid, and the
// taker side follows the price move. It implements Source.
type Synthetic struct {
	cfg SyntheticConfig
}

// NewSynthetic returns a synthetic market. It returns an error for a negative or absurd
// Rate or Symbols.
func NewSynthetic(cfg SyntheticConfig) (*Synthetic, error) {
	if cfg.Exchange == "" {
		cfg.Exchange = market.Synthetic
	}
	if err := cfg.Exchange.Validate(); err != nil {
		return nil, err
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.Symbols == 0 {
		cfg.Symbols = 4
	}
	if cfg.Symbols < 0 || cfg.Symbols > 10000 {
		return nil, fmt.Errorf("ingest: synthetic symbols %d: want 1 to 10000", cfg.Symbols)
	}
	if cfg.Rate == 0 {
		cfg.Rate = 50
	}
	if cfg.Rate < 0 || math.IsNaN(cfg.Rate) || math.IsInf(cfg.Rate, 0) || cfg.Rate > 1e7 {
		return nil, fmt.Errorf("ingest: synthetic rate %v trades/s: want a positive number up to 1e7", cfg.Rate)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Synthetic{cfg: cfg}
	if cfg.Only != nil {
		if len(cfg.Only) == 0 {
			return nil, errors.New("ingest: synthetic Only lists no market")
		}
		all := s.Symbols()
		for _, sym := range cfg.Only {
			if !slices.Contains(all, sym) {
				return nil, fmt.Errorf("ingest: synthetic market %s is not one of the %d generated (%s ...)", sym, len(all), all[0])
			}
		}
	}
	return s, nil
}

// Name returns the exchange name.
func (s *Synthetic) Name() string { return string(s.cfg.Exchange) }

// Symbols returns the markets the source trades.
func (s *Synthetic) Symbols() []market.Symbol {
	out := make([]market.Symbol, s.cfg.Symbols)
	for i := range out {
		out[i] = syntheticSpec(i).symbol
	}
	return out
}

// syntheticInstrument describes one synthetic market in integer ticks and lots.
type syntheticInstrument struct {
	symbol     market.Symbol
	price      int64 // starting price in ticks
	priceScale int32 // tick = 10^-priceScale
	lotScale   int32 // lot = 10^-lotScale
	meanLots   float64
}

var wellKnown = []syntheticInstrument{
	{"BTC-USD", 9500000, 2, 5, 2000},    // 95 000.00, lots of 0.00001
	{"ETH-USD", 350000, 2, 4, 3000},     // 3 500.00, lots of 0.0001
	{"SOL-USD", 180000, 3, 3, 5000},     // 180.000, lots of 0.001
	{"DOGE-USD", 3000000, 7, 0, 800},    // 0.3000000, whole coins
	{"XRP-USD", 2200000, 6, 1, 2000},    // 2.200000
	{"ADA-USD", 7000000, 7, 1, 5000},    // 0.7000000
	{"PEPE-USD", 1200, 10, 0, 40000000}, // 0.0000001200: a sub-cent coin
	{"LINK-USD", 2500000, 5, 2, 1000},   // 25.00000
	{"AVAX-USD", 4000000, 5, 2, 500},    // 40.00000
	{"LTC-USD", 1000000, 4, 3, 2000},    // 100.0000
	{"BNB-USD", 700000, 3, 3, 500},      // 700.000
	{"DOT-USD", 800000, 5, 2, 1000},     // 8.00000
	{"ETH-BTC", 368000, 7, 4, 1000},     // 0.0368000
	{"SOL-ETH", 514000, 7, 3, 500},      // 0.0514000
	{"TRX-USD", 2500000, 7, 0, 3000},    // 0.2500000
	{"ATOM-USD", 600000, 5, 2, 800},     // 6.00000
}

func syntheticSpec(i int) syntheticInstrument {
	if i < len(wellKnown) {
		return wellKnown[i]
	}
	return syntheticInstrument{market.Symbol("SYN" + strconv.Itoa(i) + "-USD"), 1000000 + int64(i)*1000, 4, 2, 1000}
}

// Run emits trades until ctx is done or Limit is reached, pacing them in real time
// unless MaxSpeed is set. It returns nil when ctx ends or the limit is reached.
func (s *Synthetic) Run(ctx context.Context, out chan<- Event) error {
	rng := rand.New(rand.NewPCG(s.cfg.Seed, s.cfg.Seed^0x9e3779b97f4a7c15))
	start := s.cfg.Start
	if start.IsZero() {
		start = s.cfg.Now()
	}
	var insts []syntheticInstrument
	for i := 0; i < s.cfg.Symbols; i++ {
		if in := syntheticSpec(i); s.cfg.Only == nil || slices.Contains(s.cfg.Only, in.symbol) {
			insts = append(insts, in)
		}
	}
	seq := make([]int64, len(insts))
	for i := range seq {
		// Ids start from the start time so a restarted market never reuses one.
		seq[i] = start.UnixMilli() * 1000
	}
	const volPerTrade = 0.0004 // standard deviation of the relative move per trade
	rate := s.cfg.Rate * float64(len(insts)) / float64(s.cfg.Symbols)
	mean := float64(time.Second) / rate
	offset := time.Duration(0)
	var timer *time.Timer
	for n := int64(0); s.cfg.Limit == 0 || n < s.cfg.Limit; n++ {
		offset += time.Duration(rng.ExpFloat64() * mean)
		at := start.Add(offset)
		i := rng.IntN(len(insts))
		in := &insts[i]

		// Random walk in ticks, at least one tick of freedom, never below one tick.
		sd := math.Max(1, float64(in.price)*volPerTrade)
		move := int64(math.Round(rng.NormFloat64() * sd))
		in.price = max(1, in.price+move)
		side := market.Buy
		if move < 0 || (move == 0 && rng.IntN(2) == 0) {
			side = market.Sell
		}
		lots := int64(math.Max(1, math.Round(math.Exp(rng.NormFloat64())*in.meanLots/1.65)))
		seq[i]++

		if !s.cfg.MaxSpeed {
			if wait := at.Sub(s.cfg.Now()); wait > 0 {
				if timer == nil {
					timer = time.NewTimer(wait)
					defer timer.Stop()
				} else {
					timer.Reset(wait)
				}
				select {
				case <-ctx.Done():
					return nil
				case <-timer.C:
				}
			}
		}
		ev, err := NewTradeEvent(market.Trade{
			Exchange: s.cfg.Exchange, Symbol: in.symbol, ID: strconv.FormatInt(seq[i], 10),
			Price: decimal.New(in.price, -in.priceScale), Qty: decimal.New(lots, -in.lotScale),
			Side: side, Time: at.UTC(), ReceivedAt: at.UTC(),
		})
		if err != nil {
			return fmt.Errorf("ingest: synthetic market made an invalid trade (a bug): %w", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case out <- ev:
		}
	}
	return nil
}
