package leaderboard

import (
	_ "embed"

	"github.com/redis/go-redis/v9"
)

// decimal.lua and rank.lua are libraries: Redis runs one chunk per script, so they are
// put in front of the scripts that call them.
var (
	//go:embed decimal.lua
	decimalLua string
	//go:embed rank.lua
	rankLua string
	//go:embed write.lua
	writeLua string
	//go:embed read.lua
	readLua string
	//go:embed remove.lua
	removeLua string
)

// The scripts run with EVALSHA, falling back to EVAL on NOSCRIPT.
var (
	writeScript  = redis.NewScript(decimalLua + rankLua + writeLua)
	readScript   = redis.NewScript(rankLua + readLua)
	removeScript = redis.NewScript(removeLua)
)
