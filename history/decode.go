package history

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tickstash/tickstash/market"
)

// ErrDecode is wrapped by every error of a response that does not have the venue's
// documented shape. Retrying does not help; the venue changed or a proxy answered.
var ErrDecode = errors.New("history: unexpected response")

func decodeErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrDecode}, args...)...)
}

// rawDecimal parses a decimal from the raw JSON token, a string ("1.5") or a number
// (1.5): never through float64.
func rawDecimal(raw json.RawMessage) (decimal.Decimal, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return decimal.Decimal{}, decodeErr("decimal %.40s: %v", raw, err)
		}
		raw = []byte(s)
	}
	if len(raw) == 0 || len(raw) > 64 || !(raw[0] == '-' || raw[0] == '.' || (raw[0] >= '0' && raw[0] <= '9')) {
		return decimal.Decimal{}, decodeErr("decimal %.40q: not a number", raw)
	}
	d, err := decimal.NewFromString(string(raw))
	if err != nil {
		return decimal.Decimal{}, decodeErr("decimal %.40q: %v", raw, err)
	}
	return d, nil
}

// rawInt parses an integer from a JSON number or string token.
func rawInt(raw json.RawMessage) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, decodeErr("integer %.40s: %v", raw, err)
		}
		raw = []byte(s)
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, decodeErr("integer %.40q: %v", raw, err)
	}
	return n, nil
}

// rawSecondsTime parses Unix seconds with an optional fraction ("1688669597.8277369")
// exactly, to the nanosecond.
func rawSecondsTime(raw json.RawMessage) (time.Time, error) {
	d, err := rawDecimal(raw)
	if err != nil {
		return time.Time{}, err
	}
	if d.Sign() < 0 || d.GreaterThan(decimal.NewFromInt(1<<33)) {
		return time.Time{}, decodeErr("time %s: out of range", d)
	}
	ns := d.Shift(9).Truncate(0).IntPart()
	return time.Unix(0, ns).UTC(), nil
}

// candleRow fills the fields shared by every venue's candle.
func candleRow(ex market.Exchange, sym market.Symbol, iv market.Interval, open time.Time, o, h, l, c, v json.RawMessage) (market.Candle, error) {
	cd := market.Candle{Exchange: ex, Symbol: sym, Interval: iv, OpenTime: open.UTC(), Source: SourceREST}
	var err error
	for _, f := range []struct {
		dst *decimal.Decimal
		raw json.RawMessage
	}{{&cd.Open, o}, {&cd.High, h}, {&cd.Low, l}, {&cd.Close, c}, {&cd.Volume, v}} {
		if *f.dst, err = rawDecimal(f.raw); err != nil {
			return cd, err
		}
	}
	return cd, nil
}

// DecodeBinanceKlines decodes a /api/v3/klines answer: an array of
// [openTime ms, "open", "high", "low", "close", "volume", closeTime ms, "quoteVolume",
// trades, "takerBuyBase", "takerBuyQuote", "ignore"], oldest first.
func DecodeBinanceKlines(body []byte, ex market.Exchange, sym market.Symbol, iv market.Interval) ([]market.Candle, error) {
	var rows [][]json.RawMessage
	if err := json.Unmarshal(body, &rows); err != nil {
		return nil, decodeErr("binance klines: %v", err)
	}
	out := make([]market.Candle, 0, len(rows))
	for i, r := range rows {
		if len(r) < 9 {
			return nil, decodeErr("binance kline %d: %d fields, want at least 9", i, len(r))
		}
		ms, err := rawInt(r[0])
		if err != nil {
			return nil, err
		}
		c, err := candleRow(ex, sym, iv, time.UnixMilli(ms), r[1], r[2], r[3], r[4], r[5])
		if err != nil {
			return nil, fmt.Errorf("binance kline %d: %w", i, err)
		}
		if c.QuoteVolume, err = rawDecimal(r[7]); err != nil {
			return nil, fmt.Errorf("binance kline %d: %w", i, err)
		}
		if c.Trades, err = rawInt(r[8]); err != nil {
			return nil, fmt.Errorf("binance kline %d: %w", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// DecodeCoinbaseExchangeCandles decodes a Coinbase Exchange /products/{id}/candles
// answer: an array of [time s, low, high, open, close, volume] of JSON numbers, newest
// first. The result is oldest first. Quote volume and trade count are not reported
// (zero).
func DecodeCoinbaseExchangeCandles(body []byte, sym market.Symbol, iv market.Interval) ([]market.Candle, error) {
	var rows [][]json.RawMessage
	if err := json.Unmarshal(body, &rows); err != nil {
		var e struct{ Message string }
		if json.Unmarshal(body, &e) == nil && e.Message != "" {
			return nil, decodeErr("coinbase exchange candles: %s", e.Message)
		}
		return nil, decodeErr("coinbase exchange candles: %v", err)
	}
	out := make([]market.Candle, 0, len(rows))
	for i, r := range rows {
		if len(r) < 6 {
			return nil, decodeErr("coinbase exchange candle %d: %d fields, want 6", i, len(r))
		}
		s, err := rawInt(r[0])
		if err != nil {
			return nil, err
		}
		c, err := candleRow(market.Coinbase, sym, iv, time.Unix(s, 0), r[3], r[2], r[1], r[4], r[5])
		if err != nil {
			return nil, fmt.Errorf("coinbase exchange candle %d: %w", i, err)
		}
		out = append(out, c)
	}
	sortCandles(out)
	return out, nil
}

// DecodeCoinbaseAdvancedCandles decodes a Coinbase Advanced Trade
// /api/v3/brokerage/market/products/{id}/candles answer:
// {"candles":[{"start":"<unix s>","low":"…","high":"…","open":"…","close":"…","volume":"…"}]},
// newest first. The result is oldest first, without quote volume or trade count.
func DecodeCoinbaseAdvancedCandles(body []byte, sym market.Symbol, iv market.Interval) ([]market.Candle, error) {
	var r struct {
		Candles []map[string]json.RawMessage `json:"candles"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, decodeErr("coinbase advanced candles: %v", err)
	}
	out := make([]market.Candle, 0, len(r.Candles))
	for i, m := range r.Candles {
		s, err := rawInt(m["start"])
		if err != nil {
			return nil, fmt.Errorf("coinbase advanced candle %d: %w", i, err)
		}
		c, err := candleRow(market.Coinbase, sym, iv, time.Unix(s, 0), m["open"], m["high"], m["low"], m["close"], m["volume"])
		if err != nil {
			return nil, fmt.Errorf("coinbase advanced candle %d: %w", i, err)
		}
		out = append(out, c)
	}
	sortCandles(out)
	return out, nil
}

// krakenResult splits Kraken's {"error":[...],"result":{"<PAIR>":[...],"last":…}}.
// A rate-limit error is errThrottled.
func krakenResult(body []byte) (rows json.RawMessage, last json.RawMessage, err error) {
	var r struct {
		Error  []string                   `json:"error"`
		Result map[string]json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, nil, decodeErr("kraken: %v", err)
	}
	if len(r.Error) > 0 {
		msg := strings.Join(r.Error, "; ")
		if strings.Contains(msg, "Rate limit") || strings.Contains(msg, "Too many requests") || strings.Contains(msg, "Throttled") {
			return nil, nil, fmt.Errorf("%w: kraken: %s", errThrottled, msg)
		}
		return nil, nil, fmt.Errorf("kraken: %s", msg)
	}
	for k, v := range r.Result {
		if k == "last" {
			last = v
			continue
		}
		if rows != nil {
			return nil, nil, decodeErr("kraken: result holds more than one pair")
		}
		rows = v
	}
	if rows == nil {
		return nil, nil, decodeErr("kraken: result holds no pair")
	}
	return rows, last, nil
}

func checkKraken(body []byte) error { _, _, err := krakenResult(body); return err }

// DecodeKrakenOHLC decodes a /0/public/OHLC answer: result.<PAIR> is an array of
// [time s, "open", "high", "low", "close", "vwap", "volume", count], oldest first, the
// last one still forming; result.last is the cursor for the next call. Quote volume is
// vwap × volume (Kraken's vwap is rounded to the pair's price precision).
func DecodeKrakenOHLC(body []byte, sym market.Symbol, iv market.Interval) ([]market.Candle, error) {
	rowsRaw, _, err := krakenResult(body)
	if err != nil {
		return nil, err
	}
	var rows [][]json.RawMessage
	if err := json.Unmarshal(rowsRaw, &rows); err != nil {
		return nil, decodeErr("kraken ohlc: %v", err)
	}
	out := make([]market.Candle, 0, len(rows))
	for i, r := range rows {
		if len(r) < 8 {
			return nil, decodeErr("kraken ohlc %d: %d fields, want 8", i, len(r))
		}
		s, err := rawInt(r[0])
		if err != nil {
			return nil, err
		}
		c, err := candleRow(market.Kraken, sym, iv, time.Unix(s, 0), r[1], r[2], r[3], r[4], r[6])
		if err != nil {
			return nil, fmt.Errorf("kraken ohlc %d: %w", i, err)
		}
		vwap, err := rawDecimal(r[5])
		if err != nil {
			return nil, fmt.Errorf("kraken ohlc %d: %w", i, err)
		}
		c.QuoteVolume = vwap.Mul(c.Volume)
		if c.Trades, err = rawInt(r[7]); err != nil {
			return nil, fmt.Errorf("kraken ohlc %d: %w", i, err)
		}
		out = append(out, c)
	}
	sortCandles(out)
	return out, nil
}

func sortCandles(cs []market.Candle) {
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].OpenTime.Before(cs[j].OpenTime) })
}

// DecodeBinanceAggTrades decodes /api/v3/aggTrades: [{"a":id,"p":"…","q":"…","f":…,
// "l":…,"T":ms,"m":buyerIsMaker,"M":…}]. The taker sold when m is true.
func DecodeBinanceAggTrades(body []byte, ex market.Exchange, sym market.Symbol) ([]market.Trade, error) {
	var rows []map[string]json.RawMessage
	if err := json.Unmarshal(body, &rows); err != nil {
		return nil, decodeErr("binance aggTrades: %v", err)
	}
	out := make([]market.Trade, 0, len(rows))
	for i, r := range rows {
		t, err := binanceTrade(ex, sym, r["a"], r["p"], r["q"], r["T"], r["m"])
		if err != nil {
			return nil, fmt.Errorf("binance aggTrade %d: %w", i, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// DecodeBinanceTrades decodes /api/v3/historicalTrades (and /api/v3/trades):
// [{"id":…,"price":"…","qty":"…","quoteQty":"…","time":ms,"isBuyerMaker":…}].
func DecodeBinanceTrades(body []byte, ex market.Exchange, sym market.Symbol) ([]market.Trade, error) {
	var rows []map[string]json.RawMessage
	if err := json.Unmarshal(body, &rows); err != nil {
		return nil, decodeErr("binance trades: %v", err)
	}
	out := make([]market.Trade, 0, len(rows))
	for i, r := range rows {
		t, err := binanceTrade(ex, sym, r["id"], r["price"], r["qty"], r["time"], r["isBuyerMaker"])
		if err != nil {
			return nil, fmt.Errorf("binance trade %d: %w", i, err)
		}
		out = append(out, t)
	}
	return out, nil
}

func binanceTrade(ex market.Exchange, sym market.Symbol, id, p, q, ms, maker json.RawMessage) (market.Trade, error) {
	n, err := rawInt(id)
	if err != nil {
		return market.Trade{}, err
	}
	t := market.Trade{Exchange: ex, Symbol: sym, ID: strconv.FormatInt(n, 10), Side: market.Buy}
	if t.Price, err = rawDecimal(p); err != nil {
		return t, err
	}
	if t.Qty, err = rawDecimal(q); err != nil {
		return t, err
	}
	m, err := rawInt(ms)
	if err != nil {
		return t, err
	}
	t.Time = time.UnixMilli(m).UTC()
	switch string(bytes.TrimSpace(maker)) {
	case "true":
		t.Side = market.Sell
	case "false":
	default:
		return t, decodeErr("buyer-is-maker flag %.20q: want true or false", maker)
	}
	return t, t.Validate()
}

// DecodeCoinbaseExchangeTrades decodes /products/{id}/trades: [{"time":"RFC 3339",
// "trade_id":n,"price":"…","size":"…","side":"buy|sell"}], newest first; side is the
// maker's, so the taker's is the opposite. The result keeps the answer's order.
func DecodeCoinbaseExchangeTrades(body []byte, sym market.Symbol) ([]market.Trade, error) {
	var rows []map[string]json.RawMessage
	if err := json.Unmarshal(body, &rows); err != nil {
		var e struct{ Message string }
		if json.Unmarshal(body, &e) == nil && e.Message != "" {
			return nil, decodeErr("coinbase exchange trades: %s", e.Message)
		}
		return nil, decodeErr("coinbase exchange trades: %v", err)
	}
	out := make([]market.Trade, 0, len(rows))
	for i, r := range rows {
		n, err := rawInt(r["trade_id"])
		if err != nil {
			return nil, fmt.Errorf("coinbase exchange trade %d: %w", i, err)
		}
		t := market.Trade{Exchange: market.Coinbase, Symbol: sym, ID: strconv.FormatInt(n, 10)}
		if t.Price, err = rawDecimal(r["price"]); err != nil {
			return nil, fmt.Errorf("coinbase exchange trade %d: %w", i, err)
		}
		if t.Qty, err = rawDecimal(r["size"]); err != nil {
			return nil, fmt.Errorf("coinbase exchange trade %d: %w", i, err)
		}
		var ts, side string
		if json.Unmarshal(r["time"], &ts) != nil || json.Unmarshal(r["side"], &side) != nil {
			return nil, decodeErr("coinbase exchange trade %d: time and side must be strings", i)
		}
		tm, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return nil, decodeErr("coinbase exchange trade %d: time %q: %v", i, ts, err)
		}
		t.Time = tm.UTC()
		switch side {
		case "buy":
			t.Side = market.Sell
		case "sell":
			t.Side = market.Buy
		default:
			return nil, decodeErr("coinbase exchange trade %d: side %q", i, side)
		}
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("coinbase exchange trade %d: %w", i, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// DecodeKrakenTrades decodes /0/public/Trades: result.<PAIR> is an array of
// ["price", "volume", time s.fraction, "b|s", "m|l", "misc", trade_id], oldest first;
// result.last (nanoseconds, a string) is the next call's since. Side is the taker's.
func DecodeKrakenTrades(body []byte, sym market.Symbol) (trades []market.Trade, last string, err error) {
	rowsRaw, lastRaw, err := krakenResult(body)
	if err != nil {
		return nil, "", err
	}
	var rows [][]json.RawMessage
	if err := json.Unmarshal(rowsRaw, &rows); err != nil {
		return nil, "", decodeErr("kraken trades: %v", err)
	}
	if n, err := rawInt(lastRaw); err == nil {
		last = strconv.FormatInt(n, 10)
	}
	out := make([]market.Trade, 0, len(rows))
	for i, r := range rows {
		if len(r) < 4 {
			return nil, "", decodeErr("kraken trade %d: %d fields, want at least 4", i, len(r))
		}
		t := market.Trade{Exchange: market.Kraken, Symbol: sym}
		if t.Price, err = rawDecimal(r[0]); err != nil {
			return nil, "", fmt.Errorf("kraken trade %d: %w", i, err)
		}
		if t.Qty, err = rawDecimal(r[1]); err != nil {
			return nil, "", fmt.Errorf("kraken trade %d: %w", i, err)
		}
		if t.Time, err = rawSecondsTime(r[2]); err != nil {
			return nil, "", fmt.Errorf("kraken trade %d: %w", i, err)
		}
		switch string(bytes.TrimSpace(r[3])) {
		case `"b"`:
			t.Side = market.Buy
		case `"s"`:
			t.Side = market.Sell
		default:
			return nil, "", decodeErr("kraken trade %d: side %.10s", i, r[3])
		}
		if len(r) >= 7 {
			if id, err := rawInt(r[6]); err == nil {
				t.ID = strconv.FormatInt(id, 10)
			}
		}
		if err := t.Validate(); err != nil {
			return nil, "", fmt.Errorf("kraken trade %d: %w", i, err)
		}
		out = append(out, t)
	}
	return out, last, nil
}
