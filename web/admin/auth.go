package admin

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sessiondemo/shop/web/internal/httpx"
	"github.com/sessiondemo/shop/web/peer"
	"github.com/sessiondemo/shop/web/session"
)

// Admin authentication: the credentials from config, checked in constant
// time, then a signed cookie valid for an hour on every replica (they
// share the password and the internal key, so they share the MAC key).
// The hour is enforced here, not only by the browser: a cookie whose
// expiry lies further out is refused. Each sign-in has its own ID, and a
// sign-out ends that ID on every replica (signouts.go). HTTP Basic works
// too, for curl and tests, but not from a browser: the replicas never ask
// a browser for it (no WWW-Authenticate), and refuse it on a request that
// carries a browser's Sec-Fetch-Site, so no browser keeps credentials that
// a sign-out could not end.
//
// Every password tried, on the sign-in form or as HTTP Basic, goes
// through the throttle (throttle.go). And a control answers a caller who
// is not signed in exactly as it answers a signed-in admin who names a
// replica or node that does not exist (errNoControl): a guesser cannot
// try passwords on a harmless, unknown target.

// CookieName is the cookie a successful sign-in sets.
const CookieName = "admin_auth"

const cookieLife = time.Hour

// cookieMAC signs an admin cookie's ID and expiry.
func (a *App) cookieMAC(id, exp string) string {
	m := hmac.New(sha256.New, []byte(a.o.InternalKey+"\x00"+a.o.Password))
	m.Write([]byte("sessiondemo admin cookie v2|" + a.o.User + "|" + id + "|" + exp))
	return hex.EncodeToString(m.Sum(nil))
}

// newCookieValue returns a new sign-in's cookie value, "id.exp.mac".
func (a *App) newCookieValue(now time.Time) string {
	b := make([]byte, 16)
	rand.Read(b)
	id := base64.RawURLEncoding.EncodeToString(b)
	exp := strconv.FormatInt(now.Add(cookieLife).Unix(), 10)
	return id + "." + exp + "." + a.cookieMAC(id, exp)
}

// adminCookie returns the sign-in the request's cookie carries: its ID
// and expiry, when the MAC checks out, the expiry is in the future and no
// more than cookieLife away, and the sign-in was not ended.
func (a *App) adminCookie(r *http.Request) (id string, exp time.Time, ok bool) {
	c, err := session.ReadCookie(r, CookieName)
	if err != nil {
		return "", time.Time{}, false
	}
	parts := strings.Split(c.Value, ".")
	if len(parts) != 3 || !hmac.Equal([]byte(parts[2]), []byte(a.cookieMAC(parts[0], parts[1]))) {
		return "", time.Time{}, false
	}
	n, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return "", time.Time{}, false
	}
	exp, now := time.Unix(n, 0), time.Now()
	// A minute of slack for clocks that differ between replicas.
	if !now.Before(exp) || exp.After(now.Add(cookieLife+time.Minute)) {
		return "", time.Time{}, false
	}
	if !a.signouts.knowsAll() || a.signouts.ended(parts[0]) {
		return "", time.Time{}, false
	}
	return parts[0], exp, true
}

// credentialsOK compares in constant time.
func (a *App) credentialsOK(user, password string) bool {
	if a.o.Password == "" {
		return false
	}
	// Compare hashes, so not even the lengths leak through the timing.
	hash := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	u := subtle.ConstantTimeCompare(hash(user), hash(a.o.User))
	p := subtle.ConstantTimeCompare(hash(password), hash(a.o.Password))
	return u&p == 1
}

// signedIn reports whether r carries a valid admin cookie, for the page's
// rendering; it tries no password.
func (a *App) signedIn(r *http.Request) bool {
	if a.o.Password == "" {
		return false
	}
	_, _, ok := a.adminCookie(r)
	return ok
}

// fromBrowser reports whether a browser sent r: browsers add Sec-Fetch-Site
// to every request to a secure context, localhost included.
func fromBrowser(r *http.Request) bool { return r.Header.Get("Sec-Fetch-Site") != "" }

var errControlsOff = &httpx.Error{Status: http.StatusForbidden, Title: "Controls are off", Message: "The admin controls are off on this replica: ADMIN_PASSWORD is not set."}

// errNoControl is the answer to a control for a caller who is not signed
// in, and for a signed-in admin who names a replica or Redis node that
// does not exist: the same status and sentence, so that the answer to a
// password tried on an unknown target does not tell whether it was right.
var errNoControl = &httpx.Error{Status: http.StatusNotFound, Title: "No such control",
	Message: "There is no such control, or you are not signed in as the admin: sign in on the admin page, and check the replica's or node's name there."}

// requireAdmin answers errNoControl (or 403 with controls off) unless the
// request carries the admin cookie or, outside a browser, the admin
// credentials as HTTP Basic; a password tried goes through the throttle.
func (a *App) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.o.Password == "" {
			httpx.WriteError(w, r, a.logger, errControlsOff)
			return
		}
		if u, p, ok := r.BasicAuth(); ok && !fromBrowser(r) {
			if err := a.tryPassword(r, u, p); err != nil {
				a.writeAuthError(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if _, _, ok := a.adminCookie(r); !ok {
			httpx.WriteError(w, r, a.logger, errNoControl)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// tryPassword checks a user name and password through the throttle: nil
// when they are the admin's, errNoControl-like errors when not, a 429
// while the caller must wait.
func (a *App) tryPassword(r *http.Request, user, password string) error {
	key := throttleKey(r, user)
	if wait := a.throttle.wait(key, a.o.ThrottleClock()); wait > 0 {
		return &tooManyTriesError{wait: wait}
	}
	if !a.credentialsOK(user, password) {
		a.throttle.failed(key, a.o.ThrottleClock())
		a.logger.Warn("admin password refused", "request_id", httpx.InfoOf(r).RequestID, "client", httpx.InfoOf(r).ClientAddr)
		return errNoControl
	}
	a.throttle.succeeded(key)
	return nil
}

// requireKeys refuses a control between replicas when no admin password
// or no internal key is set: without a key the token is derived from "",
// which anyone can compute, so only the read-only internal calls stay
// open.
func (a *App) requireKeys(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.o.Password == "" || a.o.InternalKey == "" {
			httpx.WriteError(w, r, a.logger, errKeysMissing)
			return
		}
		next.ServeHTTP(w, r)
	})
}

var errKeysMissing = &httpx.Error{Status: http.StatusForbidden, Title: "Controls are off", Message: "The controls between replicas are off on this replica: ADMIN_PASSWORD or INTERNAL_KEY is not set."}

// requireInternal answers 404 to a call without the replicas' shared
// token, as if the endpoint did not exist.
func (a *App) requireInternal(next http.Handler) http.Handler {
	token := peer.Token(a.o.InternalKey)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !peer.Authentic(r, token) {
			httpx.WriteError(w, r, a.logger, httpx.ErrNotFound(r))
			return
		}
		// The caller's list may be older than the address: Docker gives a
		// freed address to the next container. A crash meant for app-2
		// must not end app-5.
		if want := r.Header.Get(peer.NameHeader); want != "" && want != a.o.Replica {
			httpx.WriteError(w, r, a.logger, &httpx.Error{Status: http.StatusConflict, Title: "Another replica",
				Message: fmt.Sprintf("This address is now %s, not %s; the replica list is a moment old.", a.o.Replica, httpx.Truncate(want, 32))})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// handleLogin serves POST /admin/login: the admin credentials for a
// signed cookie with a new sign-in ID.
func (a *App) handleLogin(w http.ResponseWriter, r *http.Request) {
	if err := httpx.ParseForm(w, r); err != nil {
		httpx.WriteError(w, r, a.logger, err)
		return
	}
	if a.o.Password == "" {
		a.renderPage(w, r, http.StatusForbidden, "The controls are off: ADMIN_PASSWORD is not set.")
		return
	}
	if err := a.tryPassword(r, strings.TrimSpace(r.PostFormValue("user")), r.PostFormValue("password")); err != nil {
		if e, ok := err.(*tooManyTriesError); ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(e.wait.Seconds())+1))
			a.renderPage(w, r, http.StatusTooManyRequests, e.Error())
			return
		}
		a.renderPage(w, r, http.StatusForbidden, "That user name and password are not the admin credentials.")
		return
	}
	c := session.Cookie(r, CookieName, a.newCookieValue(time.Now()), int(cookieLife/time.Second))
	c.SameSite = http.SameSiteStrictMode
	http.SetCookie(w, c)
	a.logger.Info("admin signed in", "request_id", httpx.InfoOf(r).RequestID)
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

// handleLogout serves POST /admin/logout: the cookie is deleted, and its
// sign-in ended on every replica, so a copy of the cookie no longer works.
func (a *App) handleLogout(w http.ResponseWriter, r *http.Request) {
	if id, exp, ok := a.adminCookie(r); ok {
		a.endSignIn(id, exp)
		a.logger.Info("admin signed out", "request_id", httpx.InfoOf(r).RequestID)
	}
	http.SetCookie(w, session.Expire(r, CookieName))
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}
