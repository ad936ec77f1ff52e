package ingest_test

import (
	"strconv"

	"github.com/shopspring/decimal"
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func itoa(i int) string { return strconv.Itoa(i) }
