#!/usr/bin/env node
// bars.js derives OHLCV price series from the recorded exchange traffic in
// /work/shared/testdata/captures and writes them as CSV (time,open,high,low,close,volume)
// into analysis/indicator/testdata/series. See README.md.
//
// Usage: node bars.js [captures-dir] [out-dir]
'use strict';

const fs = require('fs');
const path = require('path');

const capDir = process.argv[2] || '/work/shared/testdata/captures';
const outDir = process.argv[3] || path.join(__dirname, '../../analysis/indicator/testdata/series');

function readCoinbase() {
  const lines = fs.readFileSync(path.join(capDir, 'coinbase-exchange-2021.jsonl'), 'utf8').split('\n');
  const msgs = [];
  for (const line of lines) {
    if (!line) continue;
    const rec = JSON.parse(line);
    if (rec.t !== 'recv') continue;
    const m = JSON.parse(rec.data);
    m._ts = rec.ts;
    msgs.push(m);
  }
  return msgs;
}

function writeCSV(name, bars) {
  const rows = ['time,open,high,low,close,volume'];
  for (const b of bars) {
    rows.push([b.time, b.open, b.high, b.low, b.close, b.volume].join(','));
  }
  fs.writeFileSync(path.join(outDir, name + '.csv'), rows.join('\n') + '\n');
  console.log(`${name}: ${bars.length} bars`);
}

// Decimal strings from the wire are converted with Number(): the indicator kernels work
// in float64 anyway, and both sides of the comparison read the same CSV text.
function addPoint(bar, price, volume) {
  if (bar.open === undefined) {
    bar.open = bar.high = bar.low = price;
  }
  bar.high = Math.max(bar.high, price);
  bar.low = Math.min(bar.low, price);
  bar.close = price;
  bar.volume = +(bar.volume + volume).toPrecision(15);
}

// tradeBars builds 1-second bars from Coinbase "match" messages of one product,
// bucketed by exchange trade time; seconds without trades are skipped.
function tradeBars(msgs, product) {
  const bars = [];
  let cur = null;
  for (const m of msgs) {
    if (m.type !== 'match' || m.product_id !== product) continue;
    const t = new Date(m.time);
    const sec = Math.floor(t.getTime() / 1000);
    if (!cur || cur.sec !== sec) {
      cur = { sec, time: new Date(sec * 1000).toISOString().replace('.000Z', 'Z'), volume: 0 };
      bars.push(cur);
    }
    addPoint(cur, Number(m.price), Number(m.size));
  }
  return bars;
}

// tickBars makes one bar per Coinbase "match" of one product: every bar has zero range.
// Trades in the same microsecond get distinct times so that times stay increasing.
function tickBars(msgs, product) {
  const bars = [];
  let last = '';
  for (const m of msgs) {
    if (m.type !== 'match' || m.product_id !== product) continue;
    if (m.time <= last) continue;
    last = m.time;
    const bar = { time: m.time, volume: 0 };
    addPoint(bar, Number(m.price), Number(m.size));
    bars.push(bar);
  }
  return bars;
}

// bookBars replays the level2 snapshot and updates of one product and builds a bar from
// every `per` updates: OHLC of the mid price after each update, volume = sum of the
// sizes named in the updates (book activity, not traded volume).
function bookBars(msgs, product, per) {
  const bids = new Map();
  const asks = new Map();
  const bars = [];
  let cur = null;
  let n = 0;
  for (const m of msgs) {
    if (m.product_id !== product) continue;
    if (m.type === 'snapshot') {
      for (const [p, s] of m.bids) bids.set(p, Number(s));
      for (const [p, s] of m.asks) asks.set(p, Number(s));
      continue;
    }
    if (m.type !== 'l2update') continue;
    let vol = 0;
    for (const [side, p, s] of m.changes) {
      const book = side === 'buy' ? bids : asks;
      if (Number(s) === 0) book.delete(p); else book.set(p, Number(s));
      vol += Number(s);
    }
    let bestBid = -Infinity;
    for (const p of bids.keys()) bestBid = Math.max(bestBid, Number(p));
    let bestAsk = Infinity;
    for (const p of asks.keys()) bestAsk = Math.min(bestAsk, Number(p));
    if (!isFinite(bestBid) || !isFinite(bestAsk)) continue;
    const mid = (bestBid + bestAsk) / 2;
    if (n % per === 0) {
      cur = { time: m.time, volume: 0 };
      bars.push(cur);
    }
    n++;
    addPoint(cur, mid, vol);
  }
  return bars;
}

// withFlats inserts stretches into a real series: a flat start (zero range, zero change,
// zero volume), a flat stretch in the middle, and a stretch of unchanged closes with a
// non-zero range. The stretches are kept shorter than the time TA-Lib's smoothed sums need
// to decay below its 1e-8 epsilon, so TA-Lib's answers stay the true ones.
function withFlats(bars) {
  const out = [];
  const first = bars[0];
  const flat = (ref, t) => ({ time: t, open: ref.close, high: ref.close, low: ref.close, close: ref.close, volume: 0 });
  let seq = 0;
  const stamp = () => new Date(Date.UTC(2021, 3, 17, 23, 0, 0) + 60000 * seq++).toISOString().replace('.000Z', 'Z');
  for (let i = 0; i < 30; i++) out.push(flat({ close: first.open }, stamp()));
  for (let i = 0; i < bars.length; i++) {
    const b = bars[i];
    out.push({ ...b, time: stamp() });
    if (i === 80) {
      for (let j = 0; j < 25; j++) out.push(flat(b, stamp()));
    }
    if (i === 150) {
      for (let j = 0; j < 15; j++) {
        const r = bars[i - j];
        const half = (r.high - r.low) / 2;
        out.push({ time: stamp(), open: b.close, high: b.close + half, low: b.close - half, close: b.close, volume: r.volume });
      }
    }
  }
  return out;
}

const msgs = readCoinbase();
fs.mkdirSync(outDir, { recursive: true });
writeCSV('coinbase-skl-usd-trades-1s', tradeBars(msgs, 'SKL-USD'));
writeCSV('coinbase-skl-usd-trades-tick', tickBars(msgs, 'SKL-USD'));
const sklUsd = bookBars(msgs, 'SKL-USD', 10);
writeCSV('coinbase-skl-usd-book-10', sklUsd);
writeCSV('coinbase-dash-btc-book-10', bookBars(msgs, 'DASH-BTC', 10));
writeCSV('coinbase-skl-btc-book-10', bookBars(msgs, 'SKL-BTC', 10));
writeCSV('coinbase-skl-usd-book-10-flats', withFlats(sklUsd));
