package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sessiondemo/shop/templates"
	"github.com/sessiondemo/shop/web/reqlog"
	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/simulator"
)

// handlePage serves GET /admin.
func (a *admin) handlePage(w http.ResponseWriter, r *http.Request) {
	a.renderPage(w, r, http.StatusOK, "")
}

func (a *admin) renderPage(w http.ResponseWriter, r *http.Request, status int, loginError string) {
	ri := info(r)
	if store, ok := a.stores[ri.Mode]; ok {
		ri.Describe = store.Describe()
	}
	_, st := a.cluster.collect(r.Context(), nil, 0)
	m := templates.AdminModel{
		Page:        pageModel(r, "Admin", nil),
		SignedIn:    a.signedIn(r),
		ControlsOff: a.Password == "",
		LoginError:  loginError,
		Topology:    topologyModel(st),
		Load:        loadChartModel(st),
		Modes:       []string{"sticky", "redis", "jwt"},
		Affinities:  []string{affinityCookie, affinityURL, affinityIP},
	}
	m.Page.Flash = takeFlash(w, r)
	for _, in := range a.inspections(r) {
		m.Sessions = append(m.Sessions, storeViewModel(in))
	}
	render(w, r, a.logger, status, templates.AdminPage(m))
}

func topologyModel(st clusterStatus) templates.Topology {
	t := templates.Topology{ServedBy: st.Served, Redis: templates.Node{Name: "redis", State: st.Redis.State, Detail: st.Redis.Detail}}
	for _, lb := range st.LoadBalancers {
		t.LoadBalancers = append(t.LoadBalancers, templates.Node{Name: lb.Name, State: lb.State, Detail: lb.Detail})
	}
	for _, rs := range st.Replicas {
		t.Replicas = append(t.Replicas, templates.Node{Name: rs.Name, State: rs.State, Detail: rs.Detail, Sessions: rs.Sessions, HungFor: rs.HungFor})
	}
	return t
}

// loadChartModel draws the last minute's requests per replica and mode.
func loadChartModel(st clusterStatus) templates.LoadChart {
	c := templates.LoadChart{Title: "Requests per replica in the last minute, by session mode", Segments: reqlog.Modes, Max: 1}
	var totals []int
	for _, rs := range st.Replicas {
		b := templates.LoadBar{Name: rs.Name, Down: rs.State != stateUp}
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
		c.Note = "1.00 is perfectly even; 3.00 means one replica of three took everything."
	} else {
		c.Note = "No requests in the last minute."
	}
	return c
}

func storeViewModel(in session.Inspection) templates.StoreView {
	v := templates.StoreView{Mode: string(in.Mode), Held: in.Held, Where: in.Where, Raw: in.Raw, RawBytes: in.RawBytes, Limit: in.Limit, Decoded: in.Decoded}
	switch in.Mode {
	case session.Sticky:
		v.Title = "Sticky: replica memory"
		if in.Replica != "" {
			v.Title = "Sticky: memory of " + in.Replica
		}
	case session.Redis:
		v.Title = "Redis"
	case session.JWT:
		v.Title = "JWT: the browser's cookie"
	}
	return v
}

// handleLoadFragment serves GET /admin/load, the load chart alone, which
// the page fetches again every few seconds.
func (a *admin) handleLoadFragment(w http.ResponseWriter, r *http.Request) {
	_, st := a.cluster.collect(r.Context(), nil, 0)
	render(w, r, a.logger, http.StatusOK, templates.LoadChartSVG(loadChartModel(st)))
}

// failedLoginDelay slows down password guessing.
const failedLoginDelay = 500 * time.Millisecond

// handleLogin serves POST /admin/login: the admin credentials for a
// signed cookie.
func (a *admin) handleLogin(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	if a.Password == "" {
		a.renderPage(w, r, http.StatusForbidden, "The controls are off: ADMIN_PASSWORD is not set.")
		return
	}
	if !a.credentialsOK(strings.TrimSpace(r.PostFormValue("user")), r.PostFormValue("password")) {
		a.logger.Warn("admin sign-in refused", "request_id", info(r).RequestID)
		time.Sleep(failedLoginDelay)
		a.renderPage(w, r, http.StatusForbidden, "That user name and password are not the admin credentials.")
		return
	}
	exp := strconv.FormatInt(time.Now().Add(adminCookieLife).Unix(), 10)
	c := session.Cookie(r, adminCookie, exp+"."+a.cookieMAC(exp), int(adminCookieLife/time.Second))
	c.SameSite = http.SameSiteStrictMode
	http.SetCookie(w, c)
	a.logger.Info("admin signed in", "request_id", info(r).RequestID)
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

// handleLogout serves POST /admin/logout.
func (a *admin) handleLogout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, session.Expire(r, adminCookie))
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}
