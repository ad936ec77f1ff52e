package binance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/tickstash/tickstash/market"
)

// QuoteAssets are the quote assets used to split a Binance symbol when no symbol list
// is given, longest first so that "BTCUSDT" ends in USDT, not in a shorter suffix.
var QuoteAssets = []string{
	"FDUSD", "BIDR", "BKRW", "BUSD", "DOGE", "EURI", "IDRT", "TUSD", "USDC", "USDP", "USDT",
	"AEUR", "AUD", "BNB", "BRL", "BTC", "DAI", "DOT", "ETH", "EUR", "GBP", "JPY", "MXN",
	"NGN", "PAX", "PLN", "RON", "RUB", "TRX", "TRY", "UAH", "UST", "USD", "VAI", "XRP",
	"ZAR", "ARS", "COP", "CZK",
}

// SplitSymbol turns a Binance symbol ("BTCUSDT") into a canonical one ("BTC-USDT")
// using QuoteAssets. It fails when no listed quote asset ends the name.
func SplitSymbol(native string) (market.Symbol, error) {
	up := strings.ToUpper(native)
	for _, q := range QuoteAssets {
		if len(up) > len(q) && strings.HasSuffix(up, q) {
			s := market.NewSymbol(up[:len(up)-len(q)], q)
			if err := s.Validate(); err != nil {
				return "", fmt.Errorf("binance: symbol %q: %w", native, err)
			}
			return s, nil
		}
	}
	return "", fmt.Errorf("binance: symbol %q: no known quote asset at its end", native)
}

// FetchSymbols reads the exchange's symbol list from restURL + "/api/v3/exchangeInfo"
// (restURL e.g. "https://api.binance.com" or "https://api.binance.us") and returns
// native name → canonical symbol for Config.SymbolMap. client nil means
// http.DefaultClient.
func FetchSymbols(ctx context.Context, client *http.Client, restURL string) (map[string]market.Symbol, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(restURL, "/")+"/api/v3/exchangeInfo", nil)
	if err != nil {
		return nil, fmt.Errorf("binance: exchange info: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("binance: exchange info: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("binance: exchange info: HTTP %s", resp.Status)
	}
	var info struct {
		Symbols []struct {
			Symbol     string `json:"symbol"`
			BaseAsset  string `json:"baseAsset"`
			QuoteAsset string `json:"quoteAsset"`
		} `json:"symbols"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return nil, fmt.Errorf("binance: exchange info: %w", err)
	}
	m := make(map[string]market.Symbol, len(info.Symbols))
	for _, s := range info.Symbols {
		sym := market.NewSymbol(s.BaseAsset, s.QuoteAsset)
		if sym.Validate() == nil {
			m[s.Symbol] = sym
		}
	}
	return m, nil
}
