package pipeline

import "github.com/tickstash/tickstash/market"

// BookPrefix starts every order-book subject. Order books are the next stage to be
// added; their JSON shape and delivery contract go in this file when they land.
const BookPrefix = "ts.book"

// BookSubject returns the subject of a market's order-book updates:
// ts.book.<exchange>.<symbol>.
func BookSubject(ex market.Exchange, sym market.Symbol) string {
	return BookPrefix + "." + string(ex) + "." + string(sym)
}
