// Package indicator computes technical indicators over candles: pure float64 kernels with
// TA-Lib's definitions and lookbacks, each in a batch form over a whole series and a
// streaming form whose state a worker can save (as JSON, e.g. in Redis) and resume.
//
// # Kernels
//
//	SMA(close, n)                 lookback n-1
//	EMA(close, n)                 lookback n-1; seeded with the SMA of the first n values, k = 2/(n+1)
//	WMA(close, n)                 lookback n-1; weights 1..n, newest heaviest
//	RSI(close, n)                 lookback n; Wilder's smoothing, seeded with the mean of the first n changes
//	MACD(close, fast, slow, sig)  lookback slow+sig-2 for all three outputs; as TA-Lib's TA_MACD the
//	                              fast EMA is seeded late, on the fast values ending where the slow
//	                              EMA's seed ends, so both start on the same bar
//	BBands(close, n, up, down)    lookback n-1; SMA ± up/down population standard deviations
//	ATR(h, l, c, n)               lookback n; first value = mean of the true ranges of bars 1..n
//	Stoch(h, l, c, fk, sk, sd)    lookback fk+sk+sd-3; slow %K = SMA(fast %K, sk), slow %D = SMA(%K, sd)
//	OBV(close, volume)            lookback 0; starts at the first bar's volume
//	ADX(h, l, c, n)               lookback 2n-1; TA-Lib's seeding (DM/TR sums over n-1 bars, first
//	                              ADX = mean of n DX values)
//	VWAP(h, l, c, v, n)           lookback n-1; see below
//	SessionVWAP(t, h, l, c, v)    lookback 0; see below
//
// Batch functions return one value per input bar, NaN where the indicator is not yet
// defined; for the TA-Lib indicators the first defined index equals TA-Lib's outBegIdx.
// They panic on out-of-range periods (programming errors); ParseSpec validates user input.
// Inputs must be finite.
//
// TA-Lib has no VWAP. Here the typical price of a bar is (high+low+close)/3; VWAP is
// Σ(typical·volume)/Σ volume over the last n bars, and the session VWAP the same over the
// bars since the start of the bar's UTC day (bars in time order; a bar of another day
// starts a new session). Both are NaN while the bars they cover have no volume at all.
//
// # Streaming
//
// Each kernel has a state type (SMAState, EMAState, WMAState, RSIState, MACDState,
// BBandsState, ATRState, StochState, OBVState, ADXState, VWAPState, SessionVWAPState)
// with exported fields and an Update method taking the next bar's inputs, O(1) per bar
// (amortised: windowed sums are recomputed from their ring buffer each time it wraps, so
// rounding error cannot build up on long streams). The batch functions are loops over
// Update, so both forms agree bit for bit; a state marshalled to JSON midway and restored
// continues with the same bits (tested on every series).
//
// Workers should use Stream, which wraps one state behind a Spec and validates a decoded
// state against it:
//
//	spec, err := indicator.ParseSpec("macd:12,26,9")
//	st, err := indicator.NewStream(spec)
//	vals := st.Update(bar)            // one value per spec.Columns(), NaN if undefined
//	saved, err := json.Marshal(st)    // {"spec":"macd:12,26,9","state":{...}}
//	var resumed indicator.Stream
//	err = json.Unmarshal(saved, &resumed)
//
// # Specs and CSV
//
// ParseSpec accepts "name[:p1,p2,...]" with defaults for omitted trailing parameters:
// sma:20 ema:20 wma:20 rsi:14 atr:14 adx:14 macd:12,26,9 bbands:20,2[,DOWN]
// stoch:14,3,3 obv vwap:20 vwap:session. Output columns are named
// <name>[_<output>]_<params joined by _>: sma_20, macd_signal_12_26_9,
// bbands_upper_20_2, stoch_d_14_3_3, obv, vwap_session (Spec.Columns).
//
// ReadBarsCSV reads time,open,high,low,close,volume rows and rejects bad input with the
// line and field; WriteIndicatorsCSV writes the time column and one column per output,
// empty where undefined, with full float64 precision:
//
//	bars, err := indicator.ReadBarsCSV(os.Stdin)
//	err = indicator.WriteIndicatorsCSV(os.Stdout, bars, specs)
//
// # Differences from TA-Lib
//
// TA-Lib compares some intermediate values against fixed epsilons, which is wrong for
// coins priced far below one unit (SKL-BTC trades near 1.3e-5). This package computes
// the true value instead; TA-Lib's results on the same prices multiplied by 2^27 (exact
// in binary) agree with ours, and every kernel here is exactly scale-invariant:
//
//   - BBANDS: TA-Lib sets the standard deviation to 0 when the variance is below 1e-14,
//     so the bands collapse onto the middle for sub-cent prices. Ours uses any positive
//     variance. Ours also computes the variance from deviations around a recent mean
//     rather than as mean(x²)-mean(x)², so a flat window gives exactly zero where TA-Lib
//     returns rounding noise of the order of 1e-8 times the price.
//   - RSI: TA-Lib returns 0 when avgGain+avgLoss is within 1e-8 of zero; ours only when it
//     is exactly zero (no change at all over the smoothing history).
//   - ADX: TA-Lib treats a smoothed true range or a DI sum within 1e-8 of zero as zero
//     (DX undefined); ours only when exactly zero.
//   - STOCH uses no epsilon in TA-Lib: as there, fast %K is 0 when the range is exactly 0.
//
// Other differences: MACD requires fast < slow (TA-Lib swaps them) and a signal period of
// at least 2 (TA-Lib's TA_MACD misbehaves with 1); only SMA smoothing is offered for
// STOCH and BBANDS (TA-Lib's default MA type).
package indicator
