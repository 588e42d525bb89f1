package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sessiondemo/shop/web/internal/httpx"
	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/simulator"
)

// The scorecard runs every fault a replica can cause from inside, one
// after another, while simulated shoppers shop in every mode at once
// through a load balancer (simulator.RunScorecard). Like the simulator's
// runs, a scorecard lives in the replica that runs it, which is never the
// one its faults hit; the others fetch it from there.

// maxScorecards is how many runs a replica remembers.
const maxScorecards = 5

// Scorecard states.
const (
	scorecardRunning  = "running"
	scorecardDone     = "done"
	scorecardCanceled = "canceled"
	scorecardFailed   = "failed"
)

// scorecardView is a run, as GET /api/admin/scorecard/{id} answers.
type scorecardView struct {
	ID       string    `json:"id"`
	Replica  string    `json:"replica"`
	Target   string    `json:"target"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	State    string    `json:"state"`
	// Progress is the share of the faults measured, 0..1; RemainingS an
	// estimate of the seconds left.
	Progress   float64            `json:"progress"`
	RemainingS int                `json:"remaining_s"`
	Faults     []string           `json:"faults"`
	Modes      []session.Mode     `json:"modes"`
	Cells      []simulator.Cell   `json:"cells"`
	Unexpected int                `json:"unexpected"`
	Error      string             `json:"error,omitempty"`
	cancel     context.CancelFunc `json:"-"`
}

// scorecards holds the runs this replica started.
type scorecards struct {
	mu    sync.Mutex
	n     int
	runs  map[string]*scorecardView
	order []string
}

func newScorecards() *scorecards { return &scorecards{runs: map[string]*scorecardView{}} }

// get returns a copy of run id.
func (s *scorecards) get(id string) (scorecardView, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.runs[id]
	if !ok {
		return scorecardView{}, false
	}
	c := *v
	c.Cells = append([]simulator.Cell(nil), v.Cells...)
	return c, true
}

// running returns the ID of the run going on here, or "".
func (s *scorecards) running() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.order {
		if s.runs[id].State == scorecardRunning {
			return id
		}
	}
	return ""
}

// scorecardFaults are the faults the admin's scorecard causes, in order.
func (a *App) scorecardFaults(target string) []simulator.Fault {
	settleReplicas := func(ctx context.Context, victim string) error { return a.waitReplicas(ctx, victim, 30*time.Second) }
	faults := []simulator.Fault{
		{Name: simulator.FaultNone},
		{Name: simulator.FaultReplicaCrash, Inject: a.onVictim("/internal/crash", nil), Settle: settleReplicas},
		{Name: simulator.FaultReplicaFreeze, Inject: a.onVictim("/internal/hang", hangBody{Seconds: 4}), Settle: settleReplicas},
		{Name: simulator.FaultReplicaStop, Inject: a.onVictim("/internal/stop", nil), Settle: settleReplicas},
	}
	if a.o.Redis != nil {
		faults = append(faults, simulator.Fault{
			Name: simulator.FaultRedisPrimaryKill,
			Inject: func(ctx context.Context, _ string) (simulator.Injected, error) {
				_, err := a.o.Redis.Shutdown(ctx, RolePrimary, true)
				return simulator.Injected{}, err
			},
			Settle: func(ctx context.Context, _ string) error { return a.waitRedisWhole(ctx) },
		})
	}
	if a.o.Memcached != nil {
		faults = append(faults,
			simulator.Fault{Name: simulator.FaultMemcachedRestart, Inject: func(ctx context.Context, _ string) (simulator.Injected, error) {
				return simulator.Injected{}, a.o.Memcached.Flush(ctx, 0)
			}},
			simulator.Fault{Name: simulator.FaultMemcachedFull, Inject: func(ctx context.Context, _ string) (simulator.Injected, error) {
				_, err := a.o.Memcached.Fill(ctx)
				return simulator.Injected{}, err
			}},
		)
	}
	faults = append(faults, simulator.Fault{Name: simulator.FaultConcurrentAdds, Measure: func(ctx context.Context, mode session.Mode) (simulator.Cell, error) {
		return simulator.ConcurrentCell(ctx, target, mode, 20, nil)
	}})
	return faults
}

// onVictim returns a fault that runs an internal control on the victim
// replica, never this one: it runs the scorecard (ScorecardConfig.Spare).
func (a *App) onVictim(path string, body any) func(context.Context, string) (simulator.Injected, error) {
	return func(ctx context.Context, victim string) (simulator.Injected, error) {
		if victim == "" || victim == a.o.Replica {
			return simulator.Injected{}, fmt.Errorf("no replica to hit but %s, which runs the scorecard", a.o.Replica)
		}
		if body == nil {
			body = struct{}{}
		}
		var out struct {
			Message string `json:"message"`
		}
		return simulator.Injected{}, a.peers.Call(ctx, victim, http.MethodPost, path, body, &out)
	}
}

// waitReplicas waits until victim and every other replica the directory
// lists answer, at most limit.
func (a *App) waitReplicas(ctx context.Context, victim string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		down := a.downReplicas(ctx, victim)
		if len(down) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer within %v", strings.Join(down, ", "), limit)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// downReplicas lists the replicas that do not answer an internal call:
// those the directory lists, and victim, which a fault may have taken out
// of it for a while.
func (a *App) downReplicas(ctx context.Context, victim string) []string {
	names := a.peers.Names()
	if victim != "" && !slices.Contains(names, victim) {
		names = append(names, victim)
	}
	var down []string
	for _, name := range names {
		if name == a.o.Replica {
			continue
		}
		var out any
		if !a.peers.Has(name) || a.peers.Call(ctx, name, http.MethodGet, "/internal/scorecard", nil, &out) != nil {
			down = append(down, name)
		}
	}
	return down
}

// waitRedisWhole waits until Redis has a primary and every node is up
// again, at most 40 s.
func (a *App) waitRedisWhole(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	for {
		t, err := a.o.Redis.Topology(ctx)
		if err == nil && t.Primary != "" && len(t.Nodes) > 0 {
			up := 0
			for _, n := range t.Nodes {
				if n.State == StateUp && n.Detail == "" {
					up++
				}
			}
			if up == len(t.Nodes) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return errors.New("the Redis nodes were not whole again within 40 s")
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// scorecardEstimate is how long a fault's row takes, for the estimate
// before the first row is done.
const scorecardEstimate = 15 * time.Second

// handleStartScorecard serves POST /api/admin/scorecard.
func (a *App) handleStartScorecard(w http.ResponseWriter, r *http.Request) {
	if id := a.scorecardRunningAnywhere(r.Context()); id != "" {
		httpx.WriteError(w, r, a.logger, &httpx.Error{Status: http.StatusConflict, Title: "A scorecard is running", Message: "Scorecard " + id + " is running; one at a time, since each one breaks the stack the other measures. Wait for it, or cancel it."})
		return
	}
	target, err := a.simTarget(r.Context())
	if err != nil {
		httpx.WriteError(w, r, a.logger, err)
		return
	}
	faults := a.scorecardFaults(target)
	s := a.cards
	s.mu.Lock()
	s.n++
	ctx, cancel := context.WithCancel(context.Background())
	v := &scorecardView{
		ID: fmt.Sprintf("%s.%d.%d", a.o.Replica, time.Now().Unix()%100000, s.n), Replica: a.o.Replica, Target: target,
		Started: time.Now().UTC(), State: scorecardRunning, Modes: session.Modes, cancel: cancel,
		RemainingS: int((time.Duration(len(faults)) * scorecardEstimate).Seconds()),
	}
	for _, f := range faults {
		v.Faults = append(v.Faults, f.Name)
	}
	s.runs[v.ID] = v
	s.order = append(s.order, v.ID)
	if len(s.order) > maxScorecards {
		delete(s.runs, s.order[0])
		s.order = s.order[1:]
	}
	s.mu.Unlock()
	a.logger.Info("scorecard started", "request_id", httpx.InfoOf(r).RequestID, "scorecard", v.ID, "faults", len(faults))
	go func() {
		defer cancel()
		ctx, stop := context.WithTimeout(ctx, 10*time.Minute)
		defer stop()
		cfg := simulator.ScorecardConfig{Target: target, Modes: session.Modes, Faults: faults, Spare: a.o.Replica,
			Before: 1500 * time.Millisecond, During: 4 * time.Second, After: 2500 * time.Millisecond}
		_, err := simulator.RunScorecard(ctx, cfg, func(c simulator.Cell, done float64) {
			s.mu.Lock()
			defer s.mu.Unlock()
			v.Cells = append(v.Cells, c)
			if c.Verdict == simulator.VerdictUnexpected {
				v.Unexpected++
			}
			v.Progress = done
			if done > 0 {
				elapsed := time.Since(v.Started)
				v.RemainingS = int((time.Duration(float64(elapsed)/done) - elapsed).Seconds())
			}
		})
		s.mu.Lock()
		defer s.mu.Unlock()
		v.Finished = time.Now().UTC()
		v.RemainingS = 0
		switch {
		case errors.Is(err, context.Canceled):
			v.State = scorecardCanceled
		case err != nil:
			v.State, v.Error = scorecardFailed, err.Error()
		default:
			v.State, v.Progress = scorecardDone, 1
		}
		a.logger.Info("scorecard done", "scorecard", v.ID, "state", v.State, "cells", len(v.Cells), "unexpected", v.Unexpected)
	}()
	httpx.WriteJSON(w, http.StatusAccepted, map[string]string{"id": v.ID, "message": "Scorecard " + v.ID + " started on " + a.o.Replica + " against " + target + "."})
}

// scorecardRunningAnywhere returns the ID of a scorecard running on this
// replica or another, or "".
func (a *App) scorecardRunningAnywhere(ctx context.Context) string {
	if id := a.cards.running(); id != "" {
		return id
	}
	for _, name := range a.peers.Names() {
		if name == a.o.Replica {
			continue
		}
		var out struct {
			Running string `json:"running"`
		}
		if err := a.peers.Call(ctx, name, http.MethodGet, "/internal/scorecard", nil, &out); err == nil && out.Running != "" {
			return out.Running
		}
	}
	return ""
}

// scorecard finds run id here or on the replica that runs it.
func (a *App) scorecard(ctx context.Context, id string) (scorecardView, error) {
	return findRun(ctx, a, id, "scorecard", a.cards.get, "/internal/scorecard/")
}

// handleScorecard serves GET /api/admin/scorecard/{id}; with
// ?format=markdown, the matrix as a Markdown table.
func (a *App) handleScorecard(w http.ResponseWriter, r *http.Request) {
	v, err := a.scorecard(r.Context(), r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, r, a.logger, err)
		return
	}
	switch r.URL.Query().Get("format") {
	case "markdown":
		w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="scorecard-`+v.ID+`.md"`)
		fmt.Fprint(w, simulator.ScorecardMarkdown(v.Cells, v.Faults, v.Modes))
	case "json":
		w.Header().Set("Content-Disposition", `attachment; filename="scorecard-`+v.ID+`.json"`)
		httpx.WriteJSON(w, http.StatusOK, v)
	default:
		httpx.WriteJSON(w, http.StatusOK, v)
	}
}

// handleCancelScorecard serves POST /api/admin/scorecard/{id}/cancel.
func (a *App) handleCancelScorecard(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	owner, _, _ := strings.Cut(id, ".")
	if owner != a.o.Replica {
		if !a.peers.Has(owner) {
			httpx.WriteError(w, r, a.logger, &httpx.Error{Status: http.StatusNotFound, Title: "No such scorecard", Message: fmt.Sprintf("There is no scorecard %q.", httpx.Truncate(id, 40))})
			return
		}
		var out map[string]string
		if err := a.peers.Call(r.Context(), owner, http.MethodPost, "/internal/scorecard/"+url.PathEscape(id)+"/cancel", struct{}{}, &out); err != nil {
			httpx.WriteError(w, r, a.logger, peerError(err, func(detail string) string { return fmt.Sprintf("%s could not be asked: it %s.", owner, detail) }))
			return
		}
		httpx.WriteJSON(w, http.StatusAccepted, out)
		return
	}
	a.handleInternalCancelScorecard(w, r)
}

// handleInternalCancelScorecard serves POST
// /internal/scorecard/{id}/cancel: cancel a run here.
func (a *App) handleInternalCancelScorecard(w http.ResponseWriter, r *http.Request) {
	s := a.cards
	s.mu.Lock()
	v, ok := s.runs[r.PathValue("id")]
	if ok && v.cancel != nil {
		v.cancel()
	}
	s.mu.Unlock()
	if !ok {
		httpx.WriteError(w, r, a.logger, &httpx.Error{Status: http.StatusNotFound, Title: "No such scorecard", Message: "There is no scorecard " + httpx.Truncate(r.PathValue("id"), 40) + " here."})
		return
	}
	httpx.WriteJSON(w, http.StatusAccepted, map[string]string{"message": "Scorecard " + v.ID + " stops after the fault it is measuring."})
}

// handleInternalScorecardRunning serves GET /internal/scorecard: the run
// going on here, if any.
func (a *App) handleInternalScorecardRunning(w http.ResponseWriter, r *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"running": a.cards.running()})
}

// handleInternalScorecard serves GET /internal/scorecard/{id}.
func (a *App) handleInternalScorecard(w http.ResponseWriter, r *http.Request) {
	v, ok := a.cards.get(r.PathValue("id"))
	if !ok {
		httpx.WriteError(w, r, a.logger, &httpx.Error{Status: http.StatusNotFound, Title: "No such scorecard", Message: "There is no scorecard " + httpx.Truncate(r.PathValue("id"), 40) + " here."})
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

// handleScorecards serves GET /api/admin/scorecards: the runs of every
// replica, newest first, without their cells.
func (a *App) handleScorecards(w http.ResponseWriter, r *http.Request) {
	all := []scorecardView{}
	add := func(list []scorecardView) {
		for _, v := range list {
			v.Cells = nil
			all = append(all, v)
		}
	}
	add(a.cards.list())
	for _, name := range a.peers.Names() {
		if name == a.o.Replica {
			continue
		}
		var list []scorecardView
		if err := a.peers.Call(r.Context(), name, http.MethodGet, "/internal/scorecards", nil, &list); err == nil {
			add(list)
		}
	}
	sortScorecards(all)
	httpx.WriteJSON(w, http.StatusOK, all)
}

// handleInternalScorecards serves GET /internal/scorecards: the runs here.
func (a *App) handleInternalScorecards(w http.ResponseWriter, r *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, a.cards.list())
}

// list returns copies of the runs here, without cells.
func (s *scorecards) list() []scorecardView {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []scorecardView{}
	for _, id := range s.order {
		v := *s.runs[id]
		v.Cells = nil
		out = append(out, v)
	}
	return out
}

// sortScorecards puts the newest first.
func sortScorecards(vs []scorecardView) {
	sort.Slice(vs, func(i, j int) bool { return vs[i].Started.After(vs[j].Started) })
}
