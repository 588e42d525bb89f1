package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sessiondemo/shop/web/reqlog"
	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/session/memstore"
)

// Admin configures the admin page (GET /admin): where the other replicas
// and the load balancers are, how to reach Redis, and the credentials its
// controls need. The zero value shows this replica alone, without controls.
type Admin struct {
	// User and Password guard every control that changes the system. An
	// empty Password turns the controls off.
	User, Password string
	// Peers maps the other replicas' names to the base URLs of their
	// internal endpoints, e.g. "app2" -> "http://app2:8080".
	Peers map[string]string
	// LoadBalancers maps the load balancers' names to an address to probe,
	// e.g. "lb" -> "lb:80".
	LoadBalancers map[string]string
	// PingRedis checks Redis; nil shows Redis as not configured.
	PingRedis func(context.Context) error
	// RestartRedis makes Redis exit so its restart policy brings it back.
	RestartRedis func(context.Context) error
	// Crash ends this replica's process at once, as a crash would (the
	// container's restart policy brings it back). Required for the crash
	// control.
	Crash func()
	// SimulatorTargets are the load balancers' base URLs as seen from a
	// replica, e.g. "http://lb"; the traffic simulator uses the first that
	// answers.
	SimulatorTargets []string
	// LogSize is how many requests this replica remembers. Default 2000.
	LogSize int
}

// admin is the admin page's state on one replica.
type admin struct {
	Admin
	replica string
	log     *reqlog.Log
	cluster *cluster
	stores  Stores
	logger  *slog.Logger
	// hungUntil is when a hang asked by the admin ends (Unix nanoseconds).
	hungUntil atomic.Int64
	sims      *simulations
	// streams holds a token per open event stream.
	streams chan struct{}
}

func newAdmin(o Admin, replica string, stores Stores, logger *slog.Logger) *admin {
	if o.LogSize <= 0 {
		o.LogSize = 2000
	}
	a := &admin{Admin: o, replica: replica, log: reqlog.New(replica, o.LogSize), stores: stores, logger: logger}
	a.cluster = &cluster{
		self: replica, log: a.log, peers: o.Peers, lbs: o.LoadBalancers,
		token:   internalToken(o.Password),
		client:  &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}},
		ping:    o.PingRedis,
		local:   a.localLog,
		timeout: 800 * time.Millisecond,
	}
	a.sims = newSimulations(replica)
	a.streams = make(chan struct{}, maxEventStreams)
	return a
}

// localLog is this replica's answer to GET /internal/requests, without entries.
func (a *admin) localLog() peerLog {
	pl := peerLog{Replica: a.replica, Boot: a.log.Boot(), Load: a.log.Load(), HungFor: a.hungFor()}
	if s, ok := a.stores[session.Sticky].(interface{ Len() int }); ok {
		pl.Sessions = s.Len()
	}
	return pl
}

func (a *admin) hungFor() int {
	d := time.Until(time.Unix(0, a.hungUntil.Load()))
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// record adds a finished request to the log, unless it is the admin
// page's own traffic, a replica-to-replica call or an asset.
func (a *admin) record(r *http.Request, status int, d time.Duration) {
	p := r.URL.Path
	if p == "/healthz" || p == "/favicon.ico" || strings.HasPrefix(p, "/static/") || strings.HasPrefix(p, "/internal/") || strings.HasPrefix(p, "/api/admin/") || strings.HasPrefix(p, "/admin/") {
		return
	}
	ri := info(r)
	a.log.Add(reqlog.Entry{
		Time:         time.Now().UTC(),
		RequestID:    ri.RequestID,
		LoadBalancer: loadBalancerOf(r),
		Mode:         string(ri.Mode),
		Affinity:     ri.Affinity,
		Method:       r.Method,
		Path:         p,
		Status:       status,
		DurationMS:   float64(d.Microseconds()) / 1000,
		Session:      ri.SessionHash,
		SessionEvent: string(ri.SessionEvent),
	})
}

// loadBalancerOf names the nginx that forwarded r (its X-Load-Balancer
// header, set from nginx's $hostname), for display only.
func loadBalancerOf(r *http.Request) string {
	v := r.Header.Get("X-Load-Balancer")
	if replicaNamePattern.MatchString(v) {
		return v
	}
	return ""
}

// withHang holds every request while the admin has this replica hang, as
// a stuck process would: nginx times out and tries another replica.
func (a *admin) withHang(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := time.Until(time.Unix(0, a.hungUntil.Load())); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// Admin authentication: the credentials from config, checked in constant
// time, then a signed cookie valid for an hour on every replica (they
// share the password, so they share the key). HTTP Basic works too, for
// curl and tests.
const adminCookie = "admin_auth"

const adminCookieLife = time.Hour

func (a *admin) cookieMAC(exp string) string {
	m := hmac.New(sha256.New, []byte(a.Password))
	m.Write([]byte("sessiondemo admin cookie v1|" + a.User + "|" + exp))
	return hex.EncodeToString(m.Sum(nil))
}

// credentialsOK compares in constant time.
func (a *admin) credentialsOK(user, password string) bool {
	if a.Password == "" {
		return false
	}
	// Compare hashes, so not even the lengths leak through the timing.
	hash := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	u := subtle.ConstantTimeCompare(hash(user), hash(a.User))
	p := subtle.ConstantTimeCompare(hash(password), hash(a.Password))
	return u&p == 1
}

// signedIn reports whether r carries the admin credentials or cookie.
func (a *admin) signedIn(r *http.Request) bool {
	if a.Password == "" {
		return false
	}
	if u, p, ok := r.BasicAuth(); ok {
		return a.credentialsOK(u, p)
	}
	c, err := r.Cookie(adminCookie)
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

// requireAdmin answers 401 (or 403 with controls off) unless signed in.
func (a *admin) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.Password == "" {
			writeError(w, r, a.logger, &httpError{http.StatusForbidden, "Controls are off", "The admin controls are off on this replica: ADMIN_PASSWORD is not set."})
			return
		}
		if !a.signedIn(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="sessiondemo admin", charset="UTF-8"`)
			writeError(w, r, a.logger, &httpError{http.StatusUnauthorized, "Sign in first", "This control changes the system: sign in on the admin page with the admin credentials (ADMIN_USER and ADMIN_PASSWORD; the compose defaults are in the README)."})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requirePassword refuses a control between replicas when no admin
// password is set: the token is then derived from "", which anyone can
// compute, so only the read-only internal calls stay open.
func (a *admin) requirePassword(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.Password == "" {
			writeError(w, r, a.logger, &httpError{http.StatusForbidden, "Controls are off", "The admin controls are off on this replica: ADMIN_PASSWORD is not set."})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireInternal refuses calls without the replicas' shared token.
func (a *admin) requireInternal(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Get(internalTokenHeader)
		if !hmac.Equal([]byte(got), []byte(a.cluster.token)) {
			writeError(w, r, a.logger, &httpError{http.StatusNotFound, "Page not found", "There is nothing at " + truncate(r.URL.Path, 60) + "."})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// addAdminRoutes adds the admin page, its API and the internal endpoints.
func (a *admin) addRoutes(mux *http.ServeMux) {
	mux.Handle("GET /admin", http.HandlerFunc(a.handlePage))
	mux.Handle("POST /admin/login", http.HandlerFunc(a.handleLogin))
	mux.Handle("POST /admin/logout", http.HandlerFunc(a.handleLogout))
	mux.Handle("GET /admin/load", http.HandlerFunc(a.handleLoadFragment))
	mux.Handle("GET /api/admin/requests", http.HandlerFunc(a.handleRequests))
	mux.Handle("GET /api/admin/status", http.HandlerFunc(a.handleStatus))
	mux.Handle("GET /api/admin/events", http.HandlerFunc(a.handleEvents))
	mux.Handle("GET /api/admin/session", http.HandlerFunc(a.handleSession))
	mux.Handle("POST /api/admin/replicas/{name}/crash", a.requireAdmin(http.HandlerFunc(a.handleCrash)))
	mux.Handle("POST /api/admin/replicas/{name}/hang", a.requireAdmin(http.HandlerFunc(a.handleHang)))
	mux.Handle("POST /api/admin/redis/restart", a.requireAdmin(http.HandlerFunc(a.handleRedisRestart)))
	a.addSimulationRoutes(mux)

	mux.Handle("GET /internal/requests", a.requireInternal(http.HandlerFunc(a.handleInternalRequests)))
	mux.Handle("POST /internal/crash", a.requireInternal(a.requirePassword(http.HandlerFunc(a.handleInternalCrash))))
	mux.Handle("POST /internal/hang", a.requireInternal(a.requirePassword(http.HandlerFunc(a.handleInternalHang))))
	// Anything else under /internal/ (a wrong method included) is not found.
	mux.Handle("/internal/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, a.logger, &httpError{http.StatusNotFound, "Page not found", "There is nothing at " + truncate(r.URL.Path, 60) + "."})
	}))
	mux.Handle("POST /internal/session", a.requireInternal(http.HandlerFunc(a.handleInternalSession)))
	for path, allow := range map[string]string{
		"/admin":                           "GET",
		"/admin/login":                     "POST",
		"/admin/logout":                    "POST",
		"/admin/load":                      "GET",
		"/api/admin/requests":              "GET",
		"/api/admin/status":                "GET",
		"/api/admin/events":                "GET",
		"/api/admin/session":               "GET",
		"/api/admin/replicas/{name}/crash": "POST",
		"/api/admin/replicas/{name}/hang":  "POST",
		"/api/admin/redis/restart":         "POST",
	} {
		mux.Handle(path, handleMethodNotAllowed(a.logger, allow))
	}
}

// maxLogLimit bounds ?limit= of the request log.
const maxLogLimit = 1000

// handleRequests serves GET /api/admin/requests?limit=N: the request log
// of every replica that answers, newest first.
func (a *admin) handleRequests(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLogLimit {
			writeError(w, r, a.logger, badRequest(fmt.Sprintf("limit must be a whole number from 1 to %d.", maxLogLimit)))
			return
		}
		limit = n
	}
	entries, _ := a.cluster.collect(r.Context(), nil, limit)
	out := reqlog.Merge(limit, entries)
	if out == nil {
		out = []reqlog.Entry{}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleStatus serves GET /api/admin/status: the topology's state.
func (a *admin) handleStatus(w http.ResponseWriter, r *http.Request) {
	_, st := a.cluster.collect(r.Context(), nil, 0)
	writeJSON(w, http.StatusOK, st)
}

// eventInterval is how often the live view polls the replicas.
const eventInterval = 500 * time.Millisecond

// maxEventStream bounds one event stream; the browser reconnects by itself.
const maxEventStream = 10 * time.Minute

// maxEventStreams bounds the live views one replica serves at once: each
// polls every replica twice a second.
const maxEventStreams = 16

// handleEvents serves GET /api/admin/events, the live view as Server-Sent
// Events: "status" with the topology twice a second, and "requests" with
// the log entries that are new since the last event, oldest first. The
// first "requests" event carries the newest 100. If this replica dies,
// the browser reconnects through nginx to another one, which starts over;
// entry IDs let the page drop what it has already shown.
func (a *admin) handleEvents(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "text/event-stream")
		return
	}
	select {
	case a.streams <- struct{}{}:
		defer func() { <-a.streams }()
	default:
		writeError(w, r, a.logger, &httpError{http.StatusServiceUnavailable, "Too many live views",
			fmt.Sprintf("This replica already streams to %d admin pages; close one or try again later.", maxEventStreams)})
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	// nginx must pass each event on at once instead of buffering.
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 1000\n\n")
	ctx, cancel := context.WithTimeout(r.Context(), maxEventStream)
	defer cancel()
	cursors := map[string]cursor{}
	limit := 100
	t := time.NewTicker(eventInterval)
	defer t.Stop()
	for {
		entries, st := a.cluster.collect(ctx, cursors, limit)
		limit = 500
		rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := writeEvent(w, "status", st); err != nil {
			return
		}
		if len(entries) > 0 {
			merged := reqlog.Merge(len(entries), entries)
			for i, j := 0, len(merged)-1; i < j; i, j = i+1, j-1 {
				merged[i], merged[j] = merged[j], merged[i]
			}
			if err := writeEvent(w, "requests", merged); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func writeEvent(w http.ResponseWriter, name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b)
	return err
}

// handleInternalRequests serves GET /internal/requests to the other
// replicas: this replica's log after a sequence number of a given run.
func (a *admin) handleInternalRequests(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, _ := strconv.ParseUint(q.Get("after"), 10, 64)
	if q.Get("boot") != a.log.Boot() {
		after = 0
	}
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit < 0 || limit > maxLogLimit {
		limit = 100
	}
	pl := a.localLog()
	pl.Entries = a.log.After(after, limit)
	writeJSON(w, http.StatusOK, pl)
}

// forward runs a control on the named replica: here, or on a peer through
// its internal endpoint.
func (a *admin) forward(w http.ResponseWriter, r *http.Request, path string, body any, here func() (string, error)) {
	name := r.PathValue("name")
	var msg string
	var err error
	switch _, peer := a.Peers[name]; {
	case name == a.replica:
		msg, err = here()
	case peer:
		var out struct {
			Message string `json:"message"`
		}
		err = a.cluster.call(r.Context(), http.MethodPost, a.Peers[name]+path, body, &out)
		if err != nil {
			if _, ok := err.(*httpError); !ok {
				_, detail := describeFailure(err)
				err = &httpError{http.StatusBadGateway, "Replica unreachable", fmt.Sprintf("%s could not be asked: it %s.", name, detail)}
			}
		}
		msg = out.Message
	default:
		err = &httpError{http.StatusNotFound, "No such replica", fmt.Sprintf("There is no replica named %q; the replicas are %s.", truncate(name, 20), strings.Join(a.cluster.names(), ", "))}
	}
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	a.logger.Info("admin control", "request_id", info(r).RequestID, "control", path, "replica", name)
	writeJSON(w, http.StatusAccepted, map[string]string{"message": msg})
}

// crashSoon ends this process shortly after the answer is on its way.
func (a *admin) crashSoon() (string, error) {
	if a.Crash == nil {
		return "", &httpError{http.StatusNotImplemented, "Crash not available", "This replica was started without a way to crash itself."}
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		a.Crash()
	}()
	return a.replica + " is crashing now (SIGKILL). Its restart policy brings it back after the restart delay.", nil
}

// handleCrash serves POST /api/admin/replicas/{name}/crash.
func (a *admin) handleCrash(w http.ResponseWriter, r *http.Request) {
	a.forward(w, r, "/internal/crash", struct{}{}, a.crashSoon)
}

func (a *admin) handleInternalCrash(w http.ResponseWriter, r *http.Request) {
	msg, err := a.crashSoon()
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"message": msg})
}

// maxHang bounds a hang: the replica's write timeout is 30s.
const maxHang = 30

type hangBody struct {
	Seconds int `json:"seconds"`
}

// hangFor makes this replica hold every request for n seconds.
func (a *admin) hangFor(n int) (string, error) {
	if n < 1 || n > maxHang {
		return "", badRequest(fmt.Sprintf("A hang lasts 1 to %d seconds.", maxHang))
	}
	a.hungUntil.Store(time.Now().Add(time.Duration(n) * time.Second).UnixNano())
	return fmt.Sprintf("%s holds every request for %d s from now: nginx gives up on it after its read timeout and tries another replica.", a.replica, n), nil
}

// handleHang serves POST /api/admin/replicas/{name}/hang {"seconds":N}.
func (a *admin) handleHang(w http.ResponseWriter, r *http.Request) {
	var b hangBody
	if err := decodeJSON(w, r, &b); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	if b.Seconds < 1 || b.Seconds > maxHang {
		writeError(w, r, a.logger, badRequest(fmt.Sprintf(`The body needs "seconds" from 1 to %d, e.g. {"seconds":10}.`, maxHang)))
		return
	}
	a.forward(w, r, "/internal/hang", b, func() (string, error) { return a.hangFor(b.Seconds) })
}

func (a *admin) handleInternalHang(w http.ResponseWriter, r *http.Request) {
	var b hangBody
	if err := decodeJSON(w, r, &b); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	msg, err := a.hangFor(b.Seconds)
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"message": msg})
}

// handleRedisRestart serves POST /api/admin/redis/restart.
func (a *admin) handleRedisRestart(w http.ResponseWriter, r *http.Request) {
	if a.RestartRedis == nil {
		writeError(w, r, a.logger, &httpError{http.StatusNotImplemented, "Restart not available", "This replica has no Redis credentials for a restart (REDIS_OPS_PASSWORD)."})
		return
	}
	if err := a.RestartRedis(r.Context()); err != nil {
		a.logger.Warn("restart redis", "request_id", info(r).RequestID, "err", err)
		writeError(w, r, a.logger, &httpError{http.StatusBadGateway, "Redis did not restart", "Redis did not accept the SHUTDOWN: it may be down already."})
		return
	}
	a.logger.Info("admin control", "request_id", info(r).RequestID, "control", "redis restart")
	writeJSON(w, http.StatusAccepted, map[string]string{"message": "Redis is shutting down (saving its append-only file); its restart policy brings it back in a second or two."})
}

// inspections is the caller's session as each store holds it.
func (a *admin) inspections(r *http.Request) []session.Inspection {
	var out []session.Inspection
	for _, m := range session.Modes {
		in, ok := a.stores[m].(session.Inspector)
		if !ok {
			continue
		}
		got := in.Inspect(r)
		if m == session.Sticky && !got.Held && got.Replica != "" && got.Replica != a.replica {
			got = a.inspectOnPeer(r, got)
		}
		out = append(out, got)
	}
	return out
}

// inspectOnPeer asks the replica that issued the sticky session to show it.
func (a *admin) inspectOnPeer(r *http.Request, fallback session.Inspection) session.Inspection {
	base, ok := a.Peers[fallback.Replica]
	id := memstore.RequestID(r)
	if !ok || id == "" {
		return fallback
	}
	var got session.Inspection
	if err := a.cluster.call(r.Context(), http.MethodPost, base+"/internal/session", map[string]string{"sticky": id}, &got); err != nil {
		_, detail := describeFailure(err)
		fallback.Where = fmt.Sprintf("The session lives only in the memory of %s, which %s.", fallback.Replica, detail)
		return fallback
	}
	return got
}

// handleInternalSession serves POST /internal/session: this replica's
// in-memory entry for a sticky session ID, for the admin page of another
// replica. The ID travels in the body, on the compose network only.
func (a *admin) handleInternalSession(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Sticky string `json:"sticky"`
	}
	if err := decodeJSON(w, r, &b); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	in, ok := a.stores[session.Sticky].(session.Inspector)
	if !ok {
		writeError(w, r, a.logger, &httpError{http.StatusNotFound, "No sticky store", "This replica has no sticky store."})
		return
	}
	req := r.Clone(r.Context())
	req.Header = http.Header{}
	req.AddCookie(&http.Cookie{Name: memstore.CookieName, Value: b.Sticky})
	writeJSON(w, http.StatusOK, in.Inspect(req))
}

// handleSession serves GET /api/admin/session: the caller's own session as
// each store holds it.
func (a *admin) handleSession(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.inspections(r))
}
