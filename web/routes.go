package web

import (
	"log/slog"
	"net/http"

	"github.com/sessiondemo/shop/static"
)

// addRoutes lists every route of a replica. Method patterns keep GET from
// ever changing state; each path with a method has a method-less fallback that
// answers other methods with a 405 (JSON under /api/, a page elsewhere).
func addRoutes(mux *http.ServeMux, stores Stores, log *slog.Logger) {
	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /static/", withCache(http.StripPrefix("/static/", http.FileServerFS(static.FS))))
	mux.Handle("GET /favicon.ico", http.RedirectHandler("/static/img/logo.svg", http.StatusMovedPermanently))

	// Pages and their forms.
	mux.Handle("GET /{$}", handleShopPage(stores, log))
	mux.Handle("GET /cart", handleCartPage(stores, log))
	mux.Handle("POST /cart/add", handleForm(stores, log, formAdd))
	mux.Handle("POST /cart/update", handleForm(stores, log, formUpdate))
	mux.Handle("POST /cart/remove", handleForm(stores, log, formRemove))
	mux.Handle("POST /cart/clear", handleForm(stores, log, formClear))
	mux.Handle("POST /login", handleForm(stores, log, formLogin))
	mux.Handle("POST /logout", handleForm(stores, log, formLogout))
	mux.Handle("POST /mode", handleModeForm(log))

	// The JSON API.
	mux.Handle("GET /api/ping", handleAPIPing())
	mux.Handle("GET /api/products", handleAPIProducts())
	mux.Handle("GET /api/cart", handleAPICart(stores, log))
	mux.Handle("DELETE /api/cart", handleAPIChange(stores, log, apiClear))
	mux.Handle("POST /api/cart/items", handleAPIChange(stores, log, apiAdd))
	mux.Handle("PUT /api/cart/items/{product_id}", handleAPIChange(stores, log, apiSet))
	mux.Handle("DELETE /api/cart/items/{product_id}", handleAPIChange(stores, log, apiRemove))
	mux.Handle("POST /api/login", handleAPIChange(stores, log, apiLogin))
	mux.Handle("POST /api/logout", handleAPIChange(stores, log, apiLogout))
	for path, allow := range map[string]string{
		"/api/ping":                    "GET",
		"/api/products":                "GET",
		"/api/cart":                    "GET, DELETE",
		"/api/cart/items":              "POST",
		"/api/cart/items/{product_id}": "PUT, DELETE",
		"/api/login":                   "POST",
		"/api/logout":                  "POST",
		"/cart/add":                    "POST",
		"/cart/update":                 "POST",
		"/cart/remove":                 "POST",
		"/cart/clear":                  "POST",
		"/login":                       "POST",
		"/logout":                      "POST",
		"/mode":                        "POST",
	} {
		mux.Handle(path, handleMethodNotAllowed(log, allow))
	}
	mux.Handle("/", handleNotFound(log))
}

// handleMethodNotAllowed answers a method a path does not serve.
func handleMethodNotAllowed(log *slog.Logger, allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, r, log, &httpError{http.StatusMethodNotAllowed, "Method not allowed", "This path accepts " + allow + ", not " + r.Method + "."})
	})
}

// withCache lets browsers keep static files for an hour.
func withCache(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}
