package admin

import (
	"fmt"
	"net/http"

	"github.com/sessiondemo/shop/web/internal/httpx"
	"github.com/sessiondemo/shop/web/session"
)

// inspections is the caller's session as each store holds it. A sticky
// session held by another replica is shown by asking that replica.
func (a *App) inspections(r *http.Request) []session.Inspection {
	var out []session.Inspection
	for _, in := range a.o.Inspectors {
		got := in.Inspect(r)
		if got.Mode == session.Sticky && !got.Held && got.Replica != "" && got.Replica != a.o.Replica {
			got = a.inspectOnPeer(r, got)
		}
		out = append(out, got)
	}
	return out
}

// inspectOnPeer asks the replica that issued the sticky session to show it.
func (a *App) inspectOnPeer(r *http.Request, fallback session.Inspection) session.Inspection {
	if a.o.Memory == nil || !a.peers.Has(fallback.Replica) {
		return fallback
	}
	id := a.o.Memory.RequestID(r)
	if id == "" {
		return fallback
	}
	var got session.Inspection
	if err := a.peers.Call(r.Context(), fallback.Replica, http.MethodPost, "/internal/session", internalSessionBody{Sticky: id}, &got); err != nil {
		_, detail := describeFailure(err)
		fallback.Where = fmt.Sprintf("The session lives only in the memory of %s, which %s.", fallback.Replica, detail)
		return fallback
	}
	return got
}

// internalSessionBody is the body of POST /internal/session. The ID
// travels in the body, on the compose network only.
type internalSessionBody struct {
	Sticky string `json:"sticky"`
}

// handleInternalSession serves POST /internal/session: this replica's
// in-memory entry for a sticky session ID, for the admin page of another
// replica.
func (a *App) handleInternalSession(w http.ResponseWriter, r *http.Request) {
	var b internalSessionBody
	if err := httpx.DecodeJSON(w, r, &b); err != nil {
		httpx.WriteError(w, r, a.logger, err)
		return
	}
	if a.o.Memory == nil {
		httpx.WriteError(w, r, a.logger, &httpx.Error{Status: http.StatusNotFound, Title: "No sticky store", Message: "This replica has no sticky store."})
		return
	}
	httpx.WriteJSON(w, http.StatusOK, a.o.Memory.InspectID(b.Sticky))
}

// handleSession serves GET /api/admin/session: the caller's own session as
// each store holds it.
func (a *App) handleSession(w http.ResponseWriter, r *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, a.inspections(r))
}
