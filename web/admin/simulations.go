package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sessiondemo/shop/templates"
	"github.com/sessiondemo/shop/web/internal/httpx"
	"github.com/sessiondemo/shop/web/peer"
	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/simulator"
)

// The traffic simulator runs inside the replica that was asked, against a
// load balancer on the compose network (SimulatorTargets), so it sees the
// stack as browsers do. Its progress lives in that replica; the others
// fetch it from there, so polling works whichever replica nginx picks.

// maxSimulations is how many finished runs a replica remembers.
const maxSimulations = 10

// simView is a run's state, as JSON and for the page.
type simView struct {
	ID       string              `json:"id"`
	Replica  string              `json:"replica"`
	Target   string              `json:"target"`
	Request  simRequest          `json:"request"`
	Started  time.Time           `json:"started"`
	Running  bool                `json:"running"`
	Progress *simulator.Progress `json:"progress,omitempty"`
	Result   *simulator.Result   `json:"result,omitempty"`
	Error    string              `json:"error,omitempty"`
}

// simRequest is the body of POST /api/admin/simulations.
type simRequest struct {
	Clients    int              `json:"clients"`
	Mode       session.Mode     `json:"mode"`
	Affinity   session.Affinity `json:"affinity"`
	Sessions   string           `json:"sessions"`
	Seconds    int              `json:"seconds"`
	OneAddress bool             `json:"one_address"`
	Naive      bool             `json:"naive"`
	// MaxRequests bounds the run; default 20000.
	MaxRequests int `json:"max_requests"`
}

// simulations holds the traffic simulator runs this replica started.
type simulations struct {
	mu      sync.Mutex
	n       int
	runs    map[string]*simView
	order   []string
	running bool
}

func newSimulations() *simulations {
	return &simulations{runs: map[string]*simView{}}
}

func (s *simulations) get(id string) (simView, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.runs[id]
	if !ok {
		return simView{}, false
	}
	return *v, true
}

// simTarget is the first load balancer that accepts a connection.
func (a *App) simTarget(ctx context.Context) (string, error) {
	if len(a.o.SimulatorTargets) == 0 {
		return "", &httpx.Error{Status: http.StatusNotImplemented, Title: "No simulator target", Message: "This replica was started without SIMULATOR_TARGETS, the load balancers the simulator sends its traffic to."}
	}
	for _, t := range a.o.SimulatorTargets {
		u, err := url.Parse(t)
		if err != nil {
			continue
		}
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "80")
		}
		d := net.Dialer{Timeout: 500 * time.Millisecond}
		if conn, err := d.DialContext(ctx, "tcp", host); err == nil {
			conn.Close()
			return t, nil
		}
	}
	return "", &httpx.Error{Status: http.StatusServiceUnavailable, Title: "No load balancer", Message: "No load balancer (" + strings.Join(a.o.SimulatorTargets, ", ") + ") accepts connections, so the simulator has nowhere to send traffic."}
}

// handleStartSimulation serves POST /api/admin/simulations.
func (a *App) handleStartSimulation(w http.ResponseWriter, r *http.Request) {
	var req simRequest
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		httpx.WriteError(w, r, a.logger, err)
		return
	}
	if req.Seconds < 1 || time.Duration(req.Seconds)*time.Second > simulator.MaxDuration {
		httpx.WriteError(w, r, a.logger, httpx.BadRequest(fmt.Sprintf(`"seconds" must be from 1 to %d.`, int(simulator.MaxDuration/time.Second))))
		return
	}
	if req.MaxRequests == 0 {
		req.MaxRequests = 20000
	}
	cfg := simulator.Config{
		Clients: req.Clients, Mode: req.Mode, Affinity: req.Affinity, Sessions: req.Sessions,
		Duration: time.Duration(req.Seconds) * time.Second, MaxRequests: req.MaxRequests,
		OneAddress: req.OneAddress, Naive: req.Naive, Replicas: a.peers.Names(),
		Target: "http://lb",
	}
	if req.Mode != session.Sticky {
		cfg.Affinity = ""
	}
	if err := cfg.Validate(); err != nil {
		httpx.WriteError(w, r, a.logger, httpx.BadRequest(err.Error()))
		return
	}
	target, err := a.simTarget(r.Context())
	if err != nil {
		httpx.WriteError(w, r, a.logger, err)
		return
	}
	cfg.Target = target
	s := a.sims
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		httpx.WriteError(w, r, a.logger, &httpx.Error{Status: http.StatusConflict, Title: "A simulation is running", Message: "This replica is already running a simulation; wait for it to finish."})
		return
	}
	s.running = true
	s.n++
	v := &simView{ID: fmt.Sprintf("%s.%d.%d", a.o.Replica, time.Now().Unix()%100000, s.n), Replica: a.o.Replica, Target: target, Request: req, Started: time.Now().UTC(), Running: true}
	s.runs[v.ID] = v
	s.order = append(s.order, v.ID)
	if len(s.order) > maxSimulations {
		delete(s.runs, s.order[0])
		s.order = s.order[1:]
	}
	s.mu.Unlock()
	a.logger.Info("simulation started", "request_id", httpx.InfoOf(r).RequestID, "simulation", v.ID, "mode", cfg.Mode, "affinity", cfg.Affinity, "clients", cfg.Clients, "seconds", req.Seconds)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.Duration+30*time.Second)
		defer cancel()
		res, err := simulator.Run(ctx, cfg, func(p simulator.Progress) {
			s.mu.Lock()
			v.Progress = &p
			s.mu.Unlock()
		})
		res.Config.Client = nil
		s.mu.Lock()
		v.Running, s.running = false, false
		v.Result = &res
		if err != nil {
			v.Error = err.Error()
		}
		s.mu.Unlock()
		a.logger.Info("simulation done", "simulation", v.ID, "requests", res.Requests, "errors", res.Errors, "requests_max_mean", res.RequestsMaxMean)
	}()
	httpx.WriteJSON(w, http.StatusAccepted, map[string]string{"id": v.ID, "message": "Simulation " + v.ID + " started on " + a.o.Replica + " against " + target + "."})
}

// simulation finds a run here or on the replica that started it.
func (a *App) simulation(r *http.Request) (simView, error) {
	return findRun(r.Context(), a, r.PathValue("id"), "simulation", a.sims.get, "/internal/simulations/")
}

// findRun finds the run id of a kind ("simulation", "scorecard") that
// lives on the replica that started it: here (local), or on that replica
// through its internal endpoint internal+id. Replica names never hold a
// dot; a run's ID starts with its owner's.
func findRun[V any](ctx context.Context, a *App, id, kind string, local func(string) (V, bool), internal string) (V, error) {
	var v V
	owner, _, _ := strings.Cut(id, ".")
	if owner == a.o.Replica {
		if v, ok := local(id); ok {
			return v, nil
		}
	} else if a.peers.Has(owner) {
		err := a.peers.Call(ctx, owner, http.MethodGet, internal+url.PathEscape(id), nil, &v)
		if err == nil {
			return v, nil
		}
		var refused *peer.RefusedError
		if !errors.As(err, &refused) {
			_, detail := describeFailure(err)
			return v, &httpx.Error{Status: http.StatusBadGateway, Title: "Run out of reach", Message: fmt.Sprintf("The %s %s runs on %s, which %s: its progress went with it.", kind, httpx.Truncate(id, 40), owner, detail)}
		}
	}
	return v, &httpx.Error{Status: http.StatusNotFound, Title: "No such " + kind, Message: fmt.Sprintf("There is no %s %q (a replica forgets its runs when it restarts).", kind, httpx.Truncate(id, 40))}
}

// handleSimulationJSON serves GET /api/admin/simulations/{id}.
func (a *App) handleSimulationJSON(w http.ResponseWriter, r *http.Request) {
	v, err := a.simulation(r)
	if err != nil {
		httpx.WriteError(w, r, a.logger, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

// handleInternalSimulation serves GET /internal/simulations/{id}: a run
// this replica started, for the admin page of another replica.
func (a *App) handleInternalSimulation(w http.ResponseWriter, r *http.Request) {
	v, ok := a.sims.get(r.PathValue("id"))
	if !ok {
		httpx.WriteError(w, r, a.logger, &httpx.Error{Status: http.StatusNotFound, Title: "No such simulation", Message: "There is no simulation " + httpx.Truncate(r.PathValue("id"), 40) + " here."})
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

// handleSimulationFragment serves GET /admin/simulations/{id}: the run's
// progress or result as HTML for the admin page.
func (a *App) handleSimulationFragment(w http.ResponseWriter, r *http.Request) {
	v, err := a.simulation(r)
	if err != nil {
		he := httpx.ErrorOf(err)
		httpx.Render(w, r, a.logger, he.Status, templates.SimulationView(templates.SimulationModel{Done: true, Error: he.Message}))
		return
	}
	httpx.Render(w, r, a.logger, http.StatusOK, templates.SimulationView(simulationModel(v)))
}

func simulationModel(v simView) templates.SimulationModel {
	m := templates.SimulationModel{ID: v.ID, Replica: v.Replica, Target: v.Target, Done: !v.Running, Error: v.Error}
	req := v.Request
	m.Title = fmt.Sprintf("%d clients, %s mode", req.Clients, req.Mode)
	if req.Mode == session.Sticky {
		m.Title += ", " + string(req.Affinity) + " affinity"
		if req.Affinity == session.AffinityIP && req.OneAddress {
			m.Title += " (one address)"
		}
	}
	if req.Naive {
		m.Title += ", naive writes"
	}
	m.Title += ", " + req.Sessions + " sessions"
	total := time.Duration(req.Seconds) * time.Second
	var per []simulator.ReplicaLoad
	switch {
	case v.Result != nil:
		res := v.Result
		m.Percent = 100
		m.Requests, m.Errors, per = res.Requests, res.Errors, res.PerReplica
		m.Elapsed = res.Elapsed.Round(100 * time.Millisecond).String()
		m.RequestsMaxMean = fmt.Sprintf("%.2f", res.RequestsMaxMean)
		m.SessionsMaxMean = fmt.Sprintf("%.2f", res.SessionsMaxMean)
		m.Carts = fmt.Sprintf("%d of %d carts kept every acknowledged add; %d lost %d adds", res.Carts.Kept, res.Carts.Checked, res.Carts.Lost, res.LostAdds)
		m.CartsLost = res.Carts.Lost
		m.ErrorSamples = res.ErrorSamples
	case v.Progress != nil:
		p := v.Progress
		m.Requests, m.Errors, per = p.Requests, p.Errors, p.PerReplica
		m.Elapsed = p.Elapsed.Round(100 * time.Millisecond).String()
		if total > 0 {
			m.Percent = min(99, int(p.Elapsed*100/total))
		}
	}
	sort.Slice(per, func(i, j int) bool { return per[i].Replica < per[j].Replica })
	m.Chart = templates.LoadChart{Title: "Requests and sessions per replica in this run", Segments: []string{"requests"}, Max: 1}
	m.SessionChart = templates.LoadChart{Title: "Sessions that began on each replica", Segments: []string{"sessions"}, Max: 1}
	for _, l := range per {
		m.Chart.Bars = append(m.Chart.Bars, templates.LoadBar{Name: l.Replica, Values: []int{l.Requests}, Total: l.Requests})
		m.Chart.Max = max(m.Chart.Max, l.Requests)
		m.SessionChart.Bars = append(m.SessionChart.Bars, templates.LoadBar{Name: l.Replica, Values: []int{l.Sessions}, Total: l.Sessions})
		m.SessionChart.Max = max(m.SessionChart.Max, l.Sessions)
	}
	if m.Done {
		m.Chart.MaxMean, m.SessionChart.MaxMean = m.RequestsMaxMean, m.SessionsMaxMean
		m.Chart.Note = "Requests per replica; 1.00 is even, 3.00 is all on one of three."
		m.SessionChart.Note = "Sessions by the replica that answered their first request."
	}
	return m
}

// concurrentRequest is the body of POST /api/admin/concurrent-adds.
type concurrentRequest struct {
	Mode  session.Mode `json:"mode"`
	Naive bool         `json:"naive"`
	N     int          `json:"n"`
}

// handleConcurrentAdds serves POST /api/admin/concurrent-adds: one cart,
// n adds at once (default 20), and how many the cart kept.
func (a *App) handleConcurrentAdds(w http.ResponseWriter, r *http.Request) {
	var req concurrentRequest
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		httpx.WriteError(w, r, a.logger, err)
		return
	}
	if req.N == 0 {
		req.N = 20
	}
	if req.N < 1 || req.N > simulator.MaxConcurrentAdds {
		httpx.WriteError(w, r, a.logger, httpx.BadRequest(fmt.Sprintf(`"n" must be from 1 to %d.`, simulator.MaxConcurrentAdds)))
		return
	}
	if req.Naive && req.Mode != session.Redis {
		httpx.WriteError(w, r, a.logger, httpx.BadRequest("Naive writes exist only in redis mode."))
		return
	}
	if _, ok := session.ParseMode(string(req.Mode)); !ok {
		httpx.WriteError(w, r, a.logger, httpx.BadRequest("Choose "+session.Choices(session.Modes)+" mode."))
		return
	}
	target, err := a.simTarget(r.Context())
	if err != nil {
		httpx.WriteError(w, r, a.logger, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
	defer cancel()
	res, err := simulator.ConcurrentAdds(ctx, target, req.Mode, req.N, req.Naive, nil)
	if err != nil {
		httpx.WriteError(w, r, a.logger, &httpx.Error{Status: http.StatusBadGateway, Title: "The experiment failed", Message: err.Error()})
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"result": res, "lost": res.Lost(), "summary": concurrentSummary(res)})
}

// concurrentSummary says what the experiment found, and why.
func concurrentSummary(res simulator.ConcurrentResult) string {
	kept := fmt.Sprintf("%s mode", res.Mode)
	if res.Mode == session.Redis {
		kept += map[bool]string{true: " (naive writes)", false: " (safe writes)"}[res.Naive]
	}
	var replicas []string
	for name, n := range res.Replicas {
		replicas = append(replicas, fmt.Sprintf("%s %d", name, n))
	}
	sort.Strings(replicas)
	s := fmt.Sprintf("%s: the cart holds %d of the %d items acknowledged (1 + %d concurrent adds, answered by %s).", kept, res.InCart, res.Acknowledged+1, res.Sent, strings.Join(replicas, ", "))
	switch {
	case res.Lost() == 0:
		s += " None lost."
	case res.Mode == session.JWT:
		s += fmt.Sprintf(" %d lost: each answer carried a new token holding the cart as that request saw it, and the browser kept the last one to arrive. The last writer wins; a token cannot merge concurrent changes.", res.Lost())
	case res.Naive:
		s += fmt.Sprintf(" %d lost: each request read the whole session, added one, and wrote the whole session back, overwriting what the others had written meanwhile.", res.Lost())
	default:
		s += fmt.Sprintf(" %d lost.", res.Lost())
	}
	return s
}
