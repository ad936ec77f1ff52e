package book

// ParsedLevel is a level whose price and quantity text is already parsed, for the
// benchmarks that time the book's structure alone (the reference they are compared with
// takes parsed numbers).
type ParsedLevel struct {
	Side     Side
	Price, Q fixed
}

// ParseLevel parses a level's text as Set does.
func ParseLevel(s Side, price, qty []byte) (ParsedLevel, error) {
	p, err := parseFixed(price)
	if err != nil {
		return ParsedLevel{}, err
	}
	q, err := parseFixed(qty)
	if err != nil {
		return ParsedLevel{}, err
	}
	return ParsedLevel{s, p, q}, nil
}

// SetParsed is Set without the parsing.
func (b *Book) SetParsed(l *ParsedLevel) error { return b.set(l.Side, l.Price, l.Q) }
