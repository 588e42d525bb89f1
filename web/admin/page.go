package admin

import (
	"fmt"
	"net/http"

	"github.com/sessiondemo/shop/templates"
	"github.com/sessiondemo/shop/web/internal/httpx"
	"github.com/sessiondemo/shop/web/peer"
	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/simulator"
)

// handlePage serves GET /admin.
func (a *App) handlePage(w http.ResponseWriter, r *http.Request) {
	a.renderPage(w, r, http.StatusOK, "")
}

func (a *App) renderPage(w http.ResponseWriter, r *http.Request, status int, loginError string) {
	_, st := a.cluster.collect(r.Context(), nil, 0)
	m := templates.AdminModel{
		Page:        httpx.Page(r, "Admin"),
		SignedIn:    a.signedIn(r),
		ControlsOff: a.o.Password == "",
		LoginError:  loginError,
		Topology:    topologyModel(st),
		Load:        loadChartModel(st),
		Scale:       a.scaleModel(st),
	}
	for _, mode := range session.Modes {
		m.Modes = append(m.Modes, string(mode))
	}
	for _, af := range session.Affinities {
		m.Affinities = append(m.Affinities, string(af))
	}
	m.Page.Flash = httpx.TakeFlash(w, r)
	for _, in := range a.inspections(r) {
		m.Sessions = append(m.Sessions, templates.StoreView{
			Mode: string(in.Mode), Replica: in.Replica, Held: in.Held, Where: in.Where,
			Raw: in.Raw, RawBytes: in.RawBytes, Limit: in.Limit, Decoded: in.Decoded,
		})
	}
	httpx.Render(w, r, a.logger, status, templates.AdminPage(m))
}

func topologyModel(st Status) templates.Topology {
	t := templates.Topology{ServedBy: st.Served, Redis: templates.Node{Name: "redis", State: st.Redis.State, Detail: st.Redis.Detail}, RedisPrimary: st.RedisPrimary}
	for _, n := range st.RedisNodes {
		t.RedisNodes = append(t.RedisNodes, templates.Node{Name: n.Name, State: n.State, Detail: n.Detail, Role: n.Role})
	}
	for _, s := range st.Sentinels {
		t.Sentinels = append(t.Sentinels, templates.Node{Name: s.Name, State: s.State, Detail: s.Detail})
	}
	for _, m := range st.Memcached {
		t.Memcached = append(t.Memcached, templates.Node{Name: m.Name, State: m.State, Detail: m.Detail()})
	}
	for _, lb := range st.LoadBalancers {
		t.LoadBalancers = append(t.LoadBalancers, templates.Node{Name: lb.Name, State: lb.State, Detail: lb.Detail})
	}
	for _, rs := range st.Replicas {
		t.Replicas = append(t.Replicas, templates.Node{Name: rs.Name, State: rs.State, Detail: rs.Detail, Sessions: rs.Sessions, HungFor: rs.HungFor, Change: rs.Change})
	}
	return t
}

// loadChartModel draws the last minute's requests per replica and mode.
func loadChartModel(st Status) templates.LoadChart {
	c := templates.LoadChart{Title: "Requests per replica in the last minute, by session mode", Max: 1}
	for _, m := range session.Modes {
		c.Segments = append(c.Segments, string(m))
	}
	var totals []int
	for _, rs := range st.Replicas {
		b := templates.LoadBar{Name: rs.Name, Down: rs.State != StateUp, Left: rs.Change == ChangeLeft}
		for _, v := range rs.Load {
			b.Values = append(b.Values, v)
			b.Total += v
		}
		c.Max = max(c.Max, b.Total)
		if !b.Down {
			totals = append(totals, b.Total)
		}
		c.Bars = append(c.Bars, b)
	}
	if ratio := simulator.MaxMean(totals); ratio > 0 {
		c.MaxMean = fmt.Sprintf("%.2f", ratio)
		c.Note = fmt.Sprintf("1.00 is perfectly even; %d.00 means one replica of %d took everything.", len(totals), len(totals))
	} else {
		c.Note = "No requests in the last minute."
	}
	return c
}

// scaleModel is what the page says about scaling: the replicas listed now
// and their compose service (the DNS name the directory resolves).
func (a *App) scaleModel(st Status) templates.Scale {
	sc := templates.Scale{Service: "app"}
	if d, ok := a.o.Peers.(*peer.DNS); ok {
		sc.Service = d.Service()
	}
	for _, rs := range st.Replicas {
		if rs.Change != ChangeLeft {
			sc.Replicas++
		}
	}
	return sc
}

// handleTopologyFragment serves GET /admin/topology, the picture and the
// replica cards alone, which the page fetches again when replicas join or
// leave.
func (a *App) handleTopologyFragment(w http.ResponseWriter, r *http.Request) {
	_, st := a.cluster.collect(r.Context(), nil, 0)
	httpx.Render(w, r, a.logger, http.StatusOK, templates.TopologyView(topologyModel(st), a.signedIn(r)))
}

// handleLoadFragment serves GET /admin/load, the load chart alone, which
// the page fetches again every few seconds.
func (a *App) handleLoadFragment(w http.ResponseWriter, r *http.Request) {
	_, st := a.cluster.collect(r.Context(), nil, 0)
	httpx.Render(w, r, a.logger, http.StatusOK, templates.LoadChartSVG(loadChartModel(st)))
}
