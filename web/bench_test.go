package web

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/session/memstore"
)

// discardWriter is an http.ResponseWriter that keeps only the header: the
// benchmark measures the handler, not a response recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkPing is what the replica's handler chain costs for one
// GET /api/ping as nginx sends it (its headers, the mode and lb_route
// cookies), in process, without the network: every middleware, the
// request log and the JSON log line (to io.Discard), the answer's JSON.
// The e2e benchmark (BenchmarkStack) measures the same request through
// the kernel and nginx; the difference is what the network costs.
//
//	go test ./web -run '^$' -bench Ping -benchtime 200000x
func BenchmarkPing(b *testing.B) {
	h, err := NewHandler(Options{
		Replica: "app1",
		Stores:  Stores{session.Sticky: memstore.New("app1", session.Timeouts{Idle: time.Hour})},
		Logger:  slog.New(slog.NewJSONHandler(io.Discard, nil)),
		// As server/config.go sets it: the Host check runs too.
		AllowedHosts: []string{"localhost"},
	})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "http://172.18.0.13/api/ping", nil)
	req.Header.Set("X-Forwarded-For", "172.18.0.1")
	req.Header.Set("X-Real-IP", "172.18.0.1")
	req.Header.Set("X-Forwarded-Proto", "http")
	req.Header.Set("X-Request-Id", "0123456789abcdef0123456789abcdef")
	req.Header.Set("X-Load-Balancer", "lb")
	req.Header.Set("Cookie", "mode=sticky; lb_route=29bb88638917ccb86d1c40a2837e70ad")
	// The path to measure is the answer, not a refusal.
	first := httptest.NewRecorder()
	h.ServeHTTP(first, req)
	if first.Code != http.StatusOK || !strings.Contains(first.Body.String(), `"replica":"app1"`) {
		b.Fatalf("GET /api/ping: %d %s", first.Code, first.Body)
	}
	b.ReportAllocs()
	for b.Loop() {
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, req)
	}
}
