package session

import (
	"context"
	"net/http"
	"time"
)

// Ending sessions when a store cannot be reached, or when an admin ends
// every session of a user: what the stores and the shop's service share.

// UnavailableError is an ErrUnavailable with its own headline and sentence,
// for a store whose failure needs other words than "the store is down".
type UnavailableError struct {
	// Title is a short headline; Message says what happened and what the
	// person can do.
	Title, Message string
	// Err is the underlying failure.
	Err error
}

// Error is the Message, with the underlying failure.
func (e *UnavailableError) Error() string { return e.Message + " (" + e.Err.Error() + ")" }

// Unwrap makes the error an ErrUnavailable, and Err.
func (e *UnavailableError) Unwrap() []error { return []error{ErrUnavailable, e.Err} }

// Ender is implemented by a store that can end the session a request
// carries after the fact: when a sign-out could not reach the store, the
// store keeps trying in the background, for as long as the replica runs,
// to record that the session ended.
type Ender interface {
	// EndLater ends the request's session as soon as the store can be
	// reached. It reports whether there was a session to end.
	EndLater(r *http.Request) bool
	// CookieName is the cookie that carries the session.
	CookieName() string
}

// UserEnds records when an admin ended every session of a user (OWASP ASVS
// 5.0 7.4.5), for the stores whose sessions no replica can delete on its
// own: redis and memcached (no index from a user to their sessions) and
// jwt (the token is the session). A signed-in session of that user that began no later than
// that moment is over. (Sign-in starts the session anew: a new ID and a new
// start.) The memory store deletes such sessions itself instead.
type UserEnds interface {
	// EndUser ends every session of user that began no later than at.
	EndUser(ctx context.Context, user string, at time.Time) error
	// UserEndedAt returns when the user's sessions were last ended, or
	// the zero time; an error means it cannot be told (ErrUnavailable).
	UserEndedAt(ctx context.Context, user string) (time.Time, error)
}

// EndedByAdmin reports whether a session that began at started was ended
// by an admin at at. Starts are kept to the second (a token's sst), so a
// session begun within the second of the end is ended too.
func EndedByAdmin(started, at time.Time) bool {
	return !at.IsZero() && started.Unix() <= at.Unix()
}
