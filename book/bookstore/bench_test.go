package bookstore_test

import (
	"strconv"
	"testing"

	"github.com/tickstash/tickstash/book"
	"github.com/tickstash/tickstash/book/bookstore"
	"github.com/tickstash/tickstash/market"
)

// BenchmarkOffer measures what a live feed pays per message for keeping Redis fed: the
// copy of the top 50 levels a side of a 5 000-level book into the writer's slot (the
// writing itself happens once per interval, off the feed's goroutine).
func BenchmarkOffer(b *testing.B) {
	bk := book.New(market.Binance, "BTC-USDT")
	for i := 0; i < 5000; i++ {
		p := strconv.Itoa(100000 - i)
		q := strconv.Itoa(i%97 + 1)
		if err := bk.Set(book.Bid, []byte(p+".5"), []byte(q)); err != nil {
			b.Fatal(err)
		}
		if err := bk.Set(book.Ask, []byte(strconv.Itoa(100001+i)+".5"), []byte(q)); err != nil {
			b.Fatal(err)
		}
	}
	bk.MarkLive(1, bk.Status().Time)
	w := bookstore.New(nil, bookstore.Config{Depth: 50}, nil, nil)
	w.Offer(bk)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.Offer(bk)
	}
}
