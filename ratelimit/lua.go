package ratelimit

import (
	_ "embed"

	"github.com/redis/go-redis/v9"
)

//go:embed check.lua
var checkLua string

// checkScript runs with EVALSHA and falls back to EVAL (which also caches it on the
// server) only when Redis answers NOSCRIPT.
var checkScript = redis.NewScript(checkLua)
