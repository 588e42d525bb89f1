package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"net/http"
	"regexp"
	"time"

	"github.com/sessiondemo/shop/templates"
	"github.com/sessiondemo/shop/web/cart"
	"github.com/sessiondemo/shop/web/internal/httpx"
	"github.com/sessiondemo/shop/web/session"
)

// This file is the shop's service layer: reading a session, and changing
// it safely (idempotency keys, conditional saves retried after a lost
// race). The pages, the forms and the API call it; it renders nothing.

// Stores holds one session store per mode.
type Stores map[session.Mode]session.Store

// service reads and changes the caller's session in the request's mode.
// Each of its methods reports the session it served (httpx.ReportSession)
// before it returns, so the log and the page show it.
type service struct {
	stores Stores
	// userEnds, when set, ends the signed-in sessions of redis, jwt and memcached
	// mode that an admin ended (the memory store deletes its own).
	userEnds session.UserEnds
}

// store returns the store of the request's mode.
func (s *service) store(r *http.Request) (session.Store, error) {
	mode := httpx.InfoOf(r).Mode
	store, ok := s.stores[mode]
	if !ok {
		return nil, httpx.BadRequest(fmt.Sprintf("Session mode %q is not available on this replica.", mode))
	}
	return store, nil
}

// load returns the store of the request's mode and the session the
// request carries.
func (s *service) load(r *http.Request) (session.Store, *session.Session, error) {
	store, err := s.store(r)
	if err != nil {
		return nil, nil, err
	}
	sess, err := store.Load(r)
	if err != nil {
		return store, nil, err
	}
	if sess.User != "" && s.userEnds != nil && store.Mode() != session.Sticky {
		// Fails closed like the revocation check: a session that may
		// have been ended is not served while that cannot be told.
		at, err := s.userEnds.UserEndedAt(r.Context(), sess.User)
		if err != nil {
			return store, nil, err
		}
		if session.EndedByAdmin(sess.Started, at) {
			sess = session.New(session.EventLost, time.Now())
		}
	}
	return store, sess, nil
}

// save writes the session. A request that asked for the naive write
// strategy (redis mode, see httpx.Info.WriteStrategy) is saved with the
// store's naive write: it conflicts only when the session ended
// meanwhile, so a concurrent change is lost.
func save(store session.Store, w http.ResponseWriter, r *http.Request, sess *session.Session) error {
	if ns, ok := store.(session.NaiveSaver); ok && httpx.InfoOf(r).WriteStrategy == httpx.WriteNaive {
		return ns.SaveNaive(w, r, sess)
	}
	return store.Save(w, r, sess)
}

// report tells the log and the page which session the request served
// (httpx.ReportSession): sess, the one loaded (and maybe saved) last, or
// none held when the cookie or link was rejected (err). Nothing is
// reported when no session was loaded.
func report(r *http.Request, sess *session.Session, err error) {
	var ic *session.InvalidCookieError
	switch {
	case sess != nil:
		httpx.ReportSession(r, sess)
	case errors.As(err, &ic):
		httpx.ReportSession(r, nil)
	}
}

// storeBudget bounds the session work of one request: its loads, saves,
// and their retries after a lost race. nginx gives a replica 1.5 s before
// it tries another one, so a request whose store is failing (Redis down,
// or a Sentinel failover under way) must answer its clear 503 before
// that, not be cut off by nginx as if this replica had hung. The Redis
// client honours the deadline (ContextTimeoutEnabled).
const storeBudget = time.Second

// withBudget returns r with storeBudget as its deadline, or the time the
// load balancer stops waiting for the answer (httpx.Info.AnswerBy) when
// that comes first: a store call past it would change nothing anyone sees.
func withBudget(r *http.Request) (*http.Request, context.CancelFunc) {
	deadline := time.Now().Add(storeBudget)
	if by := httpx.InfoOf(r).AnswerBy; !by.IsZero() && by.Before(deadline) {
		deadline = by
	}
	ctx, cancel := context.WithDeadline(r.Context(), deadline)
	return r.WithContext(ctx), cancel
}

// tooLate returns the error of a change that must not be applied because
// nobody waits for its answer any more: the load balancer's deadline
// (httpx.Info.AnswerBy) has passed, or it closed the connection. That is
// how a paused replica, unpaused, treats the requests it held: nginx gave
// up on them and may have applied a copy elsewhere (the Idempotency-Key
// would catch that copy too, see Apply; this catches the change that
// carries none). It is checked before the session is read and again just
// before it is written, so the window is the store's write itself.
func tooLate(r *http.Request) error {
	by := httpx.InfoOf(r).AnswerBy
	now := time.Now()
	gone := errors.Is(context.Cause(r.Context()), context.Canceled)
	if !gone && (by.IsZero() || now.Before(by)) {
		return nil
	}
	msg := "The load balancer closed the connection before this change was made, so nobody would read the answer; nothing was changed."
	if !by.IsZero() && !now.Before(by) {
		msg = fmt.Sprintf("The load balancer stopped waiting for this change %s ago (X-Request-Start and X-Request-Budget), so nobody would read the answer; nothing was changed. A replica that was paused holds such requests until it runs again. A retry with the same Idempotency-Key is applied once.", now.Sub(by).Round(time.Millisecond))
	}
	return &httpx.Error{Status: http.StatusServiceUnavailable, Title: "Too late, not applied", Message: msg}
}

// Read loads the session of a request that changes nothing, and saves it
// only when the store asks to (a JWT past half its life).
func (s *service) Read(w http.ResponseWriter, r *http.Request) (*session.Session, error) {
	r, cancel := withBudget(r)
	defer cancel()
	store, sess, err := s.load(r)
	if err == nil && sess.Refresh {
		err = save(store, w, r, sess)
	}
	report(r, sess, err)
	if err != nil {
		return nil, err
	}
	return sess, nil
}

// change is one state change on a session, shared by forms and the API.
type change struct {
	// what describes the change, for idempotency: a key reused with a
	// different change is refused.
	what string
	// apply makes the change and returns the flash (templates.Flash code)
	// and its argument a form shows afterwards.
	apply func(sess *session.Session) (flash, arg string, err error)
}

func addItem(id string, qty int) change {
	return change{fmt.Sprintf("add %s %d", id, qty), func(s *session.Session) (string, string, error) {
		return templates.FlashAdded, id, s.Cart.Add(id, qty)
	}}
}

func setItem(id string, qty int) change {
	return change{fmt.Sprintf("set %s %d", id, qty), func(s *session.Session) (string, string, error) {
		return templates.FlashUpdated, id, s.Cart.Set(id, qty)
	}}
}

func removeItem(id string) change {
	return change{"remove " + id, func(s *session.Session) (string, string, error) {
		return templates.FlashRemoved, id, s.Cart.Remove(id)
	}}
}

var clearCart = change{"clear", func(s *session.Session) (string, string, error) {
	s.Cart.Clear()
	return templates.FlashCleared, "", nil
}}

var userPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

func signIn(user string) change {
	return change{"login " + user, func(s *session.Session) (string, string, error) {
		if !userPattern.MatchString(user) {
			return "", "", httpx.BadRequest("A demo user name is 1 to 32 letters, digits, '-' or '_'.")
		}
		// A new ID and a new start: the signed-in session begins here
		// (its absolute timeout, and what an admin's "end every session
		// of this user" ends, count from it).
		s.Renew()
		s.User = user
		s.Started = time.Now()
		return templates.FlashSignedIn, user, nil
	}}
}

var signOut = change{"logout", func(s *session.Session) (string, string, error) {
	s.Renew()
	s.Data = session.Data{}
	s.Started = time.Now()
	return templates.FlashSignedOut, "", nil
}}

var idempotencyKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{8,64}$`)

// idempotency identifies a request that a client or nginx may retry: the
// Idempotency-Key header, or the idem query parameter of a form's action.
type idempotency struct {
	key     string // short hash of the key
	request string // short hash of what the request changes
}

// idempotencyOf reads the request's idempotency key, if it has one.
func idempotencyOf(r *http.Request, c change) (*idempotency, error) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		key = r.URL.Query().Get("idem")
	}
	if key == "" {
		return nil, nil
	}
	if !idempotencyKeyPattern.MatchString(key) {
		return nil, httpx.BadRequest("An Idempotency-Key is 8 to 64 letters, digits, '-' or '_'.")
	}
	return &idempotency{key: shortHash(key, 6), request: shortHash(r.URL.Path+" "+c.what, 4)}, nil
}

// cartError turns the cart's refusals into what the client sees.
func cartError(err error) error {
	var (
		inv *cart.InvalidError
		nic *cart.NotInCartError
	)
	switch {
	case errors.As(err, &inv):
		return httpx.BadRequest(inv.Message)
	case errors.As(err, &nic):
		return &httpx.Error{Status: http.StatusNotFound, Title: "Not in your cart", Message: nic.Error()}
	}
	return err
}

func shortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:n])
}

// result is what Apply did.
type result struct {
	sess     *session.Session
	flash    string
	arg      string
	replayed bool
}

// maxAttempts bounds how often Apply reloads and reapplies a change whose
// save lost a race with a concurrent request of the same browser; between
// attempts it waits a random, growing pause so racing requests spread out.
const maxAttempts = 20

// Apply loads the session, applies the change and saves. A request whose
// idempotency key the session has seen is not applied again: it answers
// with the session as it is (replayed). When another request of the same
// browser saved in between (session.ErrConflict), it loads again and
// reapplies the change, so no update is lost. On any other error nothing
// is saved: the stored session stays as it was.
func (s *service) Apply(w http.ResponseWriter, r *http.Request, c change) (result, error) {
	idem, err := idempotencyOf(r, c)
	if err != nil {
		return result{}, err
	}
	if err := tooLate(r); err != nil {
		return result{}, err
	}
	r, cancel := withBudget(r)
	defer cancel()
	first := ""
	for attempt := 1; ; attempt++ {
		res, loaded, err := s.applyOnce(w, r, c, idem, attempt, &first)
		report(r, loaded, err)
		if c.what == signOut.what && errors.Is(err, session.ErrUnavailable) {
			return res, s.signOutNotRecorded(w, r, err)
		}
		if !errors.Is(err, session.ErrConflict) {
			return res, err
		}
		if attempt == maxAttempts {
			return result{}, &httpx.Error{Status: http.StatusConflict, Title: "Too many changes at once",
				Message: fmt.Sprintf("Your session changed %d times while this change was being saved; nothing was changed. Try again.", maxAttempts)}
		}
		// A fresh response for the next attempt: the failed save wrote no
		// cookie, but a replay marker or the like must not leak.
		w.Header().Del("Idempotent-Replayed")
		time.Sleep(time.Duration(mathrand.Int64N(int64(attempt) * int64(time.Millisecond))))
	}
}

// signOutNotRecorded answers a sign-out the store could not record. It
// never pretends to have signed out. Where the store can end the session
// later (jwt: the token's revocation, session.Ender), the cookie is
// deleted, the store keeps trying, and the 503 says all of that: the
// browser's copy is gone at once, and no copy works while Redis is down
// (signed-in tokens are refused then). Elsewhere (redis mode: the session
// lives in Redis, which cannot be reached to delete it) nothing changed
// and the person is still signed in, so the cookie stays, to sign out
// again once Redis is back.
func (s *service) signOutNotRecorded(w http.ResponseWriter, r *http.Request, err error) error {
	store, serr := s.store(r)
	if serr != nil {
		return err
	}
	ender, ok := store.(session.Ender)
	if !ok {
		return &httpx.Error{Status: http.StatusServiceUnavailable, Title: "Not signed out",
			Message: "This replica could not end your session in Redis, where it lives (Redis cannot be reached, or is full): you are still signed in, and nothing was changed. Sign out again in a few seconds."}
	}
	later := ender.EndLater(r)
	http.SetCookie(w, session.Expire(r, ender.CookieName()))
	if !later {
		return err
	}
	replica := httpx.InfoOf(r).Replica
	return &httpx.Error{Status: http.StatusServiceUnavailable, Title: "Sign-out not recorded yet",
		Message: fmt.Sprintf("Your token was deleted from this browser, but Redis is unreachable, so the sign-out could not be written to the revocation list. Replica %s tries again every second until Redis is back; until then every replica refuses signed-in tokens, so no copy of yours works meanwhile. Should %s stop before Redis is back, a copy of the token taken before now would work again until it expires.", replica, replica)}
}

// applyOnce is one attempt of Apply. It returns the session it loaded,
// also with an error, for the log.
func (s *service) applyOnce(w http.ResponseWriter, r *http.Request, c change, idem *idempotency, attempt int, first *string) (result, *session.Session, error) {
	store, sess, err := s.load(r)
	if err != nil {
		return result{}, nil, err
	}
	// A retry that finds another session than the first attempt did (a
	// concurrent sign-in or sign-out renewed the ID) must not apply the
	// change to a fresh one: the person would look signed out, the cart
	// they carried along out of reach.
	if attempt == 1 {
		*first = sess.ID
	} else if sess.Event != session.EventFound || sess.ID != *first {
		return result{}, sess, &httpx.Error{Status: http.StatusConflict, Title: "Your session changed",
			Message: "Your session changed while this change was being made (you signed in or out in another tab); nothing was changed. Reload and try again."}
	}
	if idem != nil {
		if seen, same := sess.Recall(idem.key, idem.request); seen {
			if !same {
				return result{}, sess, &httpx.Error{Status: http.StatusUnprocessableEntity, Title: "Idempotency key reused",
					Message: "This Idempotency-Key was already used for a different change; use a new key for each change."}
			}
			if c, ok := store.(session.Confirmer); ok {
				if err := c.Confirm(w, r, sess); err != nil {
					return result{}, sess, err
				}
			}
			w.Header().Set("Idempotent-Replayed", "true")
			return result{sess: sess, replayed: true}, sess, nil
		}
	}
	flash, arg, err := c.apply(sess)
	if err != nil {
		return result{}, sess, cartError(err)
	}
	if idem != nil {
		sess.Remember(idem.key, idem.request, time.Now())
	}
	if err := tooLate(r); err != nil {
		return result{}, sess, err
	}
	if err := save(store, w, r, sess); err != nil {
		return result{}, sess, err
	}
	return result{sess: sess, flash: flash, arg: arg}, sess, nil
}
