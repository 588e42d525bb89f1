// Package webtest builds whole replicas (web.NewHandler) for tests that
// need several of them without Docker: the admin page's tests and the
// simulator's.
package webtest

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/sessiondemo/shop/web"
	"github.com/sessiondemo/shop/web/admin"
	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/session/jwtstore"
	"github.com/sessiondemo/shop/web/session/memstore"
)

// jwtKeys are the signing keys every replica of a test shares, as the
// replicas of the stack do.
var jwtKeys = []session.Key{{ID: "k1", Secret: bytes.Repeat([]byte{1}, 32)}}

// Replica returns the handler of the replica name with the session stores
// that need nothing outside the process (sticky in memory, jwt), a logger
// that discards, and the admin options adm. Redis mode answers 400.
func Replica(t testing.TB, name string, adm admin.Options) http.Handler {
	t.Helper()
	jwtSt, err := jwtstore.New(jwtstore.Options{Keys: jwtKeys})
	if err != nil {
		t.Fatal(err)
	}
	h, err := web.NewHandler(web.Options{
		Replica: name,
		Stores: web.Stores{
			session.Sticky: memstore.New(name, session.Timeouts{Idle: time.Hour}),
			session.JWT:    jwtSt,
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Admin:  adm,
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}
