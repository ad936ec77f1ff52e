package redistest

import (
	"context"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// ScriptCalls is a go-redis hook (Client.AddHook) that counts the commands that run a
// script, EVALSHA and EVAL, pipelined ones included: tests of batching compare it with
// the operations they made.
type ScriptCalls struct{ N atomic.Int64 }

func (h *ScriptCalls) count(cmd redis.Cmder) {
	if name := cmd.Name(); name == "evalsha" || name == "eval" {
		h.N.Add(1)
	}
}

// DialHook passes dials through.
func (h *ScriptCalls) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook counts a script command.
func (h *ScriptCalls) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.count(cmd)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook counts the script commands of a pipeline.
func (h *ScriptCalls) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			h.count(cmd)
		}
		return next(ctx, cmds)
	}
}
