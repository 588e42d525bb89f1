package admin

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sessiondemo/shop/web/internal/httpx"
)

// The throttle on admin passwords. Each wrong password from one client
// address for one user name makes that pair wait before its next try:
// half a second after the first, doubling with each further one, up to
// throttleMax. A try during the wait is answered 429 at once, without
// its password being looked at, so parallel guesses do not run in
// parallel: the earlier delay per request let 50 parallel guesses through
// in 0.5 s. A right password clears the pair's count. The count lives in
// each replica's memory; nginx's limit_req bounds the rate in front of
// all of them (compose/nginx.conf).

const (
	throttleFirst = 500 * time.Millisecond
	throttleMax   = time.Minute
	// throttleForget is how long a pair's count lasts after its last
	// wrong password.
	throttleForget = 15 * time.Minute
	// throttleKeys bounds the memory the throttle uses; past it, the
	// oldest pairs are forgotten first.
	throttleKeys = 10000
)

// throttle counts wrong passwords per user name and client address.
type throttle struct {
	mu    sync.Mutex
	pairs map[string]*attempts
}

type attempts struct {
	failures int
	// until is when the next try is allowed.
	until time.Time
	last  time.Time
}

func newThrottle() *throttle { return &throttle{pairs: map[string]*attempts{}} }

// throttleKey is the request's user name and client address.
func throttleKey(r *http.Request, user string) string {
	return httpx.Truncate(user, 64) + "\x00" + clientAddr(r)
}

// clientAddr is the address nginx saw (X-Real-IP), else the connection's.
func clientAddr(r *http.Request) string {
	if addr := httpx.InfoOf(r).ClientAddr; addr != "" {
		return addr
	}
	addr, _, _ := net.SplitHostPort(r.RemoteAddr)
	return addr
}

// wait returns how long the pair must still wait, or 0.
func (t *throttle) wait(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if a := t.pairs[key]; a != nil && now.Before(a.until) {
		return a.until.Sub(now)
	}
	return 0
}

// failed counts a wrong password and starts the pair's wait.
func (t *throttle) failed(key string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.pairs[key]
	if a == nil || now.Sub(a.last) > throttleForget {
		if len(t.pairs) >= throttleKeys {
			t.forgetOldest()
		}
		a = &attempts{}
		t.pairs[key] = a
	}
	a.failures++
	a.last = now
	a.until = now.Add(throttleDelay(a.failures))
}

// throttleDelay is the wait after the n-th wrong password in a row.
func throttleDelay(n int) time.Duration {
	d := float64(throttleFirst) * math.Pow(2, float64(n-1))
	return time.Duration(min(d, float64(throttleMax)))
}

// succeeded clears the pair's count.
func (t *throttle) succeeded(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.pairs, key)
}

// forgetOldest drops the pairs not seen for throttleForget, and if that
// frees nothing, the one seen longest ago. t.mu is held.
func (t *throttle) forgetOldest() {
	var oldest string
	var at time.Time
	for k, a := range t.pairs {
		if time.Since(a.last) > throttleForget {
			delete(t.pairs, k)
			continue
		}
		if oldest == "" || a.last.Before(at) {
			oldest, at = k, a.last
		}
	}
	if len(t.pairs) >= throttleKeys {
		delete(t.pairs, oldest)
	}
}

// tooManyTriesError is the answer to a try during the wait.
type tooManyTriesError struct{ wait time.Duration }

func (e *tooManyTriesError) Error() string {
	return fmt.Sprintf("Too many wrong admin passwords from your address: wait %s before the next try.", e.wait.Round(100*time.Millisecond))
}

// writeAuthError answers a refused password: errNoControl, or a 429 with
// Retry-After.
func (a *App) writeAuthError(w http.ResponseWriter, r *http.Request, err error) {
	if e, ok := err.(*tooManyTriesError); ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.wait.Seconds()))))
		httpx.WriteError(w, r, a.logger, &httpx.Error{Status: http.StatusTooManyRequests, Title: "Wait", Message: e.Error()})
		return
	}
	httpx.WriteError(w, r, a.logger, err)
}
