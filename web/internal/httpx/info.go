// Package httpx is what the two applications of a replica, the shop
// (package web) and the admin page (package admin), share about HTTP:
//
//   - Info, what a request is, built once by WithInfo before any handler
//     runs and only read afterwards;
//   - Route and Mux, the route tables of each package's routes.go, with
//     each route's Kind and the 405 answers derived from them;
//   - Error, WriteError and WriteJSON: a status and a sentence a person
//     understands, as JSON or as a page;
//   - DecodeJSON and ParseForm, bounded and with clear errors;
//   - Render and Page, a page into a buffer with the chrome every page
//     shows; flash messages across a redirect;
//   - WithLogging and WithRecover.
//
// It knows nothing of either application.
package httpx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/sessiondemo/shop/web/session"
)

// Info is what a request is: who serves it, in which session mode, what
// it is for. WithInfo builds it once, before any handler runs; handlers
// and the middleware inside WithInfo only read it (InfoOf).
type Info struct {
	// RequestID names the request in logs and in X-Request-Id: nginx's
	// $request_id when it sent a sane one, a new random one otherwise.
	RequestID string
	// Replica is the name of the replica serving the request.
	Replica string
	// Mode is the session mode: the query parameter mode, else the cookie
	// mode, else the replica's default.
	Mode session.Mode
	// Affinity is the sticky technique: the query parameter affinity,
	// else the cookie affinity, else the first of session.Affinities.
	Affinity session.Affinity
	// StoreDescription says where the request's mode keeps sessions, for
	// people to read ("memory of app2"); "" when the replica has no store
	// for the mode.
	StoreDescription string
	// Kind says what the route that serves the request is for.
	Kind Kind
	// SID is the sticky session ID the request carried in its URL (query
	// parameter session.URLParam), in sticky mode with url affinity; ""
	// otherwise. In every other mode and technique the parameter is
	// removed from the request before any handler sees it.
	SID string
	// ClientAddr is the client address nginx used to pick the replica
	// (X-Real-IP, its $remote_addr after the realip module), or "".
	ClientAddr string
	// LoadBalancer names the nginx that forwarded the request
	// (X-Load-Balancer, set from nginx's $hostname), or "".
	LoadBalancer string
	// WriteStrategy is how a change to the session is saved.
	WriteStrategy WriteStrategy
	// Trail is this browser's recent replicas, oldest first, this request
	// last; only for requests of KindPage, nil for the others.
	Trail []string
	// AnswerBy is when the load balancer stops waiting for the answer:
	// X-Request-Start, when nginx first sent the request, plus
	// X-Request-Budget, how long it may keep trying replicas and waiting
	// (compose/nginx.conf). A change that would be saved later is not
	// saved: nobody would read its answer, and nginx may have sent a copy
	// elsewhere meanwhile. Zero for a request without the headers (not
	// sent by nginx), or with values that make no sense.
	AnswerBy time.Time
}

// The headers nginx stamps each request with (AnswerBy).
const (
	// RequestStartHeader is when nginx first sent the request, in Unix
	// seconds with milliseconds ($msec).
	RequestStartHeader = "X-Request-Start"
	// RequestBudgetHeader is how long after that nginx may still use an
	// answer, in seconds.
	RequestBudgetHeader = "X-Request-Budget"
)

// answerBy reads the request's RequestStartHeader and RequestBudgetHeader
// (Info.AnswerBy); the zero time when either is missing or makes no
// sense. The values are nginx's own (it overwrites what a client sends);
// a client that reaches a replica directly can only shorten or lengthen
// the deadline of its own request.
func answerBy(r *http.Request) time.Time {
	start, err := strconv.ParseFloat(r.Header.Get(RequestStartHeader), 64)
	if err != nil || start <= 0 {
		return time.Time{}
	}
	budget, err := strconv.ParseFloat(r.Header.Get(RequestBudgetHeader), 64)
	if err != nil || budget <= 0 || budget > 3600 {
		return time.Time{}
	}
	return time.UnixMilli(int64((start + budget) * 1000))
}

// WriteStrategy is how a change to a session is saved, chosen per request
// with the X-Write-Strategy header.
type WriteStrategy string

// The write strategies.
const (
	// WriteSafe saves only over the state the session was loaded from and
	// retries a change that lost a race (the default, in every mode).
	WriteSafe WriteStrategy = "safe"
	// WriteNaive loads, changes and writes the whole session back over
	// whatever is stored (session.NaiveSaver): concurrent changes get lost.
	WriteNaive WriteStrategy = "naive"
)

// WriteStrategyHeader names the request header that picks the write
// strategy and the response header that reports it.
const WriteStrategyHeader = "X-Write-Strategy"

// TrailCookie holds the replicas that served this browser's last pages.
const TrailCookie = "trail"

// TrailLength is how many replicas the trail keeps.
const TrailLength = 10

// InfoOptions configure WithInfo.
type InfoOptions struct {
	// Replica is this replica's name. Required.
	Replica string
	// DefaultMode is the mode of a request that names none. Required.
	DefaultMode session.Mode
	// StoreDescriptions says, per mode, where that mode keeps sessions
	// (Info.StoreDescription).
	StoreDescriptions map[session.Mode]string
	// KindOf tells a request's Kind (Mux.KindOf). Required.
	KindOf func(*http.Request) Kind
	// Logger receives the errors of requests refused here.
	Logger *slog.Logger
}

// requestState is what WithInfo keeps in a request's context, in one
// value: the Info, fixed, and the record ReportSession writes.
type requestState struct {
	info   Info
	served servedRecord
}

type stateKey struct{}

// stateOf returns the request's state, nil outside WithInfo.
func stateOf(r *http.Request) *requestState {
	st, _ := r.Context().Value(stateKey{}).(*requestState)
	return st
}

// SIDInURL reports whether the request's sticky session travels in its
// URLs (sticky mode with url affinity) rather than in a cookie.
func (ri Info) SIDInURL() bool {
	return ri.Mode == session.Sticky && ri.Affinity == session.AffinityURL
}

// InfoOf returns the request's Info, the zero Info outside WithInfo.
func InfoOf(r *http.Request) Info {
	if st := stateOf(r); st != nil {
		return st.info
	}
	return Info{}
}

// validRequestID reports whether id may be kept as the request's ID (and
// so in logs and a response header): 8 to 64 ASCII letters, digits or
// '-', as nginx's $request_id (32 hex digits) is. It runs on every
// request, so it is a loop, not a regular expression.
func validRequestID(id string) bool {
	if len(id) < 8 || len(id) > 64 {
		return false
	}
	for i := range len(id) {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// WithInfo builds the request's Info and sets the headers every response
// carries: X-Replica, X-Request-Id, X-Session-Mode, Referrer-Policy, and
// X-Write-Strategy in redis mode. On a page (KindPage) it also sets the
// trail cookie. A mode, affinity or write strategy the request names but
// that does not exist is answered here with a 400. Inside it, handlers
// read the Info (InfoOf) and report the session they served
// (ReportSession).
func WithInfo(o InfoOptions) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ri, r, err := buildInfo(o, r)
			r = r.WithContext(context.WithValue(r.Context(), stateKey{}, &requestState{info: ri}))
			h := w.Header()
			h.Set("X-Replica", ri.Replica)
			h.Set("X-Request-Id", ri.RequestID)
			h.Set("X-Session-Mode", string(ri.Mode))
			if h.Get("Referrer-Policy") == "" {
				// A page's URL may carry its session ID (affinity url):
				// never send it to another site, nor to this one, as Referer.
				h.Set("Referrer-Policy", "no-referrer")
			}
			if err != nil {
				WriteError(w, r, o.Logger, err)
				return
			}
			if ri.Mode == session.Redis {
				h.Set(WriteStrategyHeader, string(ri.WriteStrategy))
			}
			if ri.Trail != nil {
				http.SetCookie(w, session.Cookie(r, TrailCookie, strings.Join(ri.Trail, "."), 0))
			}
			next.ServeHTTP(w, r)
		})
	}
}

// buildInfo is WithInfo's work: the Info, the request as handlers see it
// (with its sid handled, see carrySID), and the error a request that
// names something that does not exist is answered with. With an error the
// Info is as complete as the request allowed.
func buildInfo(o InfoOptions, r *http.Request) (Info, *http.Request, error) {
	ri := Info{Replica: o.Replica, Mode: o.DefaultMode, Affinity: session.Affinities[0], WriteStrategy: WriteSafe}
	ri.RequestID = r.Header.Get("X-Request-Id")
	if !validRequestID(ri.RequestID) {
		ri.RequestID = NewToken()
	}
	if c, err := r.Cookie("mode"); err == nil {
		if m, ok := session.ParseMode(c.Value); ok {
			ri.Mode = m
		}
	}
	if c, err := r.Cookie("affinity"); err == nil {
		if a, ok := session.ParseAffinity(c.Value); ok {
			ri.Affinity = a
		}
	}
	ri.Kind = o.KindOf(r)
	if a, err := netip.ParseAddr(r.Header.Get("X-Real-IP")); err == nil {
		ri.ClientAddr = a.Unmap().String()
	}
	if v := r.Header.Get("X-Load-Balancer"); session.ValidReplicaName(v) {
		ri.LoadBalancer = v
	}
	ri.AnswerBy = answerBy(r)

	q := r.URL.Query()
	if v, ok := q["mode"]; ok {
		m, valid := session.ParseMode(v[0])
		if !valid {
			return ri, r, BadRequest(fmt.Sprintf("There is no session mode %q; use %s.", Truncate(v[0], 20), session.Choices(session.Modes)))
		}
		ri.Mode = m
	}
	if v, ok := q["affinity"]; ok {
		a, valid := session.ParseAffinity(v[0])
		if !valid {
			return ri, r, BadRequest(fmt.Sprintf("There is no affinity technique %q; use %s.", Truncate(v[0], 20), session.Choices(session.Affinities)))
		}
		ri.Affinity = a
	}
	ri.StoreDescription = o.StoreDescriptions[ri.Mode]
	r = carrySID(r, &ri)
	strategy, err := writeStrategy(r, ri.Mode)
	if err != nil {
		return ri, r, err
	}
	ri.WriteStrategy = strategy
	if ri.Kind.onTrail() {
		ri.Trail = trail(r, ri.Replica)
	}
	return ri, r, nil
}

// carrySID decides where the request's sticky session ID travels. In
// sticky mode with url affinity it is the query parameter sid, and the
// request is marked for the store to read it there (and to set no cookie).
// In every other mode and technique a sid parameter is removed from the
// request before any handler sees it, so a session ID cannot be planted
// through a link.
func carrySID(r *http.Request, ri *Info) *http.Request {
	q := r.URL.Query()
	if ri.SIDInURL() {
		ri.SID = q.Get(session.URLParam)
		return session.WithIDInURL(r)
	}
	if _, ok := q[session.URLParam]; !ok {
		return r
	}
	q.Del(session.URLParam)
	u := *r.URL
	u.RawQuery = q.Encode()
	r = r.WithContext(r.Context()) // a shallow copy, not the caller's request
	r.URL = &u
	r.RequestURI = u.RequestURI()
	return r
}

// writeStrategy reads the request's X-Write-Strategy: "" or "safe" is
// safe, "naive" is naive, anything else is an error. The naive strategy is
// honoured only in redis mode (the only store with a naive write); it
// needs no credentials, since it only changes how the caller's own session
// is saved: a client can lose only its own concurrent updates. It cannot
// bring back a session that ended meanwhile: the naive write only
// overwrites a key that still exists.
func writeStrategy(r *http.Request, mode session.Mode) (WriteStrategy, error) {
	switch v := WriteStrategy(r.Header.Get(WriteStrategyHeader)); v {
	case "", WriteSafe:
		return WriteSafe, nil
	case WriteNaive:
		if mode == session.Redis {
			return WriteNaive, nil
		}
		return WriteSafe, nil
	default:
		return "", BadRequest(fmt.Sprintf("The %s header is %q or %q, not %q.", WriteStrategyHeader, WriteSafe, WriteNaive, Truncate(string(v), 20)))
	}
}

// trail returns the browser's trail cookie with this replica appended,
// at most TrailLength long.
func trail(r *http.Request, replica string) []string {
	var t []string
	if c, err := session.ReadCookie(r, TrailCookie); err == nil {
		for _, name := range strings.Split(c.Value, ".") {
			if session.ValidReplicaName(name) {
				t = append(t, name)
			}
		}
	}
	t = append(t, replica)
	if len(t) > TrailLength {
		t = t[len(t)-TrailLength:]
	}
	return t
}

// Truncate shortens s to n bytes and "...", for echoing input in errors.
func Truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// NewToken returns 32 random hex digits, for request IDs and idempotency
// keys.
func NewToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
