package coinbase

import (
	"github.com/tickstash/tickstash/ingest/wsfeed"
	"github.com/tickstash/tickstash/market"
)

// maxCachedSymbols bounds the symbol cache against endless new names.
const maxCachedSymbols = 4096

type symbols map[string]market.Symbol

func (m symbols) lookup(product []byte) (market.Symbol, error) {
	if s, ok := m[string(product)]; ok {
		return s, nil
	}
	s, err := market.ParseSymbol(string(product))
	if err != nil {
		return "", &wsfeed.DecodeError{Reason: wsfeed.ReasonSymbol, Err: err}
	}
	if len(m) < maxCachedSymbols {
		m[string(product)] = s
	}
	return s, nil
}
