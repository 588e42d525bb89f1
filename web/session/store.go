package session

import (
	"errors"
	"fmt"
	"net/http"
)

// Store keeps sessions for one mode. Implementations are safe for
// concurrent use.
type Store interface {
	// Mode returns the mode this store implements.
	Mode() Mode
	// Load returns the session the request carries. A request without one, or
	// with one the store does not hold (any more), gets a new, unsaved session
	// whose Event says which; that is not an error. Errors are for a cookie
	// that is malformed or forged (*InvalidCookieError) and for a store that
	// cannot be reached (ErrUnavailable).
	Load(r *http.Request) (*Session, error)
	// Save persists the session and sets the cookie that carries it. It
	// issues a new ID for a new session or one that is being renewed. A
	// store that keeps sessions on the server saves only over the state the
	// session was loaded from (Version), else returns ErrConflict. On error
	// nothing was written to w and the stored session is unchanged.
	Save(w http.ResponseWriter, r *http.Request, s *Session) error
	// Describe says where this store keeps sessions, for people to read.
	Describe() string
}

// NaiveSaver is implemented by a store that can also save the way a plain
// read-modify-write does: a write of the whole session over whatever is
// stored, the last writer winning. It exists only so a person
// can watch concurrent updates get lost, next to Save, which does not lose
// them; nothing uses it unless a request asks for it (see the handlers'
// X-Write-Strategy header). It is an optional interface rather than a
// method of Store, so Store stays small and only the store whose safe write
// differs from the naive one (redisstore) has to offer it.
type NaiveSaver interface {
	// SaveNaive persists the session like Save, except that it never
	// checks Version: a change saved by a concurrent request between this
	// one's Load and SaveNaive is overwritten and lost. It still returns
	// ErrConflict for a session that ended meanwhile, which it must not
	// bring back. A new or renewing session is saved as Save would.
	SaveNaive(w http.ResponseWriter, r *http.Request, s *Session) error
}

// Confirmer is implemented by a store that acknowledges a write only once
// it is durable (redis mode: once the Redis replicas have it). A request
// answered from the stored session without writing it, because the
// session already holds its change (an idempotent request replayed),
// calls Confirm first: the change may be one that was stored but never
// acknowledged (its WAIT timed out, and the store answered 503), and the
// replay must not acknowledge what a failover could still lose.
type Confirmer interface {
	// Confirm returns nil once the session, as loaded, is as durable as a
	// Save would have made it, and otherwise the error Save would have
	// returned. Like Save it may set headers on w.
	Confirm(w http.ResponseWriter, r *http.Request, s *Session) error
}

// ErrConflict reports that the stored session changed between Load and
// Save (a concurrent request saved first). Nothing was written; the caller
// loads again and reapplies its change.
var ErrConflict = errors.New("the session changed concurrently")

// ErrUnavailable reports that the session store cannot be reached. Handlers
// answer it with 503 and never save over the session.
var ErrUnavailable = errors.New("the session store is unavailable")

// InvalidCookieError reports a session cookie that is malformed, tampered
// with or forged. Handlers answer it with 400 and expire the cookie.
type InvalidCookieError struct {
	// Cookie is the cookie's name.
	Cookie string
	// Reason says what is wrong, as a sentence.
	Reason string
	// InURL is set when the ID came from the query parameter URLParam of
	// the request's URL rather than from the cookie.
	InURL bool
}

// Error says, for the person, which cookie (or link) was refused and why.
func (e *InvalidCookieError) Error() string {
	if e.InURL {
		return fmt.Sprintf("The session ID in this link (query parameter %q) was not accepted: %s", URLParam, e.Reason)
	}
	return fmt.Sprintf("Your session cookie %q was not accepted: %s", e.Cookie, e.Reason)
}

// TooLargeError reports a session that would not fit in its cookie.
type TooLargeError struct {
	// Size is the size the cookie would have had, in bytes.
	Size int
	// Limit is the largest cookie allowed, in bytes.
	Limit int
}

// Error says, for the person, how large the token would be and what to do.
func (e *TooLargeError) Error() string {
	return fmt.Sprintf("That change would make your session token %d bytes, more than the %d bytes a cookie may hold. Remove something from the cart, or switch to sticky, redis or memcached mode, which keep the cart on the server.", e.Size, e.Limit)
}
