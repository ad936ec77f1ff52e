package leaderboard

import (
	_ "embed"

	"github.com/redis/go-redis/v9"
)

//go:embed write.lua
var writeLua string

//go:embed read.lua
var readLua string

// The scripts run with EVALSHA, falling back to EVAL on NOSCRIPT.
var (
	writeScript = redis.NewScript(writeLua)
	readScript  = redis.NewScript(readLua)
)

//go:embed remove.lua
var removeLua string

var removeScript = redis.NewScript(removeLua)
