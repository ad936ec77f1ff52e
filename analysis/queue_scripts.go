package analysis

import (
	_ "embed"

	"github.com/redis/go-redis/v9"
)

// The queue's Lua scripts; each file's header states its KEYS, ARGV and reply. The claim,
// complete and housekeeping scripts share the claim step of queue_claimlib.lua, prepended to each.
var (
	//go:embed queue_claimlib.lua
	claimLibLua string
	//go:embed queue_enqueue.lua
	enqueueLua string
	//go:embed queue_claim.lua
	claimLua string
	//go:embed queue_complete.lua
	completeLua string
	//go:embed queue_housekeep.lua
	housekeepLua string
	//go:embed queue_extend.lua
	extendLua string
	//go:embed queue_deadletter.lua
	deadLetterLua string
	//go:embed queue_retry.lua
	retryLua string
	//go:embed results_store.lua
	storeResultLua string
	//go:embed queue_janitor.lua
	janitorLua string

	enqueueScript     = redis.NewScript(enqueueLua)
	claimScript       = redis.NewScript(claimLibLua + claimLua)
	completeScript    = redis.NewScript(claimLibLua + completeLua)
	housekeepScript   = redis.NewScript(claimLibLua + housekeepLua)
	extendScript      = redis.NewScript(extendLua)
	deadLetterScript  = redis.NewScript(deadLetterLua)
	retryScript       = redis.NewScript(retryLua)
	storeResultScript = redis.NewScript(storeResultLua)
	janitorScript     = redis.NewScript(janitorLua)
)
