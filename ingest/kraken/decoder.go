package kraken

import (
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/wsfeed"
	"github.com/tickstash/tickstash/ingest/wsfeed/wire"
	"github.com/tickstash/tickstash/market"
)

// AssetAliases maps Kraken's asset names to the common ones used in canonical symbols.
var AssetAliases = map[string]string{
	"XBT": "BTC",
	"XDG": "DOGE",
}

// maxCachedSymbols bounds the symbol cache against endless new names.
const maxCachedSymbols = 4096

// Symbol returns the canonical symbol of a Kraken pair ("XBT/USD" → "BTC-USD").
func Symbol(pair string) (market.Symbol, error) {
	base, quote, ok := strings.Cut(strings.ToUpper(pair), "/")
	if !ok {
		return "", &wsfeed.DecodeError{Reason: wsfeed.ReasonSymbol, Err: errorf("pair %q: want BASE/QUOTE", pair)}
	}
	if a, ok := AssetAliases[base]; ok {
		base = a
	}
	if a, ok := AssetAliases[quote]; ok {
		quote = a
	}
	s := market.NewSymbol(base, quote)
	if err := s.Validate(); err != nil {
		return "", &wsfeed.DecodeError{Reason: wsfeed.ReasonSymbol, Err: err}
	}
	return s, nil
}

// Decoder decodes Kraken v1 and v2 messages, telling them apart by shape. It is not
// safe for concurrent use.
type Decoder struct {
	sc      wire.Scanner
	symbols map[string]market.Symbol
	elems   [8][]byte
}

var _ wsfeed.Decoder = (*Decoder)(nil)

// NewDecoder returns a Kraken decoder.
func NewDecoder() *Decoder { return &Decoder{symbols: make(map[string]market.Symbol)} }

// Exchange returns market.Kraken.
func (d *Decoder) Exchange() market.Exchange { return market.Kraken }

func (d *Decoder) symbol(pair []byte) (market.Symbol, error) {
	if s, ok := d.symbols[string(pair)]; ok {
		return s, nil
	}
	s, err := Symbol(string(pair))
	if err != nil {
		return "", err
	}
	if len(d.symbols) < maxCachedSymbols {
		d.symbols[string(pair)] = s
	}
	return s, nil
}

// Decode implements wsfeed.Decoder.
func (d *Decoder) Decode(dst []ingest.Draft, msg []byte, recv time.Time) ([]ingest.Draft, error) {
	d.sc.Reset(msg)
	switch d.sc.Peek() {
	case '[':
		return d.v1(dst, recv)
	case '{':
		return d.object(dst, recv)
	}
	return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "want an object or an array")
}

// object decodes v2 messages and v1 events.
func (d *Decoder) object(dst []ingest.Draft, recv time.Time) ([]ingest.Draft, error) {
	sc := &d.sc
	sc.Object()
	var channel, data, event, method, errMsg []byte
	for key, ok := sc.Key(); ok; key, ok = sc.Key() {
		switch string(key) {
		case "channel":
			channel = sc.Str()
		case "data":
			data = sc.Raw()
		case "event":
			event = sc.Str()
		case "method":
			method = sc.Str()
		case "error", "errorMessage":
			errMsg, _ = sc.StrOrNull()
		default:
			sc.Skip()
		}
	}
	sc.End()
	if err := sc.Err(); err != nil {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "%v", err)
	}
	if errMsg != nil {
		return dst, wsfeed.Errorf(wsfeed.ReasonType, "error reply: %.100q", errMsg)
	}
	switch {
	case method != nil || event != nil:
		return dst, nil // replies to ping/subscribe, v1 heartbeat/systemStatus/subscriptionStatus
	case string(channel) == "trade":
		return d.v2Trades(dst, recv, data)
	case string(channel) == "ticker":
		return d.v2Tickers(dst, recv, data)
	case string(channel) == "heartbeat", string(channel) == "status", string(channel) == "book",
		string(channel) == "ohlc", string(channel) == "instrument":
		return dst, nil
	}
	return dst, wsfeed.Errorf(wsfeed.ReasonType, "channel %.32q", channel)
}

func (d *Decoder) v2Trades(dst []ingest.Draft, recv time.Time, data []byte) ([]ingest.Draft, error) {
	sc := &d.sc
	sc.Reset(data)
	start := len(dst)
	if !sc.Array() {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "data: %v", sc.Err())
	}
	for sc.Next() {
		var sym, side, price, qty, id, ts []byte
		if !sc.Object() {
			break
		}
		for key, ok := sc.Key(); ok; key, ok = sc.Key() {
			switch string(key) {
			case "symbol":
				sym = sc.Str()
			case "side":
				side = sc.Str()
			case "price":
				price = sc.Number()
			case "qty":
				qty = sc.Number()
			case "trade_id":
				id = sc.Number()
			case "timestamp":
				ts = sc.Str()
			default:
				sc.Skip()
			}
		}
		if sc.Err() != nil {
			break
		}
		s, err := d.symbol(sym)
		if err != nil {
			return dst[:start], err
		}
		if _, ok := wire.ParseInt(id); !ok {
			return dst[:start], wsfeed.Errorf(wsfeed.ReasonField, "trade_id %.32q", id)
		}
		p, err := wire.Decimal(price)
		if err != nil {
			return dst[:start], wsfeed.Errorf(wsfeed.ReasonNumber, "price %.32q", price)
		}
		q, err := wire.Decimal(qty)
		if err != nil {
			return dst[:start], wsfeed.Errorf(wsfeed.ReasonNumber, "qty %.32q", qty)
		}
		t, err := wire.RFC3339(ts)
		if err != nil {
			return dst[:start], wsfeed.Errorf(wsfeed.ReasonTime, "timestamp %.40q", ts)
		}
		taker, err := takerSide(side)
		if err != nil {
			return dst[:start], err
		}
		dst = append(dst, ingest.Draft{Kind: ingest.KindTrade, Trade: market.Trade{
			Exchange: market.Kraken, Symbol: s, ID: string(id), Price: p, Qty: q, Side: taker,
			Time: t, ReceivedAt: recv,
		}})
	}
	if err := sc.Err(); err != nil {
		return dst[:start], wsfeed.Errorf(wsfeed.ReasonJSON, "data: %v", err)
	}
	return dst, nil
}

func (d *Decoder) v2Tickers(dst []ingest.Draft, recv time.Time, data []byte) ([]ingest.Draft, error) {
	sc := &d.sc
	sc.Reset(data)
	start := len(dst)
	if !sc.Array() {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "data: %v", sc.Err())
	}
	for sc.Next() {
		var sym, ts []byte
		var raw [4][]byte // bid, bid_qty, ask, ask_qty
		if !sc.Object() {
			break
		}
		for key, ok := sc.Key(); ok; key, ok = sc.Key() {
			switch string(key) {
			case "symbol":
				sym = sc.Str()
			case "bid":
				raw[0] = sc.Number()
			case "bid_qty":
				raw[1] = sc.Number()
			case "ask":
				raw[2] = sc.Number()
			case "ask_qty":
				raw[3] = sc.Number()
			case "timestamp":
				ts = sc.Str()
			default:
				sc.Skip()
			}
		}
		if sc.Err() != nil {
			break
		}
		s, err := d.symbol(sym)
		if err != nil {
			return dst[:start], err
		}
		var v [4]decimal.Decimal
		for i, r := range raw {
			if v[i], err = wire.Decimal(r); err != nil {
				return dst[:start], wsfeed.Errorf(wsfeed.ReasonNumber, "ticker %.32q", r)
			}
		}
		t := recv
		if ts != nil {
			if t, err = wire.RFC3339(ts); err != nil {
				return dst[:start], wsfeed.Errorf(wsfeed.ReasonTime, "timestamp %.40q", ts)
			}
		}
		dst = append(dst, ingest.Draft{Kind: ingest.KindQuote, Quote: market.Quote{
			Exchange: market.Kraken, Symbol: s, Bid: v[0], BidQty: v[1], Ask: v[2], AskQty: v[3],
			Time: t, ReceivedAt: recv,
		}})
	}
	if err := sc.Err(); err != nil {
		return dst[:start], wsfeed.Errorf(wsfeed.ReasonJSON, "data: %v", err)
	}
	return dst, nil
}

// v1 decodes [channelID, payload..., channelName, pair].
func (d *Decoder) v1(dst []ingest.Draft, recv time.Time) ([]ingest.Draft, error) {
	sc := &d.sc
	sc.Array()
	n := 0
	for sc.Next() {
		if n >= len(d.elems) {
			sc.Skip()
			n++
			continue
		}
		d.elems[n] = sc.Raw()
		n++
	}
	sc.End()
	if err := sc.Err(); err != nil {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "%v", err)
	}
	if n < 4 || n > len(d.elems) {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "v1 array of %d elements", n)
	}
	name, ok1 := unquote(d.elems[n-2])
	pair, ok2 := unquote(d.elems[n-1])
	if !ok1 || !ok2 {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "v1 channel name and pair must be strings")
	}
	switch {
	case string(name) == "trade":
		return d.v1Trades(dst, recv, pair, d.elems[1])
	case string(name) == "ticker":
		return d.v1Ticker(dst, recv, pair, d.elems[1])
	case strings.HasPrefix(string(name), "book-"), string(name) == "spread",
		strings.HasPrefix(string(name), "ohlc-"):
		return dst, nil
	}
	return dst, wsfeed.Errorf(wsfeed.ReasonType, "channel %.32q", name)
}

// unquote strips the quotes of a raw JSON string without escapes.
func unquote(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false
	}
	s := raw[1 : len(raw)-1]
	for _, c := range s {
		if c == '\\' {
			return nil, false
		}
	}
	return s, true
}

// v1Trades decodes [[price, volume, time, side, orderType, misc], ...].
func (d *Decoder) v1Trades(dst []ingest.Draft, recv time.Time, pair, payload []byte) ([]ingest.Draft, error) {
	s, err := d.symbol(pair)
	if err != nil {
		return dst, err
	}
	sc := &d.sc
	sc.Reset(payload)
	start := len(dst)
	if !sc.Array() {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "trades: %v", sc.Err())
	}
	for sc.Next() {
		if !sc.Array() {
			break
		}
		var f [4][]byte
		i := 0
		for sc.Next() {
			if i < len(f) {
				f[i] = sc.Str()
			} else {
				sc.Skip()
			}
			i++
		}
		if sc.Err() != nil {
			break
		}
		if i < 4 {
			return dst[:start], wsfeed.Errorf(wsfeed.ReasonField, "trade of %d fields", i)
		}
		p, err := wire.Decimal(f[0])
		if err != nil {
			return dst[:start], wsfeed.Errorf(wsfeed.ReasonNumber, "price %.32q", f[0])
		}
		q, err := wire.Decimal(f[1])
		if err != nil {
			return dst[:start], wsfeed.Errorf(wsfeed.ReasonNumber, "volume %.32q", f[1])
		}
		t, err := wire.UnixFrac(f[2])
		if err != nil {
			return dst[:start], wsfeed.Errorf(wsfeed.ReasonTime, "time %.32q", f[2])
		}
		taker, err := takerSide(f[3])
		if err != nil {
			return dst[:start], err
		}
		dst = append(dst, ingest.Draft{Kind: ingest.KindTrade, Trade: market.Trade{
			Exchange: market.Kraken, Symbol: s, Price: p, Qty: q, Side: taker, Time: t, ReceivedAt: recv,
		}})
	}
	if err := sc.Err(); err != nil {
		return dst[:start], wsfeed.Errorf(wsfeed.ReasonJSON, "trades: %v", err)
	}
	return dst, nil
}

// v1Ticker decodes {"a":[price, wholeLotVolume, lotVolume], "b":[...], ...}.
func (d *Decoder) v1Ticker(dst []ingest.Draft, recv time.Time, pair, payload []byte) ([]ingest.Draft, error) {
	s, err := d.symbol(pair)
	if err != nil {
		return dst, err
	}
	sc := &d.sc
	sc.Reset(payload)
	if !sc.Object() {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "ticker: %v", sc.Err())
	}
	var ask, bid [3][]byte
	for key, ok := sc.Key(); ok; key, ok = sc.Key() {
		var level *[3][]byte
		switch string(key) {
		case "a":
			level = &ask
		case "b":
			level = &bid
		default:
			sc.Skip()
			continue
		}
		if !sc.Array() {
			break
		}
		for i := 0; sc.Next(); i++ {
			if i < 3 {
				level[i] = sc.NumOrStr()
			} else {
				sc.Skip()
			}
		}
	}
	if err := sc.Err(); err != nil {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "ticker: %v", err)
	}
	var v [4]decimal.Decimal
	for i, r := range [4][]byte{bid[0], bid[2], ask[0], ask[2]} {
		if v[i], err = wire.Decimal(r); err != nil {
			return dst, wsfeed.Errorf(wsfeed.ReasonNumber, "ticker %.32q", r)
		}
	}
	return append(dst, ingest.Draft{Kind: ingest.KindQuote, Quote: market.Quote{
		Exchange: market.Kraken, Symbol: s, Bid: v[0], BidQty: v[1], Ask: v[2], AskQty: v[3],
		Time: recv, ReceivedAt: recv,
	}}), nil
}

func takerSide(b []byte) (market.Side, error) {
	switch string(b) {
	case "b", "buy":
		return market.Buy, nil
	case "s", "sell":
		return market.Sell, nil
	}
	return market.SideUnknown, wsfeed.Errorf(wsfeed.ReasonField, "side %.16q", b)
}
