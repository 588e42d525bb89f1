package admin

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/sessiondemo/shop/web/internal/httpx"
)

// Ending every session of a user, in every mode (OWASP ASVS 5.0 7.4.5):
//
//   - sticky: each replica deletes the user's sessions from its memory. The
//     replica that got the control tells the others, and keeps telling a
//     replica that does not answer (paused, cut off) until it does, for
//     as long as a session can live;
//   - redis, jwt and memcached: Redis records the moment (redisstore.UserEnds), and
//     every replica ends a signed-in session of that user begun before it
//     on its next request (package web). While Redis cannot be reached,
//     the control answers 503: nothing recorded; every signed-in redis or
//     jwt session is refused meanwhile anyway.

// demoUser is a demo user name, as the shop's sign-in accepts it.
var demoUser = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// endUserFor is how long the replicas are told again: the longest a
// sticky session lives (its absolute timeout, 12 h by default).
const endUserFor = 12 * time.Hour

// endUserAnswer is the control's answer.
type endUserAnswer struct {
	Message string `json:"message"`
	// Sticky is how many sticky sessions the replicas that answered held.
	Sticky int `json:"sticky_ended"`
	// Missing are the replicas not reached yet (told again until they are).
	Missing []string `json:"replicas_missing,omitempty"`
	// Recorded says whether Redis recorded the end for redis, jwt and memcached mode.
	Recorded bool `json:"redis_jwt_ended"`
}

// handleEndUser serves POST /api/admin/users/{user}/end-sessions.
func (a *App) handleEndUser(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user")
	if !demoUser.MatchString(user) {
		httpx.WriteError(w, r, a.logger, httpx.BadRequest("A demo user name is 1 to 32 letters, digits, '-' or '_'."))
		return
	}
	at := time.Now()
	var ans endUserAnswer
	var redisErr error
	if a.o.UserEnds != nil {
		if redisErr = a.o.UserEnds.EndUser(r.Context(), user, at); redisErr == nil {
			ans.Recorded = true
		}
	}
	if a.o.Memory != nil {
		ans.Sticky = a.o.Memory.EndUser(user)
	}
	ans.Missing = a.tellEveryReplica("end a user's sessions", "/internal/end-user", map[string]string{"user": user}, at.Add(endUserFor),
		func(_ string, out map[string]any) {
			if n, ok := out["ended"].(float64); ok {
				ans.Sticky += int(n)
			}
		})
	a.logger.Info("admin control", "request_id", httpx.InfoOf(r).RequestID, "control", "end-sessions", "sticky_ended", ans.Sticky)
	var parts []string
	parts = append(parts, fmt.Sprintf("Ended %d sticky session(s) of %s", ans.Sticky, user))
	if len(ans.Missing) > 0 {
		parts = append(parts, fmt.Sprintf("%s did not answer and will be told as soon as it does", strings.Join(ans.Missing, ", ")))
	}
	switch {
	case a.o.UserEnds == nil:
		parts = append(parts, "redis, jwt and memcached mode are not configured here")
	case redisErr != nil:
		ans.Message = strings.Join(parts, "; ") + ". But Redis cannot be reached, so the end of " + user + "'s redis, jwt and memcached sessions was not recorded: while Redis is down those sessions are refused anyway; end them again once it is back."
		a.logger.Warn("end a user's sessions", "request_id", httpx.InfoOf(r).RequestID, "err", redisErr)
		httpx.WriteJSON(w, http.StatusServiceUnavailable, ans)
		return
	default:
		parts = append(parts, "every redis, jwt and memcached session of "+user+" begun before now ends on its next request, on every replica")
	}
	ans.Message = strings.Join(parts, "; ") + "."
	httpx.WriteJSON(w, http.StatusOK, ans)
}

// handleInternalEndUser serves POST /internal/end-user: another replica
// ended a user's sessions.
func (a *App) handleInternalEndUser(w http.ResponseWriter, r *http.Request) {
	var in struct {
		User string `json:"user"`
	}
	if err := httpx.DecodeJSON(w, r, &in); err != nil {
		httpx.WriteError(w, r, a.logger, err)
		return
	}
	if !demoUser.MatchString(in.User) {
		httpx.WriteError(w, r, a.logger, httpx.BadRequest("Not a demo user name."))
		return
	}
	n := 0
	if a.o.Memory != nil {
		n = a.o.Memory.EndUser(in.User)
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]int{"ended": n})
}
