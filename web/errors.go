package web

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/sessiondemo/shop/templates"
	"github.com/sessiondemo/shop/web/cart"
	"github.com/sessiondemo/shop/web/session"
)

// httpError is an error with the status and sentence a client should see.
type httpError struct {
	status  int
	title   string
	message string
}

func (e *httpError) Error() string { return e.message }

// badRequest returns a 400 with the given sentence.
func badRequest(message string) error {
	return &httpError{status: http.StatusBadRequest, title: "That did not work", message: message}
}

// classify maps an error to what the client sees. Only unexpected errors
// are logged, and their text never reaches the client.
func classify(err error) *httpError {
	var (
		he  *httpError
		inv *cart.InvalidError
		nic *cart.NotInCartError
		ic  *session.InvalidCookieError
		tl  *session.TooLargeError
	)
	switch {
	case errors.As(err, &he):
		return he
	case errors.As(err, &inv):
		return &httpError{http.StatusBadRequest, "That did not work", inv.Message}
	case errors.As(err, &nic):
		return &httpError{http.StatusNotFound, "Not in your cart", nic.Error()}
	case errors.As(err, &ic) && ic.InURL:
		return &httpError{http.StatusBadRequest, "Session link rejected", ic.Error() + " The links on this page start a new session."}
	case errors.As(err, &ic):
		return &httpError{http.StatusBadRequest, "Session cookie rejected", ic.Error() + " It has been removed; reload the page to start a new session."}
	case errors.As(err, &tl):
		return &httpError{http.StatusBadRequest, "Cart too big for a token", tl.Error()}
	case errors.Is(err, session.ErrUnavailable):
		return &httpError{http.StatusServiceUnavailable, "Session store unavailable",
			"This replica cannot reach Redis, where redis-mode sessions live, so it cannot show or change your cart right now. Nothing was changed and your cart in Redis is untouched. Try again in a few seconds, or switch to sticky or jwt mode, which do not need Redis."}
	default:
		return &httpError{http.StatusInternalServerError, "Internal error", "Something went wrong on our side. It has been logged."}
	}
}

// wantsJSON reports whether errors for r should be JSON rather than a page.
func wantsJSON(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/internal/") || strings.Contains(r.Header.Get("Accept"), "application/json") && !strings.Contains(r.Header.Get("Accept"), "text/html")
}

// writeError answers r with the error as JSON or as a page. A rejected
// session cookie is expired so the next request starts afresh.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	he := classify(err)
	if he.status == http.StatusInternalServerError {
		log.ErrorContext(r.Context(), "internal error", "request_id", info(r).RequestID, "err", err)
	} else if he.status == http.StatusServiceUnavailable {
		log.WarnContext(r.Context(), "session store unavailable", "request_id", info(r).RequestID, "err", err)
	}
	var ic *session.InvalidCookieError
	if errors.As(err, &ic) && !ic.InURL {
		http.SetCookie(w, session.Expire(r, ic.Cookie))
	}
	if wantsJSON(r) {
		writeJSON(w, he.status, map[string]string{"error": he.message})
		return
	}
	render(w, r, log, he.status, templates.ErrorPage(templates.ErrorModel{
		Page:    pageModel(r, he.title, nil),
		Status:  he.status,
		Title:   he.title,
		Message: he.message,
	}))
}

// writeJSON writes v as JSON with the status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"Something went wrong on our side."}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
