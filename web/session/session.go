package session

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Event says what a request found of its session.
type Event string

// The session events a request can see.
const (
	// EventFound: the request carried a session the store holds.
	EventFound Event = "found"
	// EventCreated: the request carried no session; a new one was started.
	EventCreated Event = "created"
	// EventLost: the request carried a session the store no longer holds (its replica died, it was revoked, or it never existed).
	EventLost Event = "lost"
	// EventExpired: the request carried a session that timed out.
	EventExpired Event = "expired"
)

// Session is one request's view of its session. Handlers read and change
// Data, then hand the session back to the store's Save.
type Session struct {
	Data
	// ID identifies the session in its store: the key in memory, Redis or
	// Memcached, or the token's jti. It is "" for a new session until its
	// first Save.
	ID string
	// Event says what the request found.
	Event Event
	// LostFrom names the replica that held a session this request could not
	// find, when the store can tell (sticky mode); otherwise "".
	LostFrom string
	// Started is when the session began.
	Started time.Time
	// Expires is when the session ends if nothing else happens: the idle
	// timeout from now, capped by the absolute timeout. Zero when unknown.
	Expires time.Time
	// Version identifies the stored state this session was loaded from, for
	// stores that save conditionally: a Save over a state that changed in
	// the meantime fails with ErrConflict instead of losing that change.
	// "" for a session that was not loaded from the store.
	Version string
	// Refresh is set by a store whose session must be saved again even
	// though nothing changed, to stay alive (a token past half its life).
	Refresh bool

	renew        bool
	previous     string
	previousUser bool
}

// New returns a fresh, unsaved session with the given event.
func New(event Event, now time.Time) *Session {
	return &Session{Event: event, Started: now}
}

// Renew asks the next Save to give the session a new ID and to forget the
// old one, as on sign-in and sign-out (OWASP: renew the ID on privilege
// change). Call it before changing the user.
func (s *Session) Renew() {
	if !s.renew {
		s.previous = s.ID
		s.previousUser = s.User != ""
	}
	s.renew = true
}

// RenewedFromUser reports whether the ID being renewed away belonged to a
// signed-in user.
func (s *Session) RenewedFromUser() bool { return s.renew && s.previousUser }

// Renewing reports whether the next Save must issue a new ID, and the ID
// it must forget ("" when there is none).
func (s *Session) Renewing() (bool, string) { return s.renew, s.previous }

// Renewed tells the session its store has issued the new ID.
func (s *Session) Renewed() { s.renew, s.previous, s.previousUser = false, "", false }

// Saved tells the session a store that keeps it on a server has written
// it: under id, as the stored state version, ending at expires if nothing
// else happens. Any renewal is done (Renewed).
func (s *Session) Saved(id, version string, expires time.Time) {
	s.ID, s.Version, s.Expires = id, version, expires
	s.Renewed()
}

// Hash returns a short, stable hash of the session's ID, safe to show and log.
// It is "" for a session that has no ID yet.
func (s *Session) Hash() string { return HashID(s.ID) }

// HashID returns the first 8 hex digits of the SHA-256 of id, or "" for "".
func HashID(id string) string {
	if id == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:4])
}
