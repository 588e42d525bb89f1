package httpx

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/sessiondemo/shop/templates"
	"github.com/sessiondemo/shop/web/session"
)

// Error is an error with the status and sentence a client should see.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Title is a short headline for the error page.
	Title string
	// Message says what happened and what the person can do, as a sentence.
	Message string
}

func (e *Error) Error() string { return e.Message }

// BadRequest returns a 400 with the given sentence.
func BadRequest(message string) *Error {
	return &Error{Status: http.StatusBadRequest, Title: "That did not work", Message: message}
}

// ErrorOf maps an error to what the client sees: an *Error as it is, the
// errors of the session stores to their status, anything else to a 500
// whose text never reaches the client.
func ErrorOf(err error) *Error {
	var (
		he *Error
		ic *session.InvalidCookieError
		tl *session.TooLargeError
		ue *session.UnavailableError
	)
	switch {
	case errors.As(err, &he):
		return he
	case errors.As(err, &ue):
		return &Error{http.StatusServiceUnavailable, ue.Title, ue.Message}
	case errors.As(err, &ic) && ic.InURL:
		return &Error{http.StatusBadRequest, "Session link rejected", ic.Error() + " The links on this page start a new session."}
	case errors.As(err, &ic):
		return &Error{http.StatusBadRequest, "Session cookie rejected", ic.Error() + " It has been removed; reload the page to start a new session."}
	case errors.As(err, &tl):
		return &Error{http.StatusBadRequest, "Cart too big for a token", tl.Error()}
	case errors.Is(err, session.ErrUnavailable):
		return &Error{http.StatusServiceUnavailable, "Session store unavailable",
			"This replica cannot reach Redis, where redis-mode sessions live, so it cannot show or change your cart right now. Nothing was changed and your cart in Redis is untouched. Try again in a few seconds, or switch to sticky or jwt mode, which do not need Redis."}
	default:
		return &Error{http.StatusInternalServerError, "Internal error", "Something went wrong on our side. It has been logged."}
	}
}

// wantsJSON reports whether errors for r should be JSON rather than a page.
func wantsJSON(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	return strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/internal/") ||
		strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/html")
}

// WriteError answers r with the error as JSON or as a page. Only
// unexpected errors (500) are logged as errors, and an unreachable store
// (503) as a warning. A rejected session cookie is expired so the next
// request starts afresh.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	he := ErrorOf(err)
	switch he.Status {
	case http.StatusInternalServerError:
		log.ErrorContext(r.Context(), "internal error", "request_id", InfoOf(r).RequestID, "err", err)
	case http.StatusServiceUnavailable:
		log.WarnContext(r.Context(), "session store unavailable", "request_id", InfoOf(r).RequestID, "err", err)
	}
	var ic *session.InvalidCookieError
	if errors.As(err, &ic) && !ic.InURL {
		http.SetCookie(w, session.Expire(r, ic.Cookie))
	}
	if wantsJSON(r) {
		WriteJSON(w, he.Status, map[string]string{"error": he.Message})
		return
	}
	// The page shows the session the handler reported, if any, and its
	// links carry that session on (affinity url); a rejected one is
	// reported as lost, so its links carry none.
	Render(w, r, log, he.Status, templates.ErrorPage(templates.ErrorModel{
		Page:    Page(r, he.Title),
		Status:  he.Status,
		Title:   he.Title,
		Message: he.Message,
	}))
}

// WriteJSON writes v as JSON with the status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"Something went wrong on our side."}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
