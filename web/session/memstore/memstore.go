// Package memstore keeps sessions in this replica's memory: the sticky mode.
// A session lives and dies with its replica; the load balancer must send
// every request of a browser to the replica that holds its session.
package memstore

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sessiondemo/shop/web/cart"
	"github.com/sessiondemo/shop/web/session"
)

// CookieName is the cookie that carries a sticky session's ID. A request
// marked with session.WithIDInURL carries it in the query parameter
// session.URLParam instead, and gets no cookie.
const CookieName = "sticky_sid"

// idCookie carries a sticky session's ID, of the form session.StickyIDs
// (the replica that issued it, then 256 random bits), in the cookie
// CookieName or, on a request marked so, in the URL.
var idCookie = session.IDCookie{Name: CookieName, Mode: session.Sticky, Format: session.StickyIDs, URL: true}

type entry struct {
	data     session.Data
	started  time.Time
	lastSeen time.Time
	version  uint64
}

// Store is an in-memory session store. The zero value is not usable; call New.
type Store struct {
	replica  string
	timeouts session.Timeouts
	now      func() time.Time

	mu       sync.Mutex
	sessions map[string]*entry
	// ended remembers, for a while, the IDs Sweep removed and when, so a
	// browser that comes back is told its session expired, not that its
	// replica lost it.
	ended map[string]time.Time
}

// endedMemory is how long a swept ID is remembered.
const endedMemory = time.Hour

var _ session.Store = (*Store)(nil)

// New returns a store for the named replica whose sessions end after the
// timeouts. Call SweepEvery to free the memory of ended sessions.
func New(replica string, timeouts session.Timeouts) *Store {
	return &Store{replica: replica, timeouts: timeouts, now: time.Now, sessions: make(map[string]*entry), ended: make(map[string]time.Time)}
}

// EndUser deletes every session of the signed-in user and returns how
// many: an admin ended them. A browser that comes back with one finds it
// lost.
func (s *Store) EndUser(user string) int {
	if user == "" {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, e := range s.sessions {
		if e.data.User == user {
			delete(s.sessions, id)
			n++
		}
	}
	return n
}

// Sweep removes every session that has ended and returns how many.
func (s *Store) Sweep() int {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, e := range s.sessions {
		if s.timeouts.Ended(e.started, e.lastSeen, now) {
			delete(s.sessions, id)
			s.ended[id] = now
			n++
		}
	}
	for id, at := range s.ended {
		if now.Sub(at) > endedMemory {
			delete(s.ended, id)
		}
	}
	return n
}

// SweepEvery sweeps at the interval until ctx is done.
func (s *Store) SweepEvery(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Sweep()
		}
	}
}

// Mode returns session.Sticky.
func (s *Store) Mode() session.Mode { return session.Sticky }

// Describe says where sessions live.
func (s *Store) Describe() string { return "memory of " + s.replica }

// Len returns the number of sessions held.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// RequestID returns the session ID the request carries, unchecked, or "":
// from the URL when the request is marked so (affinity url), from the
// cookie otherwise (session.IDCookie.Value).
func (s *Store) RequestID(r *http.Request) string { return idCookie.Value(r) }

// Load returns the request's session from memory.
func (s *Store) Load(r *http.Request) (*session.Session, error) {
	now := s.now()
	id, instead, err := idCookie.Load(r, now)
	if id == "" {
		return instead, err
	}
	s.mu.Lock()
	e, ok := s.sessions[id]
	if ok && s.timeouts.Ended(e.started, e.lastSeen, now) {
		delete(s.sessions, id)
		s.mu.Unlock()
		return session.New(session.EventExpired, now), nil
	}
	if _, swept := s.ended[id]; !ok && swept {
		s.mu.Unlock()
		return session.New(session.EventExpired, now), nil
	}
	if !ok {
		s.mu.Unlock()
		lost := session.New(session.EventLost, now)
		lost.LostFrom, _ = idCookie.Format.Replica(id)
		return lost, nil
	}
	e.lastSeen = now
	sess := &session.Session{
		Data:    e.data.Clone(),
		ID:      id,
		Event:   session.EventFound,
		Started: e.started,
		Expires: s.timeouts.Ends(e.started, now),
		Version: strconv.FormatUint(e.version, 10),
	}
	s.mu.Unlock()
	return sess, nil
}

// Save stores a copy of the session in memory and sets its cookie, unless
// the request carries its session in the URL: then the caller puts the
// (possibly new) sess.ID into the links it hands out.
func (s *Store) Save(w http.ResponseWriter, r *http.Request, sess *session.Session) error {
	now := s.now()
	renew, previous := sess.Renewing()
	id := sess.ID
	if id == "" || renew {
		var err error
		if id, err = idCookie.Format.New(strings.ToLower(s.replica)); err != nil {
			return err
		}
	}
	s.mu.Lock()
	// Only over the state this session was loaded from: a concurrent
	// request that saved first would otherwise lose its change.
	if sess.Version != "" {
		cur, ok := s.sessions[sess.ID]
		if !ok || strconv.FormatUint(cur.version, 10) != sess.Version {
			s.mu.Unlock()
			return session.ErrConflict
		}
	}
	var version uint64 = 1
	if cur, ok := s.sessions[id]; ok {
		version = cur.version + 1
	}
	if renew && previous != "" {
		delete(s.sessions, previous)
	}
	sess.ForgetApplied(s.timeouts.AppliedSince(now), session.MaxApplied)
	s.sessions[id] = &entry{
		data:     sess.Data.Clone(),
		started:  sess.Started,
		lastSeen: now,
		version:  version,
	}
	s.mu.Unlock()
	sess.Saved(id, strconv.FormatUint(version, 10), s.timeouts.Ends(sess.Started, now))
	idCookie.Set(w, r, id)
	return nil
}

// Inspect shows the request's in-memory entry, or which replica holds it.
func (s *Store) Inspect(r *http.Request) session.Inspection { return s.InspectID(idCookie.Value(r)) }

// InspectID is Inspect for the session with the given ID: the replica that
// holds a session shows it when another replica's admin page asks.
func (s *Store) InspectID(id string) session.Inspection {
	in, ok := idCookie.Inspect(id)
	if !ok {
		return in
	}
	in.Replica, _ = idCookie.Format.Replica(id)
	if in.Replica != s.replica {
		in.Where = "The session was issued by " + in.Replica + " and lives only in its memory."
		return in
	}
	s.mu.Lock()
	e, ok := s.sessions[id]
	var view any
	if ok {
		view = struct {
			User     string      `json:"user"`
			Cart     []cart.Line `json:"cart"`
			Started  time.Time   `json:"started"`
			LastSeen time.Time   `json:"last_seen"`
			Version  uint64      `json:"version"`
			Applied  int         `json:"idempotency_keys_remembered"`
		}{e.data.User, e.data.Cart.Lines, e.started.UTC(), e.lastSeen.UTC(), e.version, len(e.data.Applied)}
	}
	n := len(s.sessions)
	s.mu.Unlock()
	if !ok {
		in.Where = fmt.Sprintf("%s does not hold this session (any more): it was restarted or the session ended.", s.replica)
		return in
	}
	b, _ := json.MarshalIndent(view, "", "  ")
	in.Held = true
	in.Decoded = string(b)
	in.RawBytes = len(b)
	in.Where = fmt.Sprintf("A Go value in the memory of %s, one of the %d sessions it holds. No other replica can see it.", s.replica, n)
	return in
}
