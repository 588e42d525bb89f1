package admin

import (
	"fmt"
	"net/http"
	"time"

	"github.com/sessiondemo/shop/web/internal/httpx"
)

// forward runs a control on the named replica: here, or on a peer through
// its internal endpoint path.
func (a *App) forward(w http.ResponseWriter, r *http.Request, path string, body any, here func() (string, error)) {
	name := r.PathValue("name")
	var msg string
	var err error
	switch {
	case name == a.o.Replica:
		msg, err = here()
	case a.peers.Has(name):
		var out struct {
			Message string `json:"message"`
		}
		if err = a.peers.Call(r.Context(), name, http.MethodPost, path, body, &out); err != nil {
			err = peerError(err, func(detail string) string {
				return fmt.Sprintf("%s could not be asked: it %s.", name, detail)
			})
		}
		msg = out.Message
	default:
		// The same answer as to a wrong password (see errNoControl).
		err = errNoControl
	}
	if err != nil {
		httpx.WriteError(w, r, a.logger, err)
		return
	}
	a.logger.Info("admin control", "request_id", httpx.InfoOf(r).RequestID, "control", path, "replica", name)
	httpx.WriteJSON(w, http.StatusAccepted, map[string]string{"message": msg})
}

// writeLocal answers an internal control with what it did here.
func (a *App) writeLocal(w http.ResponseWriter, r *http.Request, msg string, err error) {
	if err != nil {
		httpx.WriteError(w, r, a.logger, err)
		return
	}
	httpx.WriteJSON(w, http.StatusAccepted, map[string]string{"message": msg})
}

// crashDelay is how long after its answer the crash control ends the
// process: time for the answer to get out.
const crashDelay = 100 * time.Millisecond

// crashSoon ends this process shortly after the answer is on its way.
func (a *App) crashSoon() (string, error) {
	if a.o.Crash == nil {
		return "", &httpx.Error{Status: http.StatusNotImplemented, Title: "Crash not available", Message: "This replica was started without a way to crash itself."}
	}
	a.o.CrashAfter(crashDelay, a.o.Crash)
	return a.o.Replica + " is crashing now (SIGKILL). Its restart policy brings it back after the restart delay.", nil
}

// handleCrash serves POST /api/admin/replicas/{name}/crash.
func (a *App) handleCrash(w http.ResponseWriter, r *http.Request) {
	a.forward(w, r, "/internal/crash", struct{}{}, a.crashSoon)
}

// handleInternalCrash serves POST /internal/crash: crash this replica.
func (a *App) handleInternalCrash(w http.ResponseWriter, r *http.Request) {
	msg, err := a.crashSoon()
	a.writeLocal(w, r, msg, err)
}

// stopSoon stops this replica gracefully shortly after the answer is on
// its way.
func (a *App) stopSoon() (string, error) {
	if a.o.Stop == nil {
		return "", &httpx.Error{Status: http.StatusNotImplemented, Title: "Stop not available", Message: "This replica was started without a way to stop itself."}
	}
	a.o.CrashAfter(crashDelay, a.o.Stop)
	return a.o.Replica + " is stopping now (SIGTERM): it finishes the requests in flight, and its restart policy brings it back.", nil
}

// handleStop serves POST /api/admin/replicas/{name}/stop.
func (a *App) handleStop(w http.ResponseWriter, r *http.Request) {
	a.forward(w, r, "/internal/stop", struct{}{}, a.stopSoon)
}

// handleInternalStop serves POST /internal/stop: stop this replica.
func (a *App) handleInternalStop(w http.ResponseWriter, r *http.Request) {
	msg, err := a.stopSoon()
	a.writeLocal(w, r, msg, err)
}

// maxHang bounds a hang: the replica's write timeout is 30s.
const maxHang = 30

type hangBody struct {
	Seconds int `json:"seconds"`
}

// hangFor makes this replica hold every request for n seconds.
func (a *App) hangFor(n int) (string, error) {
	if n < 1 || n > maxHang {
		return "", httpx.BadRequest(fmt.Sprintf("A hang lasts 1 to %d seconds.", maxHang))
	}
	a.hungUntil.Store(time.Now().Add(time.Duration(n) * time.Second).UnixNano())
	return fmt.Sprintf("%s holds every request for %d s from now: nginx gives up on it after its read timeout and tries another replica.", a.o.Replica, n), nil
}

// handleHang serves POST /api/admin/replicas/{name}/hang {"seconds":N}.
func (a *App) handleHang(w http.ResponseWriter, r *http.Request) {
	var b hangBody
	if err := httpx.DecodeJSON(w, r, &b); err != nil {
		httpx.WriteError(w, r, a.logger, err)
		return
	}
	if b.Seconds < 1 || b.Seconds > maxHang {
		httpx.WriteError(w, r, a.logger, httpx.BadRequest(fmt.Sprintf(`The body needs "seconds" from 1 to %d, e.g. {"seconds":10}.`, maxHang)))
		return
	}
	a.forward(w, r, "/internal/hang", b, func() (string, error) { return a.hangFor(b.Seconds) })
}

// handleInternalHang serves POST /internal/hang: hang this replica.
func (a *App) handleInternalHang(w http.ResponseWriter, r *http.Request) {
	var b hangBody
	if err := httpx.DecodeJSON(w, r, &b); err != nil {
		httpx.WriteError(w, r, a.logger, err)
		return
	}
	msg, err := a.hangFor(b.Seconds)
	a.writeLocal(w, r, msg, err)
}
