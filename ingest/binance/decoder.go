package binance

import (
	"errors"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
	"github.com/tickstash/tickstash/ingest"
	"github.com/tickstash/tickstash/ingest/wsfeed"
	"github.com/tickstash/tickstash/ingest/wsfeed/wire"
	"github.com/tickstash/tickstash/market"
)

// maxCachedSymbols bounds the symbol cache against feeds (or fuzzers) that send
// endless new names.
const maxCachedSymbols = 4096

// Decoder decodes Binance combined-stream messages ({"stream":..,"data":..}) and bare
// stream payloads. It is not safe for concurrent use.
type Decoder struct {
	exchange market.Exchange
	known    map[string]market.Symbol
	cache    map[string]market.Symbol
	sc       wire.Scanner
	f        fields
	k        kline
}

var _ wsfeed.Decoder = (*Decoder)(nil)

// NewDecoder returns a decoder whose events belong to ex (market.Binance or
// market.BinanceUS). symbols maps native names to canonical symbols (FetchSymbols);
// nil splits names with QuoteAssets.
func NewDecoder(ex market.Exchange, symbols map[string]market.Symbol) *Decoder {
	return &Decoder{exchange: ex, known: symbols, cache: make(map[string]market.Symbol)}
}

// Exchange returns the decoder's exchange.
func (d *Decoder) Exchange() market.Exchange { return d.exchange }

// fields holds the raw tokens of a stream payload; strings without their quotes.
type fields struct {
	e, s, p, q, m, b, bq, a, aq, k       []byte
	tradeID, aggID, eventTime, tradeTime []byte
	hasT, reply                          bool
}

type kline struct {
	t, i, o, c, h, l, v, q, n, x []byte
}

// Decode implements wsfeed.Decoder.
func (d *Decoder) Decode(dst []ingest.Draft, msg []byte, recv time.Time) ([]ingest.Draft, error) {
	sc := &d.sc
	sc.Reset(msg)
	if !sc.Object() {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "%v", sc.Err())
	}
	d.f = fields{}
	var data []byte
	bare := false
	for key, ok := sc.Key(); ok; key, ok = sc.Key() {
		switch string(key) {
		case "data":
			data = sc.Raw()
		case "stream":
			sc.Skip()
		default:
			// A bare payload (a /ws/ endpoint): read its fields directly.
			bare = true
			d.field(key)
		}
	}
	sc.End()
	if err := sc.Err(); err != nil {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "%v", err)
	}
	if !bare {
		if data == nil {
			if d.f.e == nil {
				return dst, nil // a subscription reply: {"result":null,"id":1} has no data
			}
		} else {
			sc.Reset(data)
			if !sc.Object() {
				return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "data: %v", sc.Err())
			}
			for key, ok := sc.Key(); ok; key, ok = sc.Key() {
				d.field(key)
			}
			if err := sc.Err(); err != nil {
				return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "data: %v", err)
			}
		}
	}
	return d.event(dst, recv)
}

// field reads the value of key into d.f, stripping the quotes of strings.
func (d *Decoder) field(key []byte) {
	sc := &d.sc
	f := &d.f
	if len(key) != 1 {
		// Replies to SUBSCRIBE are {"result":null,"id":1}; other long keys carry
		// nothing we use.
		f.reply = f.reply || string(key) == "result" || string(key) == "id"
		sc.Skip()
		return
	}
	switch key[0] {
	case 'e':
		f.e = sc.Str()
	case 'E':
		f.eventTime = sc.Number()
	case 's':
		f.s = sc.Str()
	case 'p':
		f.p = sc.Str()
	case 'q':
		f.q = sc.Str()
	case 'm':
		f.m = sc.Raw()
	case 't':
		f.tradeID = sc.Number()
	case 'a':
		// aggTrade's id, or bookTicker's ask price (a string).
		switch sc.Peek() {
		case '"':
			f.a = sc.Str()
		case '[':
			sc.Skip() // depthUpdate's ask levels
		default:
			f.aggID = sc.Number()
		}
	case 'T':
		f.tradeTime = sc.Number()
		f.hasT = true
	case 'b':
		if sc.Peek() == '"' {
			f.b = sc.Str()
		} else {
			sc.Skip() // depthUpdate's bid levels
		}
	case 'B':
		f.bq = sc.Str()
	case 'A':
		f.aq = sc.Str()
	case 'k':
		f.k = sc.Raw()
	default:
		sc.Skip()
	}
}

func (d *Decoder) event(dst []ingest.Draft, recv time.Time) ([]ingest.Draft, error) {
	f := &d.f
	switch string(f.e) {
	case "trade", "aggTrade":
		return d.trade(dst, recv)
	case "kline":
		return d.candle(dst, recv)
	case "depthUpdate":
		return dst, nil
	case "serverShutdown":
		return dst, fmt.Errorf("binance: serverShutdown: %w", wsfeed.ErrReconnect)
	case "":
		if f.b != nil && f.a != nil {
			return d.quote(dst, recv)
		}
		if f.reply {
			return dst, nil
		}
		return dst, wsfeed.Errorf(wsfeed.ReasonType, "no event type")
	}
	return dst, wsfeed.Errorf(wsfeed.ReasonType, "event %.32q", f.e)
}

func (d *Decoder) trade(dst []ingest.Draft, recv time.Time) ([]ingest.Draft, error) {
	f := &d.f
	sym, err := d.symbol(f.s)
	if err != nil {
		return dst, err
	}
	id := f.tradeID
	if string(f.e) == "aggTrade" {
		id = f.aggID
	}
	if _, ok := wire.ParseInt(id); !ok {
		return dst, wsfeed.Errorf(wsfeed.ReasonField, "trade id %.32q", id)
	}
	price, err := wire.Decimal(f.p)
	if err != nil {
		return dst, wsfeed.Errorf(wsfeed.ReasonNumber, "price %.32q", f.p)
	}
	qty, err := wire.Decimal(f.q)
	if err != nil {
		return dst, wsfeed.Errorf(wsfeed.ReasonNumber, "qty %.32q", f.q)
	}
	ms, ok := wire.ParseInt(f.tradeTime)
	if !ok {
		return dst, wsfeed.Errorf(wsfeed.ReasonTime, "trade time %.32q", f.tradeTime)
	}
	side := market.Buy
	switch string(f.m) {
	case "true":
		side = market.Sell // the buyer was the maker: the taker sold
	case "false":
	default:
		return dst, wsfeed.Errorf(wsfeed.ReasonField, "m %.8q", f.m)
	}
	return append(dst, ingest.Draft{Kind: ingest.KindTrade, Trade: market.Trade{
		Exchange: d.exchange, Symbol: sym, ID: string(id), Price: price, Qty: qty,
		Side: side, Time: wire.UnixMilli(ms), ReceivedAt: recv,
	}}), nil
}

func (d *Decoder) quote(dst []ingest.Draft, recv time.Time) ([]ingest.Draft, error) {
	f := &d.f
	sym, err := d.symbol(f.s)
	if err != nil {
		return dst, err
	}
	var q [4]decimal.Decimal
	for i, raw := range [4][]byte{f.b, f.bq, f.a, f.aq} {
		if q[i], err = wire.Decimal(raw); err != nil {
			return dst, wsfeed.Errorf(wsfeed.ReasonNumber, "bookTicker %.32q", raw)
		}
	}
	return append(dst, ingest.Draft{Kind: ingest.KindQuote, Quote: market.Quote{
		Exchange: d.exchange, Symbol: sym, Bid: q[0], BidQty: q[1], Ask: q[2], AskQty: q[3],
		Time: recv, ReceivedAt: recv,
	}}), nil
}

func (d *Decoder) candle(dst []ingest.Draft, recv time.Time) ([]ingest.Draft, error) {
	f := &d.f
	sym, err := d.symbol(f.s)
	if err != nil {
		return dst, err
	}
	k := &d.k
	*k = kline{}
	sc := &d.sc
	sc.Reset(f.k)
	if !sc.Object() {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "k: %v", sc.Err())
	}
	for key, ok := sc.Key(); ok; key, ok = sc.Key() {
		if len(key) != 1 {
			sc.Skip()
			continue
		}
		switch key[0] {
		case 't':
			k.t = sc.Number()
		case 'i':
			k.i = sc.Str()
		case 'o':
			k.o = sc.Str()
		case 'c':
			k.c = sc.Str()
		case 'h':
			k.h = sc.Str()
		case 'l':
			k.l = sc.Str()
		case 'v':
			k.v = sc.Str()
		case 'q':
			k.q = sc.Str()
		case 'n':
			k.n = sc.Number()
		case 'x':
			k.x = sc.Raw()
		default:
			sc.Skip()
		}
	}
	if err := sc.Err(); err != nil {
		return dst, wsfeed.Errorf(wsfeed.ReasonJSON, "k: %v", err)
	}
	iv, ok := interval(k.i)
	if !ok {
		return dst, wsfeed.Errorf(wsfeed.ReasonInterval, "interval %.8q", k.i)
	}
	open, ok := wire.ParseInt(k.t)
	if !ok {
		return dst, wsfeed.Errorf(wsfeed.ReasonTime, "open time %.32q", k.t)
	}
	n, ok := wire.ParseInt(k.n)
	if !ok {
		return dst, wsfeed.Errorf(wsfeed.ReasonField, "trades %.32q", k.n)
	}
	var v [6]decimal.Decimal
	for i, raw := range [6][]byte{k.o, k.h, k.l, k.c, k.v, k.q} {
		if v[i], err = wire.Decimal(raw); err != nil {
			return dst, wsfeed.Errorf(wsfeed.ReasonNumber, "kline %.32q", raw)
		}
	}
	return append(dst, ingest.Draft{Kind: ingest.KindCandle, Candle: market.Candle{
		Exchange: d.exchange, Symbol: sym, Interval: iv, OpenTime: wire.UnixMilli(open),
		Open: v[0], High: v[1], Low: v[2], Close: v[3], Volume: v[4], QuoteVolume: v[5],
		Trades: n, Closed: string(k.x) == "true",
	}}), nil
}

// interval maps Binance's interval names to market intervals; Binance has more (2h,
// 1w, 1M...) than tickstash supports.
func interval(b []byte) (market.Interval, bool) {
	switch string(b) {
	case "1s":
		return market.Interval1s, true
	case "1m":
		return market.Interval1m, true
	case "3m":
		return market.Interval3m, true
	case "5m":
		return market.Interval5m, true
	case "15m":
		return market.Interval15m, true
	case "30m":
		return market.Interval30m, true
	case "1h":
		return market.Interval1h, true
	case "4h":
		return market.Interval4h, true
	case "1d":
		return market.Interval1d, true
	}
	return 0, false
}

var errNoSymbol = errors.New("binance: missing symbol")

func (d *Decoder) symbol(native []byte) (market.Symbol, error) {
	if s, ok := d.cache[string(native)]; ok {
		return s, nil
	}
	if len(native) == 0 {
		return "", &wsfeed.DecodeError{Reason: wsfeed.ReasonSymbol, Err: errNoSymbol}
	}
	s, ok := d.known[string(native)]
	if !ok {
		var err error
		if s, err = SplitSymbol(string(native)); err != nil {
			return "", &wsfeed.DecodeError{Reason: wsfeed.ReasonSymbol, Err: err}
		}
	}
	if len(d.cache) < maxCachedSymbols {
		d.cache[string(native)] = s
	}
	return s, nil
}
