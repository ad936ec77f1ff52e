package book

import (
	"hash/crc32"
	"time"
)

var fixedTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func crc32IEEE(s string) uint32 { return crc32.ChecksumIEEE([]byte(s)) }
