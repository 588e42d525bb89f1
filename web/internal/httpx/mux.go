package httpx

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
)

// Kind says what a route is for. It decides, in one place, what the
// middleware does around a request: whether it is logged, whether it
// enters the admin page's request log, whether it joins the browser's
// trail of replicas, and whether other methods are answered with a 405.
type Kind int

// The kinds of route.
const (
	// KindPage is a page or a form a person uses: logged, in the request
	// log, on the trail; a wrong method is a 405.
	KindPage Kind = iota + 1
	// KindAPI is the shop's JSON API: logged and in the request log; a
	// wrong method is a 405.
	KindAPI
	// KindAdmin is the admin page's own traffic (its API, fragments and
	// sign-in): logged, but not in the request log it shows; a wrong
	// method is a 405.
	KindAdmin
	// KindAsset is a static file or a health check: neither logged nor in
	// the request log; a wrong method is a 405.
	KindAsset
	// KindInternal is a call between replicas: neither logged nor in the
	// request log, and a wrong method is a 404, so nothing tells a
	// stranger the route exists.
	KindInternal
)

func (k Kind) String() string {
	switch k {
	case KindPage:
		return "page"
	case KindAPI:
		return "api"
	case KindAdmin:
		return "admin"
	case KindAsset:
		return "asset"
	case KindInternal:
		return "internal"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// logged reports whether a request of this kind gets a log line.
func (k Kind) logged() bool { return k == KindPage || k == KindAPI || k == KindAdmin }

// recorded reports whether a request of this kind enters the request log.
func (k Kind) recorded() bool { return k == KindPage || k == KindAPI }

// onTrail reports whether a request of this kind joins the trail.
func (k Kind) onTrail() bool { return k == KindPage }

// Route is one line of a routes.go.
type Route struct {
	// Pattern is a net/http ServeMux pattern: "GET /cart",
	// "PUT /api/cart/items/{product_id}", or a path alone ("/api/") for a
	// catch-all that answers every method.
	Pattern string
	// Kind says what the route is for.
	Kind Kind
	// Handler serves the route.
	Handler http.Handler
}

// Route returns a route of this kind: the shorthand of every routes.go,
// httpx.KindAPI.Route("GET /api/cart", h).
func (k Kind) Route(pattern string, h http.Handler) Route {
	return Route{Pattern: pattern, Kind: k, Handler: h}
}

// Mux serves routes; it is an http.ServeMux plus what the routes declared.
type Mux struct {
	mux   *http.ServeMux
	kinds map[string]Kind // pattern -> kind, the derived 405 patterns included
}

// NewMux serves the routes of one or more route tables. Every path a route
// names with a method also gets a method-less route that answers the other
// methods with a 405 and an Allow header listing the declared ones (JSON
// under /api/, a page elsewhere); except for KindInternal, whose other
// methods fall through to a catch-all. Conflicting routes are an error.
func NewMux(log *slog.Logger, tables ...[]Route) (m *Mux, err error) {
	m = &Mux{mux: http.NewServeMux(), kinds: map[string]Kind{}}
	defer func() {
		// ServeMux panics on conflicting patterns: a mistake in a routes.go.
		if v := recover(); v != nil {
			m, err = nil, fmt.Errorf("routes: %v", v)
		}
	}()
	type path struct {
		kind    Kind
		methods []string
	}
	var paths []string
	byPath := map[string]*path{}
	for _, routes := range tables {
		for _, rt := range routes {
			if rt.Kind == 0 || rt.Handler == nil {
				return nil, fmt.Errorf("route %q: a Kind and a Handler are required", rt.Pattern)
			}
			m.mux.Handle(rt.Pattern, rt.Handler)
			m.kinds[rt.Pattern] = rt.Kind
			method, p, ok := strings.Cut(rt.Pattern, " ")
			if !ok || rt.Kind == KindInternal {
				continue
			}
			if byPath[p] == nil {
				byPath[p] = &path{kind: rt.Kind}
				paths = append(paths, p)
			}
			byPath[p].methods = append(byPath[p].methods, method)
		}
	}
	for _, p := range paths {
		if _, declared := m.kinds[p]; declared {
			continue
		}
		m.mux.Handle(p, methodNotAllowed(log, strings.Join(byPath[p].methods, ", ")))
		m.kinds[p] = byPath[p].kind
	}
	return m, nil
}

// ServeHTTP serves r with the route that matches it.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.mux.ServeHTTP(w, r) }

// KindOf returns the Kind of the route that serves r. A request the mux
// redirects (a path to clean, a missing trailing slash) has the kind of
// the route it is redirected to; one no route claims counts as a page.
func (m *Mux) KindOf(r *http.Request) Kind {
	_, pattern := m.mux.Handler(r)
	if k, ok := m.kinds[pattern]; ok {
		return k
	}
	return KindPage
}

// methodNotAllowed answers a method a path does not serve.
func methodNotAllowed(log *slog.Logger, allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		WriteError(w, r, log, &Error{http.StatusMethodNotAllowed, "Method not allowed", "This path accepts " + allow + ", not " + r.Method + "."})
	})
}

// NotFound answers every path no route matches.
func NotFound(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, log, ErrNotFound(r))
	})
}

// ErrNotFound is the error of a path that holds nothing.
func ErrNotFound(r *http.Request) *Error {
	return &Error{http.StatusNotFound, "Page not found", "There is nothing at " + Truncate(r.URL.Path, 60) + "."}
}
