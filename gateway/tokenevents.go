package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
)

// Token changes are pushed to every gateway over core NATS, so that a revocation (or a
// secret rotation) takes effect at once instead of after Config.TokenCacheTTL. The
// message, on TokenEventsSubject(prefix), is
//
//	{"id":"tok_...","event":"revoked"}
//
// (event "revoked" or "rotated"). It carries no token material: a gateway drops its
// cached copy of the token with that id and reads the record from Redis on its next
// use. Core NATS may lose a message (a gateway disconnected at that moment): the cache's
// expiry is the fallback, so a lost event delays the change by at most TokenCacheTTL.

// TokenEvent is the message announcing a change of a token.
type TokenEvent struct {
	// ID is the token's id.
	ID string `json:"id"`
	// Event is what changed: "revoked" or "rotated".
	Event string `json:"event"`
}

// The token events.
const (
	TokenRevoked = "revoked"
	TokenRotated = "rotated"
)

// ErrTokenEventNotSent is wrapped by TokenStore methods whose change was stored in
// Redis but could not be announced on NATS: running gateways then notice it within
// their token cache TTL.
var ErrTokenEventNotSent = errors.New("gateway: token change stored but not announced on NATS")

// Publisher sends a message on core NATS (*nats.Conn).
type Publisher interface {
	Publish(subject string, data []byte) error
}

var _ Publisher = (*nats.Conn)(nil)

// TokenEventsSubject is the NATS subject of token changes for the key prefix: gateways
// and `tickstash token` that share a prefix share the subject.
func TokenEventsSubject(prefix string) string {
	if prefix == "" {
		prefix = "ts"
	}
	// Subject tokens may not hold whitespace or wildcards; dots would split the prefix
	// into tokens, which is harmless but untidy.
	clean := strings.Map(func(r rune) rune {
		if r <= ' ' || r == '.' || r == '*' || r == '>' || r == 0x7f {
			return '_'
		}
		return r
	}, prefix)
	return "tickstash.gw.tokens." + clean
}

// announce publishes a token event when the store has a Publisher.
func (s *TokenStore) announce(id, event string) error {
	if s.pub == nil {
		return nil
	}
	data, _ := json.Marshal(TokenEvent{ID: id, Event: event})
	if err := s.pub.Publish(TokenEventsSubject(s.keys.prefix), data); err != nil {
		return fmt.Errorf("%w: token %s %s: %w", ErrTokenEventNotSent, id, event, err)
	}
	return nil
}

// subscribeTokenEvents makes the server drop cached tokens as their changes are
// announced. The subscription is confirmed by the NATS server before it returns, so a
// change announced afterwards reaches this server.
func (s *Server) subscribeTokenEvents() (*nats.Subscription, error) {
	subject := TokenEventsSubject(s.cfg.Prefix)
	sub, err := s.deps.NATS.Subscribe(subject, func(m *nats.Msg) {
		var ev TokenEvent
		if err := json.Unmarshal(m.Data, &ev); err != nil || ev.ID == "" {
			s.m.tokenEvents.WithLabelValues("malformed").Inc()
			return
		}
		s.tcache.forget(ev.ID)
		label := ev.Event
		if label != TokenRevoked && label != TokenRotated {
			label = "other"
		}
		s.m.tokenEvents.WithLabelValues(label).Inc()
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: subscribe to token changes on %s: %w", subject, err)
	}
	if err := s.deps.NATS.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("gateway: subscribe to token changes on %s: %w", subject, err)
	}
	return sub, nil
}

// forget drops every cached entry of token id. Lookups that started before it do not
// put their (possibly stale) result in the cache.
func (c *tokenCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for hash, e := range c.m {
		if e.tok.ID == id {
			delete(c.m, hash)
		}
	}
}
