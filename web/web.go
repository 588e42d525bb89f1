// Package web is the shop's web application: routes, handlers, middleware
// and rendering. It serves the same pages and API in every session mode;
// which store keeps a request's session is chosen per request from the
// mode cookie or query parameter.
package web

import (
	"fmt"
	"log/slog"
	"net/http"

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
	// Admin configures the admin page and its controls.
	Admin Admin
}

// NewHandler returns the whole application as one http.Handler.
func NewHandler(o Options) (http.Handler, error) {
	if !replicaNamePattern.MatchString(o.Replica) {
		return nil, fmt.Errorf("replica name %q: want 1-32 lower-case letters, digits, '-' or '_'", o.Replica)
	}
	if o.DefaultMode == "" {
		o.DefaultMode = session.Sticky
	}
	if _, ok := session.ParseMode(string(o.DefaultMode)); !ok {
		return nil, fmt.Errorf("default session mode %q: want sticky, redis or jwt", o.DefaultMode)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	log := o.Logger
	mux := http.NewServeMux()
	adm := newAdmin(o.Admin, o.Replica, o.Stores, log)
	adm.addRoutes(mux)
	addRoutes(mux, o.Stores, log)

	// Cross-origin state changes are refused (Sec-Fetch-Site, then Origin
	// against Host; nginx passes the Host with its port).
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, log, &httpError{http.StatusForbidden, "Cross-site request refused",
			"This request came from another site, so it was refused: only pages of this shop may change your cart or session."})
	}))

	var h http.Handler = mux
	h = cop.Handler(h)
	h = withTrail(h)
	// Inside the logging: a request the hang held until nginx gave up is
	// logged (as 499), so the admin page shows both of nginx's attempts.
	h = adm.withHang(h)
	h = withLogging(log, adm.record)(h)
	h = withRequestInfo(o.Replica, o.DefaultMode, log)(h)
	h = withRecover(log)(h)
	return h, nil
}
