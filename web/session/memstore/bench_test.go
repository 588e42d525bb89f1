package memstore

import (
	"fmt"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/session/sessiontest"
)

// BenchmarkMemory measures a sticky session's load and save, and the heap
// bytes one session holds, with 1, 10,000 and 100,000 sessions stored.
func BenchmarkMemory(b *testing.B) {
	for _, n := range []int{1, 10_000, 100_000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			st := New("app1", session.Timeouts{Idle: time.Hour})
			var last *session.Session
			w := httptest.NewRecorder()
			r := httptest.NewRequest("POST", "/", nil)
			for i := 0; i < n; i++ {
				last = sessiontest.ThreeLines()
				if err := st.Save(w, r, last); err != nil {
					b.Fatal(err)
				}
				w.Header().Del("Set-Cookie")
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			perSession := float64(after.HeapAlloc-before.HeapAlloc) / float64(n)

			read := httptest.NewRequest("GET", "/", nil)
			read.Header.Set("Cookie", CookieName+"="+last.ID)
			for b.Loop() {
				if s, err := st.Load(read); err != nil || s.Event != session.EventFound {
					b.Fatal(s, err)
				}
			}
			b.ReportMetric(perSession, "heap-bytes/session")
			runtime.KeepAlive(st)
		})
	}
	b.Run("save", func(b *testing.B) {
		st := New("app1", session.Timeouts{Idle: time.Hour})
		s := sessiontest.ThreeLines()
		r := httptest.NewRequest("POST", "/", nil)
		w := httptest.NewRecorder()
		for b.Loop() {
			if err := st.Save(w, r, s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
