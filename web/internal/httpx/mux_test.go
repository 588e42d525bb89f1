package httpx

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sessiondemo/shop/web/session"
)

func ok(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) })
}

func testMux(t *testing.T) *Mux {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := NewMux(log,
		[]Route{
			KindPage.Route("GET /{$}", ok("home")),
			KindPage.Route("/", NotFound(log)),
			KindAPI.Route("GET /api/cart", ok("cart")),
			KindAPI.Route("DELETE /api/cart", ok("cleared")),
			KindAsset.Route("GET /static/", ok("file")),
		},
		[]Route{
			KindAdmin.Route("POST /admin/login", ok("in")),
			KindInternal.Route("POST /internal/crash", ok("crashed")),
			KindInternal.Route("/internal/", NotFound(log)),
		})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestMuxDerives405sFromTheRoutes: a path's other methods answer 405 with
// the declared methods in Allow, under the route's kind; internal routes
// answer 404 instead, so a stranger learns nothing.
func TestMuxDerives405sFromTheRoutes(t *testing.T) {
	m := testMux(t)
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
		kind         Kind
	}{
		{"GET", "/", 200, "", KindPage},
		{"POST", "/", 405, "GET", KindPage},
		{"GET", "/nope", 404, "", KindPage},
		{"GET", "/api/cart", 200, "", KindAPI},
		{"HEAD", "/api/cart", 200, "", KindAPI},
		{"PUT", "/api/cart", 405, "GET, DELETE", KindAPI},
		{"GET", "/static/x.css", 200, "", KindAsset},
		{"POST", "/static/x.css", 405, "GET", KindAsset},
		{"GET", "/admin/login", 405, "POST", KindAdmin},
		{"POST", "/internal/crash", 200, "", KindInternal},
		{"GET", "/internal/crash", 404, "", KindInternal},
		{"GET", "/internal/other", 404, "", KindInternal},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		w := httptest.NewRecorder()
		m.ServeHTTP(w, r)
		if w.Code != tc.status || w.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s = %d, Allow %q; want %d, Allow %q", tc.method, tc.path, w.Code, w.Header().Get("Allow"), tc.status, tc.allow)
		}
		if got := m.KindOf(r); got != tc.kind {
			t.Errorf("KindOf(%s %s) = %v, want %v", tc.method, tc.path, got, tc.kind)
		}
		if tc.status == 405 && !strings.Contains(w.Body.String(), "accepts "+tc.allow) {
			t.Errorf("%s %s: body %q does not say what the path accepts", tc.method, tc.path, w.Body.String())
		}
	}
}

func TestMuxRefusesConflictingRoutes(t *testing.T) {
	_, err := NewMux(slog.Default(),
		[]Route{KindAPI.Route("GET /api/cart", ok("a"))},
		[]Route{KindAPI.Route("GET /api/cart", ok("b"))})
	if err == nil {
		t.Error("two routes with one pattern were accepted")
	}
	if _, err := NewMux(slog.Default(), []Route{{Pattern: "GET /x", Handler: ok("x")}}); err == nil {
		t.Error("a route without a kind was accepted")
	}
}

// TestKindsDecideLoggingRecordingAndTrail: what the middleware does with
// a request follows from its route's kind alone.
func TestKindsDecideLoggingRecordingAndTrail(t *testing.T) {
	m := testMux(t)
	var logged strings.Builder
	var recorded []string
	log := slog.New(slog.NewTextHandler(&logged, nil))
	h := WithInfo(InfoOptions{Replica: "app1", DefaultMode: session.Sticky, KindOf: m.KindOf, Logger: log})(
		WithLogging(log, func(ri Info, r *http.Request, o Outcome) {
			recorded = append(recorded, fmt.Sprintf("%s %s %d %s", r.Method, r.URL.Path, o.Status, ri.Kind))
		})(m))
	for _, tc := range []struct {
		method, path              string
		logged, recorded, onTrail bool
	}{
		{"GET", "/", true, true, true},
		{"GET", "/nope", true, true, true},
		{"GET", "/api/cart", true, true, false},
		{"POST", "/admin/login", true, false, false},
		{"GET", "/static/x.css", false, false, false},
		{"POST", "/internal/crash", false, false, false},
	} {
		logged.Reset()
		recorded = nil
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
		gotLogged := strings.Contains(logged.String(), "path="+tc.path)
		gotTrail := strings.Contains(w.Header().Get("Set-Cookie"), TrailCookie+"=app1")
		if gotLogged != tc.logged || (len(recorded) == 1) != tc.recorded || gotTrail != tc.onTrail {
			t.Errorf("%s %s: logged %v, recorded %q, trail %v; want %v, %v, %v", tc.method, tc.path, gotLogged, recorded, gotTrail, tc.logged, tc.recorded, tc.onTrail)
		}
		if w.Header().Get("X-Replica") != "app1" || w.Header().Get("X-Request-Id") == "" {
			t.Errorf("%s %s: headers %v lack X-Replica or X-Request-Id", tc.method, tc.path, w.Header())
		}
	}
}
