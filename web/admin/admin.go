// Package admin is the admin page (GET /admin) and everything behind it:
// the live request log of every replica, the topology, the load chart,
// the caller's session as each store holds it, and the controls that
// break things (crash or hang a replica, restart Redis, the traffic
// simulator and the concurrent-adds experiment). Every route it serves is
// in routes.go.
//
// The shop knows nothing of it. The replica's composition (package web)
// mounts its routes, holds every request while a hang lasts (WithHang) and
// hands every finished page and API request to Record.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sessiondemo/shop/web/internal/httpx"
	"github.com/sessiondemo/shop/web/peer"
	"github.com/sessiondemo/shop/web/reqlog"
	"github.com/sessiondemo/shop/web/session"
)

// Options configure the admin page: where the other replicas and the load
// balancers are, how to reach Redis, and the credentials its controls
// need. The zero value of each optional field turns its feature off.
type Options struct {
	// Replica is this replica's name. Required.
	Replica string
	// User and Password guard every control that changes the system. An
	// empty Password turns the controls off.
	User, Password string
	// InternalKey is the replicas' shared key for the calls between them
	// (package peer), random and separate from the password. An empty key
	// turns the controls between replicas off, since anyone could then
	// compute the token.
	InternalKey string
	// Peers lists the replicas (this one may be among them): a fixed
	// peer.Static, or a peer.DNS that follows scaling.
	Peers peer.Directory
	// LoadBalancers maps the load balancers' names to an address to probe,
	// e.g. "lb" -> "lb:80".
	LoadBalancers map[string]string
	// PingRedis checks Redis; nil shows Redis as not configured.
	PingRedis func(context.Context) error
	// Redis shows the session store's nodes and Sentinels and runs the
	// restart and kill controls; nil turns them off.
	Redis RedisCluster
	// Crash ends this replica's process at once, as a crash would (the
	// container's restart policy brings it back); nil turns the control off.
	Crash func()
	// Stopping is closed when the replica begins to shut down: every live
	// event stream ends then (the page reconnects through the load balancer
	// to another replica), and requests held by a hang are let go, so a
	// stop waits only for the requests really in flight. nil: never.
	Stopping <-chan struct{}
	// Stop stops this replica gracefully, as a SIGTERM from Docker would
	// (it finishes the requests in flight; the restart policy brings it
	// back); nil turns the control off.
	Stop func()
	// CrashAfter runs crash (Crash) in a goroutine of its own once d has
	// passed, as time.AfterFunc does: the crash control gives its answer
	// d to get out first. Default time.AfterFunc. Tests set it to see at
	// once whether a crash was asked for, instead of waiting to see none.
	CrashAfter func(d time.Duration, crash func())
	// ThrottleClock is the clock of the throttle on admin passwords
	// (throttle.go). Default time.Now. Tests move it by hand instead of
	// sleeping through the waits.
	ThrottleClock func() time.Time
	// SimulatorTargets are the load balancers' base URLs as seen from a
	// replica, e.g. "http://lb"; the traffic simulator uses the first that
	// answers.
	SimulatorTargets []string
	// LogSize is how many requests this replica remembers. Default 2000.
	LogSize int
	// Inspectors show the caller's session as each store holds it, in the
	// order of session.Modes.
	Inspectors []session.Inspector
	// Memory is the store that keeps sticky sessions in this replica's
	// memory, or nil.
	Memory Memory
	// Memcached shows memcached mode's servers and fills them; nil leaves
	// them off the page.
	Memcached MemcachedServers
	// UserEnds records the end of every session of a user for redis and
	// jwt mode; nil leaves those modes out of "end the user's sessions".
	UserEnds session.UserEnds
	// Logger receives the controls used and every internal error.
	// Default slog.Default().
	Logger *slog.Logger
	// Started is when this replica started, for the admin page's "joined"
	// mark. Default: when New is called.
	Started time.Time
}

// Memory is what the admin page needs of the store that keeps sessions in
// this replica's memory (sticky mode): how many it holds, and a session by
// its ID, so that the replica holding a session can show it when another
// replica's admin page asks.
type Memory interface {
	// Len returns the number of sessions held.
	Len() int
	// RequestID returns the session ID the request carries, or "".
	RequestID(r *http.Request) string
	// InspectID shows the session with the given ID as this replica holds it.
	InspectID(id string) session.Inspection
	// EndUser deletes every session of the user and returns how many.
	EndUser(user string) int
}

// App is the admin page's state on one replica.
type App struct {
	o       Options
	logger  *slog.Logger
	log     *reqlog.Log
	peers   *peer.Client
	cluster *cluster
	// hungUntil is when a hang asked by the admin ends (Unix nanoseconds).
	hungUntil atomic.Int64
	sims      *simulations
	cards     *scorecards
	// streams counts the open event streams.
	streams streamCounter
	// started is when this replica started (Options.Started).
	started time.Time
	// throttle slows down password guessing; signouts are the admin
	// sign-ins ended before their cookie expires.
	throttle *throttle
	signouts *signouts
	// stopping is Options.Stopping.
	stopping <-chan struct{}
}

// peerTimeout bounds every call to another replica: the admin page must
// draw a dead or hung replica as such, not wait for it.
const peerTimeout = 800 * time.Millisecond

// New returns the admin page of the replica o.Replica.
func New(o Options) (*App, error) {
	if !session.ValidReplicaName(o.Replica) {
		return nil, fmt.Errorf("admin: replica name %q is not a replica name", o.Replica)
	}
	if o.LogSize <= 0 {
		o.LogSize = 2000
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.CrashAfter == nil {
		o.CrashAfter = func(d time.Duration, crash func()) { time.AfterFunc(d, crash) }
	}
	if o.ThrottleClock == nil {
		o.ThrottleClock = time.Now
	}
	a := &App{
		o:        o,
		logger:   o.Logger,
		log:      reqlog.New(o.Replica, o.LogSize),
		peers:    peer.NewClient(o.Replica, o.Peers, o.InternalKey, peerTimeout),
		sims:     newSimulations(),
		cards:    newScorecards(),
		started:  o.Started,
		stopping: o.Stopping,
		throttle: newThrottle(),
		signouts: newSignouts(),
	}
	go a.learnSignouts()
	if a.started.IsZero() {
		a.started = time.Now()
	}
	a.started = a.started.UTC()
	a.cluster = &cluster{peers: a.peers, log: a.log, lbs: o.LoadBalancers, ping: o.PingRedis, redis: o.Redis, memcached: o.Memcached, local: a.localLog}
	return a, nil
}

// Record adds a finished request to this replica's request log; the
// composition calls it for every page and API request (httpx.WithLogging).
func (a *App) Record(ri httpx.Info, r *http.Request, o httpx.Outcome) {
	a.log.Add(reqlog.Entry{
		Time:         time.Now().UTC(),
		RequestID:    ri.RequestID,
		LoadBalancer: ri.LoadBalancer,
		Mode:         ri.Mode,
		Affinity:     ri.Affinity,
		Method:       r.Method,
		Path:         r.URL.Path,
		Status:       o.Status,
		DurationMS:   float64(o.Duration.Microseconds()) / 1000,
		Session:      o.Session.Hash,
		SessionEvent: string(o.Session.Event),
	})
}

// WithHang holds every request while the admin has this replica hang, as
// a stuck process would: nginx times out and tries another replica. The
// composition puts it inside the logging, so a request nginx gave up on
// is logged (as 499) and the admin page shows both of nginx's attempts.
func (a *App) WithHang(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := time.Until(time.Unix(0, a.hungUntil.Load())); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-a.stopping:
				t.Stop()
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// hungFor is how many more seconds this replica hangs, rounded up.
func (a *App) hungFor() int {
	d := time.Until(time.Unix(0, a.hungUntil.Load()))
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// peerError turns a failed call to a peer into what the caller sees: the
// peer's own refusal as it is, anything else as a 502 that says why the
// peer could not be asked.
func peerError(err error, unreachable func(detail string) string) error {
	var refused *peer.RefusedError
	if errors.As(err, &refused) {
		return &httpx.Error{Status: refused.Status, Title: "The replica refused", Message: refused.Message}
	}
	_, detail := describeFailure(err)
	return &httpx.Error{Status: http.StatusBadGateway, Title: "Replica unreachable", Message: unreachable(detail)}
}
