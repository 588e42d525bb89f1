package admin

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
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
// share the password, so they share the key). HTTP Basic works too, for
// curl and tests.

// CookieName is the cookie a successful sign-in sets.
const CookieName = "admin_auth"

const cookieLife = time.Hour

// failedLoginDelay slows down password guessing.
const failedLoginDelay = 500 * time.Millisecond

func (a *App) cookieMAC(exp string) string {
	m := hmac.New(sha256.New, []byte(a.o.Password))
	m.Write([]byte("sessiondemo admin cookie v1|" + a.o.User + "|" + exp))
	return hex.EncodeToString(m.Sum(nil))
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

// signedIn reports whether r carries the admin credentials or cookie.
func (a *App) signedIn(r *http.Request) bool {
	if a.o.Password == "" {
		return false
	}
	if u, p, ok := r.BasicAuth(); ok {
		return a.credentialsOK(u, p)
	}
	c, err := r.Cookie(CookieName)
	if err != nil {
		return false
	}
	exp, mac, ok := strings.Cut(c.Value, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(a.cookieMAC(exp))) {
		return false
	}
	n, err := strconv.ParseInt(exp, 10, 64)
	return err == nil && time.Now().Unix() < n
}

var errControlsOff = &httpx.Error{Status: http.StatusForbidden, Title: "Controls are off", Message: "The admin controls are off on this replica: ADMIN_PASSWORD is not set."}

// requireAdmin answers 401 (or 403 with controls off) unless signed in.
func (a *App) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.o.Password == "" {
			httpx.WriteError(w, r, a.logger, errControlsOff)
			return
		}
		if !a.signedIn(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="sessiondemo admin", charset="UTF-8"`)
			httpx.WriteError(w, r, a.logger, &httpx.Error{Status: http.StatusUnauthorized, Title: "Sign in first",
				Message: "This control changes the system: sign in on the admin page with the admin credentials (ADMIN_USER and ADMIN_PASSWORD; the compose defaults are in the README)."})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requirePassword refuses a control between replicas when no admin
// password is set: the token is then derived from "", which anyone can
// compute, so only the read-only internal calls stay open.
func (a *App) requirePassword(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.o.Password == "" {
			httpx.WriteError(w, r, a.logger, errControlsOff)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireInternal answers 404 to a call without the replicas' shared
// token, as if the endpoint did not exist.
func (a *App) requireInternal(next http.Handler) http.Handler {
	token := peer.Token(a.o.Password)
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
// signed cookie.
func (a *App) handleLogin(w http.ResponseWriter, r *http.Request) {
	if err := httpx.ParseForm(w, r); err != nil {
		httpx.WriteError(w, r, a.logger, err)
		return
	}
	if a.o.Password == "" {
		a.renderPage(w, r, http.StatusForbidden, "The controls are off: ADMIN_PASSWORD is not set.")
		return
	}
	if !a.credentialsOK(strings.TrimSpace(r.PostFormValue("user")), r.PostFormValue("password")) {
		a.logger.Warn("admin sign-in refused", "request_id", httpx.InfoOf(r).RequestID)
		time.Sleep(failedLoginDelay)
		a.renderPage(w, r, http.StatusForbidden, "That user name and password are not the admin credentials.")
		return
	}
	exp := strconv.FormatInt(time.Now().Add(cookieLife).Unix(), 10)
	c := session.Cookie(r, CookieName, exp+"."+a.cookieMAC(exp), int(cookieLife/time.Second))
	c.SameSite = http.SameSiteStrictMode
	http.SetCookie(w, c)
	a.logger.Info("admin signed in", "request_id", httpx.InfoOf(r).RequestID)
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

// handleLogout serves POST /admin/logout.
func (a *App) handleLogout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, session.Expire(r, CookieName))
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}
