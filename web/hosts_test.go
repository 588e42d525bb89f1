package web

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiondemo/shop/web/admin"
	"github.com/sessiondemo/shop/web/peer"
	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/session/memstore"
)

// TestForeignHostsAreRefused: a DNS-rebinding-shaped request (a foreign
// Host and Origin that agree, Sec-Fetch-Site same-origin, valid admin
// credentials) passes the cross-origin check by construction; the Host
// allowlist refuses it with a 421 before any handler runs. Allowed names,
// IP addresses and ALLOWED_HOSTS-style extras pass.
func TestForeignHostsAreRefused(t *testing.T) {
	// A crash runs at once, inside the request that asked for it, so it
	// is counted before the answer: no waiting to see that none came.
	var crashed atomic.Int32
	var crashDelay atomic.Int64
	h, err := NewHandler(Options{
		Replica:      "app1",
		Stores:       Stores{session.Sticky: memstore.New("app1", session.Timeouts{Idle: time.Hour})},
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		AllowedHosts: []string{"localhost", "lb", "Shop.Example.TEST."},
		Admin: admin.Options{User: "admin", Password: "pw", Peers: peer.Static{},
			Crash: func() { crashed.Add(1) },
			CrashAfter: func(d time.Duration, crash func()) {
				crashDelay.Store(int64(d))
				crash()
			}},
	})
	if err != nil {
		t.Fatal(err)
	}
	send := func(method, host, path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(`{}`))
		r.Host = host
		r.Header.Set("Origin", "http://"+host)
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		r.Header.Set("Content-Type", "application/json")
		r.SetBasicAuth("admin", "pw")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for _, host := range []string{"rebind.evil.example:8080", "rebind.evil.example", "localhost.evil.example", "evil-localhost", ""} {
		w := send("POST", host, "/api/admin/replicas/app1/crash")
		if w.Code != http.StatusMisdirectedRequest || !strings.Contains(w.Body.String(), "host") {
			t.Errorf("crash with Host %q = %d %s, want 421 naming the host", host, w.Code, w.Body.String())
		}
		if w := send("GET", host, "/api/admin/requests"); w.Code != http.StatusMisdirectedRequest {
			t.Errorf("the request log with Host %q = %d, want 421", host, w.Code)
		}
	}
	if n := crashed.Load(); n != 0 {
		t.Fatalf("the replica crashed %d times for a foreign Host", n)
	}
	for _, host := range []string{"localhost:8080", "LOCALHOST", "127.0.0.1:8080", "[::1]:8080", "172.18.0.5:8080", "lb", "shop.example.test:8443"} {
		if w := send("GET", host, "/api/products"); w.Code != http.StatusOK {
			t.Errorf("GET /api/products with Host %q = %d, want 200", host, w.Code)
		}
	}
	// The same control with an allowed Host, from curl (HTTP Basic from a
	// browser, Sec-Fetch-Site, is refused in any case).
	r := httptest.NewRequest("POST", "/api/admin/replicas/app1/crash", nil)
	r.Host = "localhost:8080"
	r.SetBasicAuth("admin", "pw")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusAccepted {
		t.Errorf("crash with Host localhost:8080 = %d %s, want 202", w.Code, w.Body.String())
	}
	if n, d := crashed.Load(), time.Duration(crashDelay.Load()); n != 1 || d != 100*time.Millisecond {
		t.Errorf("crash with Host localhost:8080: %d crashes, asked for %v after the answer; want 1, 100ms after", n, d)
	}
}
