// Package web is the shop: its pages, forms and JSON API, the same in
// every session mode, and the composition of a whole replica (NewHandler),
// which mounts the admin page (package admin) beside it. Which store
// keeps a request's session is chosen per request from the mode cookie or
// query parameter.
//
// Where things are:
//   - routes.go: every route of the shop; admin/routes.go: the admin page's;
//   - service.go: reading and changing a session safely;
//   - pages.go, forms.go, api.go: what calls it;
//   - session/: the modes, one store per sub-package; cart/: the catalog
//     and the cart rules; internal/httpx: what both applications share
//     about HTTP; peer/: calls between replicas.
package web

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/sessiondemo/shop/web/admin"
	"github.com/sessiondemo/shop/web/internal/httpx"
	"github.com/sessiondemo/shop/web/session"
)

// Options configure the handler.
type Options struct {
	// Replica is this replica's name, sent as X-Replica. Required.
	Replica string
	// DefaultMode is the mode of a request that names none. Default sticky.
	DefaultMode session.Mode
	// Stores keeps sessions, one store per mode. Required for every mode
	// requests may ask for; a mode without a store answers 400.
	Stores Stores
	// Logger receives one line per request and every internal error.
	// Default slog.Default().
	Logger *slog.Logger
	// Admin configures the admin page and its controls. Replica, Logger,
	// Inspectors and Memory are filled in from the fields above.
	Admin admin.Options
	// AllowedHosts, when not nil, are the only Host names (besides IP
	// addresses) the replica answers; any other gets a 421. nil answers
	// every Host (tests).
	AllowedHosts []string
	// UserEnds records when an admin ended every session of a user, for
	// redis, jwt and memcached mode; nil turns that check off. It is also the
	// admin's Options.UserEnds.
	UserEnds session.UserEnds
}

// NewHandler returns the whole replica as one http.Handler: the shop and
// the admin page, behind the middleware every request passes, outermost
// first:
//
//  0. httpx.WithSecurityHeaders: CSP, nosniff, no framing, on every answer;
//  1. httpx.WithRecover: a panic is a 500, not a dropped connection;
//  2. httpx.WithInfo: the request's Info, built once (mode, affinity, kind, ...);
//  3. httpx.WithLogging: a log line, and the admin's request log;
//  4. admin WithHang: a hung replica holds every request (inside the
//     logging, so a request nginx gave up on is logged as 499);
//  5. httpx.WithAllowedHosts: a Host not on the allowlist is refused
//     (DNS rebinding), when Options.AllowedHosts is set;
//  6. http.CrossOriginProtection: cross-site state changes are refused;
//  7. the routes of both routes.go files.
func NewHandler(o Options) (http.Handler, error) {
	if !session.ValidReplicaName(o.Replica) {
		return nil, fmt.Errorf("replica name %q: want 1-32 lower-case letters, digits, '-' or '_'", o.Replica)
	}
	if o.DefaultMode == "" {
		o.DefaultMode = session.Sticky
	}
	if _, ok := session.ParseMode(string(o.DefaultMode)); !ok {
		return nil, fmt.Errorf("default session mode %q: want %s", o.DefaultMode, session.Choices(session.Modes))
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	log := o.Logger

	ao := o.Admin
	ao.Replica, ao.Logger, ao.UserEnds = o.Replica, log, o.UserEnds
	ao.Inspectors, ao.Memory = nil, nil
	descriptions := map[session.Mode]string{}
	for _, m := range session.Modes {
		store, ok := o.Stores[m]
		if !ok {
			continue
		}
		descriptions[m] = store.Describe()
		if in, ok := store.(session.Inspector); ok {
			ao.Inspectors = append(ao.Inspectors, in)
		}
	}
	if mem, ok := o.Stores[session.Sticky].(admin.Memory); ok {
		ao.Memory = mem
	}
	adm, err := admin.New(ao)
	if err != nil {
		return nil, err
	}
	mux, err := httpx.NewMux(log, routes(&service{stores: o.Stores, userEnds: o.UserEnds}, log), adm.Routes())
	if err != nil {
		return nil, err
	}

	// Cross-origin state changes are refused (Sec-Fetch-Site, then Origin
	// against Host; nginx passes the Host with its port).
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, r, log, &httpx.Error{Status: http.StatusForbidden, Title: "Cross-site request refused",
			Message: "This request came from another site, so it was refused: only pages of this shop may change your cart or session."})
	}))

	var h http.Handler = mux
	h = cop.Handler(h)
	if o.AllowedHosts != nil {
		h = httpx.WithAllowedHosts(httpx.NewHostAllowlist(o.AllowedHosts...), log)(h)
	}
	h = adm.WithHang(h)
	h = httpx.WithLogging(log, adm.Record)(h)
	h = httpx.WithInfo(httpx.InfoOptions{Replica: o.Replica, DefaultMode: o.DefaultMode, StoreDescriptions: descriptions, KindOf: mux.KindOf, Logger: log})(h)
	h = httpx.WithRecover(log)(h)
	h = httpx.WithSecurityHeaders(h)
	return h, nil
}
