package mcstore

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/session/sessiontest"
)

// BenchmarkMemcached measures one session's load (gat: one round trip)
// and a change (load, then save: gets, compare, cas; three round trips)
// against a real Memcached, one server, over the container's published
// port.
func BenchmarkMemcached(b *testing.B) {
	st := newStore(b, startMemcached(b))
	s := sessiontest.ThreeLines()
	w := httptest.NewRecorder()
	if err := st.Save(w, httptest.NewRequest("POST", "/", nil), s); err != nil {
		b.Fatal(err)
	}
	ck := w.Result().Cookies()[0]
	b.Run("load", func(b *testing.B) {
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(ck)
		for b.Loop() {
			if sess, err := st.Load(r); err != nil || sess.Event != session.EventFound {
				b.Fatal(sess, err)
			}
		}
	})
	b.Run("load+save", func(b *testing.B) {
		r := httptest.NewRequest("POST", "/", nil)
		r.AddCookie(ck)
		for b.Loop() {
			sess, err := st.Load(r)
			if err != nil {
				b.Fatal(err)
			}
			if err := st.Save(discard{}, r, sess); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// discard is a ResponseWriter that keeps nothing.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
