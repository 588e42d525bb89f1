package admin

import (
	"net/http"

	"github.com/sessiondemo/shop/web/internal/httpx"
)

// Routes lists every route of the admin page: the page and its fragments,
// its JSON API, its controls (behind the admin credentials) and the
// internal endpoints the replicas call on each other (behind the shared
// token; see package peer). A wrong method is a 405 (derived by
// httpx.NewMux), except on the internal endpoints, which answer 404.
// page is a page like the shop's (in the request log, on the trail); own
// is the admin page's own traffic (logged, not in the request log).
func (a *App) Routes() []httpx.Route {
	page, own, internal := httpx.KindPage, httpx.KindAdmin, httpx.KindInternal
	h := func(f http.HandlerFunc) http.Handler { return f } // a method as a Handler
	return []httpx.Route{
		// The page (a page like the shop's: it is in the request log), and
		// the fragments it fetches again.
		page.Route("GET /admin", h(a.handlePage)),
		own.Route("POST /admin/login", h(a.handleLogin)),
		own.Route("POST /admin/logout", h(a.handleLogout)),
		own.Route("GET /admin/load", h(a.handleLoadFragment)),
		own.Route("GET /admin/topology", h(a.handleTopologyFragment)),
		own.Route("GET /admin/simulations/{id}", h(a.handleSimulationFragment)),
		own.Route("/admin/", httpx.NotFound(a.logger)),

		// What the page shows, as JSON; open to anyone who reaches it.
		own.Route("GET /api/admin/requests", h(a.handleRequests)),
		own.Route("GET /api/admin/status", h(a.handleStatus)),
		own.Route("GET /api/admin/events", h(a.handleEvents)),
		own.Route("GET /api/admin/session", h(a.handleSession)),
		own.Route("GET /api/admin/simulations/{id}", h(a.handleSimulationJSON)),
		own.Route("GET /api/admin/scorecards", h(a.handleScorecards)),
		own.Route("GET /api/admin/scorecard/{id}", h(a.handleScorecard)),

		// The controls: they change the system.
		own.Route("POST /api/admin/replicas/{name}/crash", a.requireAdmin(h(a.handleCrash))),
		own.Route("POST /api/admin/replicas/{name}/hang", a.requireAdmin(h(a.handleHang))),
		own.Route("POST /api/admin/replicas/{name}/stop", a.requireAdmin(h(a.handleStop))),
		own.Route("POST /api/admin/scorecard", a.requireAdmin(h(a.handleStartScorecard))),
		own.Route("POST /api/admin/scorecard/{id}/cancel", a.requireAdmin(h(a.handleCancelScorecard))),
		own.Route("POST /api/admin/redis/restart", a.requireAdmin(h(a.handleRedisRestart))),
		own.Route("POST /api/admin/redis/failover", a.requireAdmin(h(a.handleFailoverExperiment))),
		own.Route("POST /api/admin/redis/{node}/{action}", a.requireAdmin(h(a.handleRedisNode))),
		own.Route("POST /api/admin/simulations", a.requireAdmin(h(a.handleStartSimulation))),
		own.Route("POST /api/admin/memcached/fill", a.requireAdmin(h(a.handleMemcachedFill))),
		own.Route("POST /api/admin/concurrent-adds", a.requireAdmin(h(a.handleConcurrentAdds))),
		own.Route("POST /api/admin/users/{user}/end-sessions", a.requireAdmin(h(a.handleEndUser))),
		own.Route("/api/admin/", httpx.NotFound(a.logger)),
		own.Route("/api/admin", httpx.NotFound(a.logger)), // else a redirect to /api/admin/

		// Between replicas.
		internal.Route("GET /internal/requests", a.requireInternal(h(a.handleInternalRequests))),
		internal.Route("GET /internal/simulations/{id}", a.requireInternal(h(a.handleInternalSimulation))),
		internal.Route("POST /internal/session", a.requireInternal(h(a.handleInternalSession))),
		internal.Route("GET /internal/admin-signouts", a.requireInternal(h(a.handleInternalSignouts))),
		internal.Route("POST /internal/admin-signouts", a.requireInternal(a.requireKeys(h(a.handleInternalSignout)))),
		internal.Route("POST /internal/end-user", a.requireInternal(a.requireKeys(h(a.handleInternalEndUser)))),
		internal.Route("POST /internal/crash", a.requireInternal(a.requireKeys(h(a.handleInternalCrash)))),
		internal.Route("POST /internal/hang", a.requireInternal(a.requireKeys(h(a.handleInternalHang)))),
		internal.Route("POST /internal/stop", a.requireInternal(a.requireKeys(h(a.handleInternalStop)))),
		internal.Route("GET /internal/scorecard", a.requireInternal(h(a.handleInternalScorecardRunning))),
		internal.Route("GET /internal/scorecards", a.requireInternal(h(a.handleInternalScorecards))),
		internal.Route("GET /internal/scorecard/{id}", a.requireInternal(h(a.handleInternalScorecard))),
		internal.Route("POST /internal/scorecard/{id}/cancel", a.requireInternal(a.requireKeys(h(a.handleInternalCancelScorecard)))),
		// Anything else under /internal/, a wrong method included.
		internal.Route("/internal/", httpx.NotFound(a.logger)),
	}
}
