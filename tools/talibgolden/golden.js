#!/usr/bin/env node
// golden.js runs the real TA-Lib C library (through the npm package "talib", which bundles
// and compiles its C source) over every series in analysis/indicator/testdata/series and writes the
// results to analysis/indicator/testdata/golden, in the CSV layout of indicator.WriteIndicatorsCSV:
// a "time" column echoing the series, then one column per output, empty before TA-Lib's
// outBegIdx. See README.md for building the talib package.
//
// Usage: node golden.js [series-dir] [golden-dir]
'use strict';

const fs = require('fs');
const path = require('path');
const talib = require('talib');

const seriesDir = process.argv[2] || path.join(__dirname, '../../analysis/indicator/testdata/series');
const goldenDir = process.argv[3] || path.join(__dirname, '../../analysis/indicator/testdata/golden');

// Series whose prices are so small that TA-Lib's fixed epsilons change its answers. For
// them the golden file holds TA-Lib's results on the prices multiplied by SCALE (a power of
// two, so the scaling is exact in binary floating point) with price-valued outputs divided
// back: what TA-Lib computes when its epsilons do not interfere. TA-Lib's unscaled results
// go to <name>.talib-raw.csv.
const SCALE = 2 ** 27;
const tinySeries = new Set(['coinbase-skl-btc-book-10', 'coinbase-dash-btc-book-10']);

// Each spec: our spec text, the TA-Lib function, its options, and for each TA-Lib output
// our column name and whether the output is measured in price units.
const specs = [
  ['sma:20', 'SMA', { optInTimePeriod: 20 }, [['outReal', 'sma_20', true]]],
  ['sma:2', 'SMA', { optInTimePeriod: 2 }, [['outReal', 'sma_2', true]]],
  ['ema:20', 'EMA', { optInTimePeriod: 20 }, [['outReal', 'ema_20', true]]],
  ['ema:2', 'EMA', { optInTimePeriod: 2 }, [['outReal', 'ema_2', true]]],
  ['wma:20', 'WMA', { optInTimePeriod: 20 }, [['outReal', 'wma_20', true]]],
  ['wma:2', 'WMA', { optInTimePeriod: 2 }, [['outReal', 'wma_2', true]]],
  ['rsi:14', 'RSI', { optInTimePeriod: 14 }, [['outReal', 'rsi_14', false]]],
  ['rsi:2', 'RSI', { optInTimePeriod: 2 }, [['outReal', 'rsi_2', false]]],
  ['macd:12,26,9', 'MACD', { optInFastPeriod: 12, optInSlowPeriod: 26, optInSignalPeriod: 9 },
    [['outMACD', 'macd_12_26_9', true], ['outMACDSignal', 'macd_signal_12_26_9', true], ['outMACDHist', 'macd_hist_12_26_9', true]]],
  ['macd:3,5,2', 'MACD', { optInFastPeriod: 3, optInSlowPeriod: 5, optInSignalPeriod: 2 },
    [['outMACD', 'macd_3_5_2', true], ['outMACDSignal', 'macd_signal_3_5_2', true], ['outMACDHist', 'macd_hist_3_5_2', true]]],
  ['bbands:20,2', 'BBANDS', { optInTimePeriod: 20, optInNbDevUp: 2, optInNbDevDn: 2, optInMAType: 0 },
    [['outRealUpperBand', 'bbands_upper_20_2', true], ['outRealMiddleBand', 'bbands_middle_20_2', true], ['outRealLowerBand', 'bbands_lower_20_2', true]]],
  ['bbands:5,1.5,2.5', 'BBANDS', { optInTimePeriod: 5, optInNbDevUp: 1.5, optInNbDevDn: 2.5, optInMAType: 0 },
    [['outRealUpperBand', 'bbands_upper_5_1.5_2.5', true], ['outRealMiddleBand', 'bbands_middle_5_1.5_2.5', true], ['outRealLowerBand', 'bbands_lower_5_1.5_2.5', true]]],
  ['atr:14', 'ATR', { optInTimePeriod: 14 }, [['outReal', 'atr_14', true]]],
  ['atr:1', 'ATR', { optInTimePeriod: 1 }, [['outReal', 'atr_1', true]]],
  ['stoch:14,3,3', 'STOCH', { optInFastK_Period: 14, optInSlowK_Period: 3, optInSlowK_MAType: 0, optInSlowD_Period: 3, optInSlowD_MAType: 0 },
    [['outSlowK', 'stoch_k_14_3_3', false], ['outSlowD', 'stoch_d_14_3_3', false]]],
  ['stoch:1,1,1', 'STOCH', { optInFastK_Period: 1, optInSlowK_Period: 1, optInSlowK_MAType: 0, optInSlowD_Period: 1, optInSlowD_MAType: 0 },
    [['outSlowK', 'stoch_k_1_1_1', false], ['outSlowD', 'stoch_d_1_1_1', false]]],
  ['obv', 'OBV', {}, [['outReal', 'obv', false]]],
  ['adx:14', 'ADX', { optInTimePeriod: 14 }, [['outReal', 'adx_14', false]]],
  ['adx:2', 'ADX', { optInTimePeriod: 2 }, [['outReal', 'adx_2', false]]],
];

function readSeries(file) {
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
  if (lines[0] !== 'time,open,high,low,close,volume') throw new Error(`${file}: bad header`);
  const s = { time: [], open: [], high: [], low: [], close: [], volume: [] };
  for (const line of lines.slice(1)) {
    const f = line.split(',');
    s.time.push(f[0]);
    ['open', 'high', 'low', 'close', 'volume'].forEach((k, i) => s[k].push(Number(f[i + 1])));
  }
  return s;
}

function compute(s, scale) {
  const px = (a) => a.map((v) => v * scale);
  const input = { open: px(s.open), high: px(s.high), low: px(s.low), close: px(s.close), volume: s.volume };
  const header = ['time'];
  const cols = [];
  for (const [, name, opts, outs] of specs) {
    const r = talib.execute({
      name, startIdx: 0, endIdx: s.close.length - 1,
      inReal: input.close, high: input.high, low: input.low, close: input.close, volume: input.volume,
      ...opts,
    });
    if (r.error) throw new Error(`${name}: ${JSON.stringify(r.error)}`);
    for (const [out, col, isPrice] of outs) {
      const vals = new Array(s.close.length).fill('');
      const got = r.result[out];
      for (let i = 0; i < r.nbElement; i++) {
        vals[r.begIndex + i] = String(isPrice ? got[i] / scale : got[i]);
      }
      header.push(col);
      cols.push(vals);
    }
  }
  const rows = [header.join(',')];
  for (let i = 0; i < s.close.length; i++) {
    rows.push([s.time[i], ...cols.map((c) => c[i])].join(','));
  }
  return rows.join('\n') + '\n';
}

fs.mkdirSync(goldenDir, { recursive: true });
for (const f of fs.readdirSync(seriesDir).filter((f) => f.endsWith('.csv')).sort()) {
  const name = f.replace(/\.csv$/, '');
  const s = readSeries(path.join(seriesDir, f));
  if (tinySeries.has(name)) {
    fs.writeFileSync(path.join(goldenDir, name + '.csv'), compute(s, SCALE));
    fs.writeFileSync(path.join(goldenDir, name + '.talib-raw.csv'), compute(s, 1));
  } else {
    fs.writeFileSync(path.join(goldenDir, name + '.csv'), compute(s, 1));
  }
  console.log(`${name}: ${s.close.length} rows, TA-Lib ${talib.version}`);
}
