package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/sessiondemo/shop/web/session"
)

// Affinity techniques for sticky mode.
const (
	affinityCookie = "cookie"
	affinityURL    = "url"
	affinityIP     = "ip"
)

// requestInfo is what the middleware and the handlers learn about one
// request; the logging middleware writes it out at the end.
type requestInfo struct {
	RequestID    string
	Replica      string
	Mode         session.Mode
	Affinity     string
	SessionHash  string
	SessionEvent session.Event
	// Trail is this browser's recent replicas, oldest first, this request last.
	Trail []string
	// Describe says where this mode keeps sessions.
	Describe string
	// Expires is when the session ends if idle (zero when unknown).
	Expires time.Time
	// SID is the sticky session ID this request's links carry in sticky
	// mode with url affinity: the one the request sent until the session is
	// loaded, then the stored one ("" while there is none). Always "" in
	// the other techniques and modes.
	SID string
	// ClientAddr is the client address nginx used to pick the replica
	// (X-Real-IP, its $remote_addr after the realip module), or "".
	ClientAddr string
	// WriteStrategy is how a change to the session is saved: writeSafe,
	// or writeNaive when the request asked for it in redis mode.
	WriteStrategy string
}

// Write strategies, chosen per request with the X-Write-Strategy header.
const (
	// writeSafe saves only over the state the session was loaded from and
	// retries a change that lost a race (the default, in every mode).
	writeSafe = "safe"
	// writeNaive loads, changes and writes the whole session back over
	// whatever is stored (session.NaiveSaver): concurrent changes get lost.
	writeNaive = "naive"
)

// writeStrategyHeader names the request header that picks the write
// strategy and the response header that reports it.
const writeStrategyHeader = "X-Write-Strategy"

// writeStrategy reads the request's X-Write-Strategy: "" or "safe" is
// safe, "naive" is naive, anything else is an error. The naive strategy is
// honoured only in redis mode (the only store with a naive write); it
// needs no credentials, since it only changes how the caller's own session
// is saved: a client can lose only its own concurrent updates. It cannot
// bring back a session that ended meanwhile: the naive write only
// overwrites a key that still exists.
func writeStrategy(r *http.Request, mode session.Mode) (string, error) {
	switch v := r.Header.Get(writeStrategyHeader); v {
	case "", writeSafe:
		return writeSafe, nil
	case writeNaive:
		if mode == session.Redis {
			return writeNaive, nil
		}
		return writeSafe, nil
	default:
		return "", badRequest(fmt.Sprintf("The %s header is %q or %q, not %q.", writeStrategyHeader, writeSafe, writeNaive, truncate(v, 20)))
	}
}

type infoKey struct{}

// info returns the request's info; never nil inside the handler chain.
func info(r *http.Request) *requestInfo {
	if ri, ok := r.Context().Value(infoKey{}).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{}
}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9-]{8,64}$`)

// withRequestInfo names the request, picks its session mode and write
// strategy and sets the X-Replica, X-Session-Mode and X-Request-Id headers
// every response carries (and X-Write-Strategy in redis mode).
// The request id comes from nginx ($request_id) when it sent a sane one.
func withRequestInfo(replica string, defaultMode session.Mode, log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ri := &requestInfo{Replica: replica, Mode: defaultMode, Affinity: affinityCookie}
			ri.RequestID = r.Header.Get("X-Request-Id")
			if !requestIDPattern.MatchString(ri.RequestID) {
				ri.RequestID = newRequestID()
			}
			if c, err := r.Cookie("mode"); err == nil {
				if m, ok := session.ParseMode(c.Value); ok {
					ri.Mode = m
				}
			}
			if c, err := r.Cookie("affinity"); err == nil && validAffinity(c.Value) {
				ri.Affinity = c.Value
			}
			h := w.Header()
			h.Set("X-Replica", replica)
			h.Set("X-Request-Id", ri.RequestID)
			r = r.WithContext(context.WithValue(r.Context(), infoKey{}, ri))

			q := r.URL.Query()
			if v, ok := q["mode"]; ok {
				m, valid := session.ParseMode(v[0])
				if !valid {
					h.Set("X-Session-Mode", string(ri.Mode))
					writeError(w, r, log, badRequest(fmt.Sprintf("There is no session mode %q; use sticky, redis or jwt.", truncate(v[0], 20))))
					return
				}
				ri.Mode = m
			}
			if v, ok := q["affinity"]; ok {
				if !validAffinity(v[0]) {
					h.Set("X-Session-Mode", string(ri.Mode))
					writeError(w, r, log, badRequest(fmt.Sprintf("There is no affinity technique %q; use cookie, url or ip.", truncate(v[0], 20))))
					return
				}
				ri.Affinity = v[0]
			}
			h.Set("X-Session-Mode", string(ri.Mode))
			if h.Get("Referrer-Policy") == "" {
				// A page's URL may carry its session ID (affinity url):
				// never send it to another site, nor to this one, as Referer.
				h.Set("Referrer-Policy", "no-referrer")
			}
			if a, err := netip.ParseAddr(r.Header.Get("X-Real-IP")); err == nil {
				ri.ClientAddr = a.Unmap().String()
			}
			r = carrySID(r, ri)
			strategy, err := writeStrategy(r, ri.Mode)
			if err != nil {
				writeError(w, r, log, err)
				return
			}
			ri.WriteStrategy = strategy
			if ri.Mode == session.Redis {
				h.Set(writeStrategyHeader, strategy)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// carrySID decides where the request's sticky session ID travels. In
// sticky mode with url affinity it is the query parameter sid, and the
// request is marked for the store to read it there (and to set no cookie).
// In every other mode and technique a sid parameter is removed from the
// request before any handler sees it, so a session ID cannot be planted
// through a link.
func carrySID(r *http.Request, ri *requestInfo) *http.Request {
	q := r.URL.Query()
	if ri.Mode == session.Sticky && ri.Affinity == affinityURL {
		ri.SID = q.Get(session.URLParam)
		return session.WithIDInURL(r)
	}
	if _, ok := q[session.URLParam]; !ok {
		return r
	}
	q.Del(session.URLParam)
	u := *r.URL
	u.RawQuery = q.Encode()
	r.URL = &u
	r.RequestURI = u.RequestURI()
	return r
}

func validAffinity(s string) bool {
	return s == affinityCookie || s == affinityURL || s == affinityIP
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func newRequestID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
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

// withLogging logs one line per request, with what the handler learned of
// the session, and hands the request to record (the admin page's request
// log). Health checks, static files and calls between replicas are not
// logged.
func withLogging(log *slog.Logger, record func(r *http.Request, status int, d time.Duration)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := &statusRecorder{ResponseWriter: w}
			next.ServeHTTP(rec, r)
			switch {
			case rec.status == 0 && r.Context().Err() != nil:
				// The client (nginx) gave up before an answer: nginx's
				// "client closed request".
				rec.status = 499
			case rec.status == 0:
				rec.status = http.StatusOK
			}
			record(r, rec.status, time.Since(start))
			if r.URL.Path == "/healthz" || strings.HasPrefix(r.URL.Path, "/static/") || strings.HasPrefix(r.URL.Path, "/internal/") {
				return
			}
			ri := info(r)
			log.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("request_id", ri.RequestID),
				slog.String("replica", ri.Replica),
				slog.String("mode", string(ri.Mode)),
				slog.String("affinity", ri.Affinity),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", rec.status),
				slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
				slog.String("session", ri.SessionHash),
				slog.String("session_event", string(ri.SessionEvent)),
			)
		})
	}
}

// withRecover turns a panic into a 500 and a log line instead of a dropped
// connection. No handler should panic; this is the last guard.
func withRecover(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					log.ErrorContext(r.Context(), "panic", "request_id", info(r).RequestID, "panic", fmt.Sprint(v))
					writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "Something went wrong on our side. It has been logged."})
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// trailCookie holds the replicas that served this browser's last pages.
const trailCookie = "trail"

const trailLength = 10

var replicaNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// withTrail appends this replica to the browser's trail of recent
// replicas, for the strip every page shows. API calls and assets don't count.
func withTrail(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/static/") || strings.HasPrefix(p, "/admin/") || strings.HasPrefix(p, "/internal/") || p == "/healthz" || p == "/favicon.ico" {
			next.ServeHTTP(w, r)
			return
		}
		ri := info(r)
		var trail []string
		if c, err := r.Cookie(trailCookie); err == nil {
			for _, name := range strings.Split(c.Value, ".") {
				if replicaNamePattern.MatchString(name) {
					trail = append(trail, name)
				}
			}
		}
		trail = append(trail, ri.Replica)
		if len(trail) > trailLength {
			trail = trail[len(trail)-trailLength:]
		}
		ri.Trail = trail
		http.SetCookie(w, session.Cookie(r, trailCookie, strings.Join(trail, "."), 0))
		next.ServeHTTP(w, r)
	})
}
