package web

import (
	"log/slog"
	"net/http"

	"github.com/sessiondemo/shop/static"
	"github.com/sessiondemo/shop/web/internal/httpx"
	"github.com/sessiondemo/shop/web/session"
)

// routes lists every route of the shop. Method patterns keep GET from
// ever changing state; a path's other methods are answered with a 405
// derived from this list (httpx.NewMux). The admin page's routes are in
// package admin's routes.go.
func routes(svc sessions, log *slog.Logger) []httpx.Route {
	page, api, asset := httpx.KindPage, httpx.KindAPI, httpx.KindAsset
	return []httpx.Route{
		asset.Route("GET /healthz", handleHealthz()),
		asset.Route("GET /static/", withCache(http.StripPrefix("/static/", http.FileServerFS(static.FS)))),
		asset.Route("GET /favicon.ico", http.RedirectHandler("/static/img/logo.svg", http.StatusMovedPermanently)),

		// Pages and their forms.
		page.Route("GET /{$}", handleShopPage(svc, log)),
		page.Route("GET /cart", handleCartPage(svc, log)),
		page.Route("POST /cart/add", handleForm(svc, log, formAdd)),
		page.Route("POST /cart/update", handleForm(svc, log, formUpdate)),
		page.Route("POST /cart/remove", handleForm(svc, log, formRemove)),
		page.Route("POST /cart/clear", handleForm(svc, log, formClear)),
		page.Route("POST /login", handleForm(svc, log, formLogin)),
		page.Route("POST /logout", handleForm(svc, log, formLogout)),
		page.Route("POST /mode", handleModeForm(log)),
		page.Route("/", httpx.NotFound(log)),

		// The JSON API.
		api.Route("GET /api/ping", handleAPIPing()),
		api.Route("GET /api/products", handleAPIProducts()),
		api.Route("GET /api/cart", handleAPICart(svc, log)),
		api.Route("DELETE /api/cart", handleAPIChange(svc, log, apiClear)),
		api.Route("POST /api/cart/items", handleAPIChange(svc, log, apiAdd)),
		api.Route("PUT /api/cart/items/{product_id}", handleAPIChange(svc, log, apiSet)),
		api.Route("DELETE /api/cart/items/{product_id}", handleAPIChange(svc, log, apiRemove)),
		api.Route("POST /api/login", handleAPIChange(svc, log, apiLogin)),
		api.Route("POST /api/logout", handleAPIChange(svc, log, apiLogout)),
		api.Route("/api/", httpx.NotFound(log)),
		api.Route("/api", httpx.NotFound(log)), // else a redirect to /api/
	}
}

// sessions is what the pages, forms and API need of the service layer
// (service.go): read the caller's session, or apply a change to it.
type sessions interface {
	Read(w http.ResponseWriter, r *http.Request) (*session.Session, error)
	Apply(w http.ResponseWriter, r *http.Request, c change) (result, error)
}

// withCache lets browsers keep static files for an hour.
func withCache(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}
