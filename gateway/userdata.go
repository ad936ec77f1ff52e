package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tickstash/tickstash/cache"
	"github.com/tickstash/tickstash/cache/session"
	"github.com/tickstash/tickstash/featureflag"
)

// The routes of what a bot keeps per user: sessions, the user's state document and
// feature flags. Each acts for the token's subject only.

// sessionJSON is the wire form of a session.
type sessionJSON struct {
	ID      string          `json:"id"`
	User    string          `json:"user"`
	Data    json.RawMessage `json:"data"`
	Created time.Time       `json:"created"`
	// ExpiresAt is when the session ends unless touched (the TTL slides on touch).
	ExpiresAt time.Time `json:"expires_at"`
}

func sessionOut(sess session.Session, now time.Time) sessionJSON {
	return sessionJSON{ID: sess.ID, User: sess.User, Data: sess.Data, Created: sess.Created.UTC(),
		ExpiresAt: now.Add(sess.TTL).UTC().Truncate(time.Millisecond)}
}

// SessionRequest is the body of POST /v1/sessions.
type SessionRequest struct {
	// Data is the session's JSON document; absent means null.
	Data json.RawMessage `json:"data,omitempty"`
}

func (s *Server) handleSessionCreate(w http.ResponseWriter, r *http.Request) {
	if s.deps.Sessions == nil {
		s.writeError(w, r, errNotConfigured)
		return
	}
	var req SessionRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	st := stateOf(r)
	sess, err := s.deps.Sessions.Create(r.Context(), st.token.Subject, req.Data)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	st.target = "session " + sess.ID
	w.Header().Set("Location", "/v1/sessions/"+url.PathEscape(sess.ID))
	writeJSON(w, http.StatusCreated, sessionOut(sess, time.Now()))
}

// ownSession returns the session named in the path if it belongs to the token's
// subject. Another user's session answers as a missing one does, so that ids cannot be
// probed.
func (s *Server) ownSession(r *http.Request) (session.Session, error) {
	id := r.PathValue("id")
	sess, err := s.deps.Sessions.Get(r.Context(), id)
	if err == nil && sess.User != stateOf(r).token.Subject {
		err = fmt.Errorf("%w: session %q", ErrNotFound, id)
	}
	return sess, err
}

func (s *Server) handleSessionGet(w http.ResponseWriter, r *http.Request) {
	if s.deps.Sessions == nil {
		s.writeError(w, r, errNotConfigured)
		return
	}
	sess, err := s.ownSession(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sessionOut(sess, time.Now()))
}

func (s *Server) handleSessionTouch(w http.ResponseWriter, r *http.Request) {
	s.onOwnSession(w, r, func(ctx context.Context, id string) error { return s.deps.Sessions.Touch(ctx, id) })
}

func (s *Server) handleSessionDelete(w http.ResponseWriter, r *http.Request) {
	s.onOwnSession(w, r, func(ctx context.Context, id string) error { return s.deps.Sessions.Destroy(ctx, id) })
}

// onOwnSession applies op to the session named in the path, if it belongs to the token's
// subject, and answers 204 No Content.
func (s *Server) onOwnSession(w http.ResponseWriter, r *http.Request, op func(ctx context.Context, id string) error) {
	if s.deps.Sessions == nil {
		s.writeError(w, r, errNotConfigured)
		return
	}
	stateOf(r).target = "session " + r.PathValue("id")
	sess, err := s.ownSession(r)
	if err == nil {
		err = op(r.Context(), sess.ID)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleSessionList(w http.ResponseWriter, r *http.Request) {
	if s.deps.Sessions == nil {
		s.writeError(w, r, errNotConfigured)
		return
	}
	user := stateOf(r).token.Subject
	ss, err := s.deps.Sessions.List(r.Context(), user)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := time.Now()
	out := make([]sessionJSON, len(ss))
	for i, sess := range ss {
		out[i] = sessionOut(sess, now)
	}
	writeJSON(w, http.StatusOK, map[string]any{"subject": user, "sessions": out})
}

// StateRequest is the body of PUT /v1/state.
type StateRequest struct {
	// Version is the version the writer read (0: there is no document yet). It may
	// come in an If-Match header instead.
	Version *int64 `json:"version,omitempty"`
	// State is the new document: any JSON value.
	State json.RawMessage `json:"state"`
}

func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// ifMatchVersion reads the version of an If-Match header: "3" (an ETag of GET
// /v1/state) or 3. ok is false without the header.
func ifMatchVersion(r *http.Request) (v int64, ok bool, err error) {
	h := r.Header.Get("If-Match")
	if h == "" {
		return 0, false, nil
	}
	t := strings.TrimSpace(h)
	if len(t) >= 2 && t[0] == '"' && t[len(t)-1] == '"' {
		t = t[1 : len(t)-1]
	}
	v, err = strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 {
		return 0, false, fmt.Errorf("%w: If-Match %q: want the ETag of GET /v1/state, such as \"3\"", ErrInvalid, h)
	}
	return v, true, nil
}

func (s *Server) handleStateGet(w http.ResponseWriter, r *http.Request) {
	if s.deps.UserState == nil {
		s.writeError(w, r, errNotConfigured)
		return
	}
	user := stateOf(r).token.Subject
	us, err := s.deps.UserState.Get(r.Context(), user)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	doc := us.Doc
	if len(doc) == 0 {
		doc = json.RawMessage("null")
	}
	out := map[string]any{"subject": user, "version": us.Version, "state": doc}
	if !us.Updated.IsZero() {
		out["updated"] = us.Updated.UTC()
	}
	w.Header().Set("ETag", etag(us.Version))
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleStatePut(w http.ResponseWriter, r *http.Request) {
	if s.deps.UserState == nil {
		s.writeError(w, r, errNotConfigured)
		return
	}
	var req StateRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(req.State) == 0 {
		s.writeError(w, r, fmt.Errorf("%w: state is required (the whole new document)", ErrInvalid))
		return
	}
	hv, hasHeader, err := ifMatchVersion(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var version int64
	switch {
	case hasHeader && req.Version != nil && *req.Version != hv:
		s.writeError(w, r, fmt.Errorf("%w: If-Match says version %d, the body %d", ErrInvalid, hv, *req.Version))
		return
	case hasHeader:
		version = hv
	case req.Version != nil:
		version = *req.Version
	default:
		writeProblem(w, r, http.StatusPreconditionRequired,
			"give the version you read (If-Match: \"<version>\" or \"version\" in the body; 0 creates the document): updates are compare-and-set")
		return
	}
	if version < 0 {
		s.writeError(w, r, fmt.Errorf("%w: version %d: want 0 or more", ErrInvalid, version))
		return
	}
	st := stateOf(r)
	st.target = "state " + st.token.Subject
	nv, err := s.deps.UserState.Update(r.Context(), st.token.Subject, version, req.State)
	if err != nil {
		if errors.Is(err, cache.ErrConflict) {
			w.Header().Set("ETag", etag(nv))
		}
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(nv))
	writeJSON(w, http.StatusOK, map[string]any{"subject": st.token.Subject, "version": nv})
}

// unknownVariant is the default passed to Flags.Variant to tell an unknown flag apart:
// flag variants never contain a NUL.
const unknownVariant = "\x00unknown"

const maxFlagAttrs = 32

func (s *Server) handleFlag(w http.ResponseWriter, r *http.Request) {
	if s.deps.Flags == nil {
		s.writeError(w, r, errNotConfigured)
		return
	}
	key := r.PathValue("flag")
	if err := featureflag.ValidateKey(key); err != nil {
		s.writeError(w, r, fmt.Errorf("%w: %v", ErrInvalid, err))
		return
	}
	q := r.URL.Query()
	u := featureflag.User{ID: stateOf(r).token.Subject}
	if kvs := q["attr"]; len(kvs) > 0 {
		if len(kvs) > maxFlagAttrs {
			s.writeError(w, r, fmt.Errorf("%w: %d attr parameters, at most %d", ErrInvalid, len(kvs), maxFlagAttrs))
			return
		}
		u.Attrs = make(map[string]string, len(kvs))
		for _, kv := range kvs {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				s.writeError(w, r, fmt.Errorf("%w: attr %q: want key=value", ErrInvalid, kv))
				return
			}
			u.Attrs[k] = v
		}
	}
	res := FlagResult{Flag: key, Subject: u.ID, Known: true, Variant: s.deps.Flags.Variant(key, u, unknownVariant)}
	if res.Variant == unknownVariant {
		def, ok := q["default"]
		if !ok {
			s.writeError(w, r, fmt.Errorf("%w: flag %q is not defined (pass default=<variant> to be served a default instead)", ErrNotFound, key))
			return
		}
		res.Known, res.Variant = false, def[0]
	}
	res.Enabled = res.Variant == "on"
	writeJSON(w, http.StatusOK, res)
}
