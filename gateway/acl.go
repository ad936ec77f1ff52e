package gateway

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// nsACL runs the commands of namespaced tokens as Redis ACL users confined to their
// namespace, where Redis allows it.
type nsACL struct {
	enabled bool
}

// confines reports whether Redis confines namespaced tokens (so their scripts may run).
func (a *nsACL) confines() bool { return a != nil && a.enabled }

// clientFor returns the client that runs tok's commands.
func (s *Server) clientFor(ctx context.Context, tok *Token, pol CommandPolicy) redis.UniversalClient {
	return s.rest
}
