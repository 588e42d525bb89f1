package httpx

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Outcome is what became of a request, for the log line and the request
// log: the status, how long it took, and the session it served (as the
// handler reported it, see ReportSession).
type Outcome struct {
	// Status is the status sent, or 499 when the client (nginx) gave up
	// before an answer, as nginx logs it.
	Status int
	// Duration is how long the request took.
	Duration time.Duration
	// Session is the session the request served; zero when none.
	Session Served
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// WithLogging writes one log line per request of a logged Kind (pages,
// the API, the admin's own traffic), and hands each request of a recorded
// Kind (pages and the API) to record, the admin page's request log, with
// its Outcome. It must run inside WithInfo, which tells the Kind: outside
// it, nothing is logged.
func WithLogging(log *slog.Logger, record func(Info, *http.Request, Outcome)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ri := InfoOf(r)
			if !ri.Kind.logged() && !ri.Kind.recorded() {
				next.ServeHTTP(w, r)
				return
			}
			start := time.Now()
			out := &Outcome{}
			rec := &statusRecorder{ResponseWriter: w}
			next.ServeHTTP(rec, r)
			out.Duration = time.Since(start)
			out.Session, _ = ReportedSession(r)
			switch {
			case rec.status == 0 && r.Context().Err() != nil:
				// The client (nginx) gave up before an answer: nginx's
				// "client closed request".
				out.Status = 499
			case rec.status == 0:
				out.Status = http.StatusOK
			default:
				out.Status = rec.status
			}
			if ri.Kind.recorded() && record != nil {
				record(ri, r, *out)
			}
			if !ri.Kind.logged() {
				return
			}
			log.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("request_id", ri.RequestID),
				slog.String("replica", ri.Replica),
				slog.String("mode", string(ri.Mode)),
				slog.String("affinity", string(ri.Affinity)),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", out.Status),
				slog.Float64("duration_ms", float64(out.Duration.Microseconds())/1000),
				slog.String("session", out.Session.Hash),
				slog.String("session_event", string(out.Session.Event)),
			)
		})
	}
}

// WithRecover turns a panic into a 500 and a log line instead of a dropped
// connection. No handler should panic; this is the last guard.
func WithRecover(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					// WithInfo runs inside this, so the request's ID is
					// only in the response's header.
					log.ErrorContext(r.Context(), "panic", "request_id", w.Header().Get("X-Request-Id"), "panic", fmt.Sprint(v))
					WriteJSON(w, http.StatusInternalServerError, map[string]string{"error": "Something went wrong on our side. It has been logged."})
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}
