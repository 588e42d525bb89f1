package mcstore

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

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

// BenchmarkMemcachedGrowth measures the bytes one session takes in
// Memcached (its `stats` bytes, which count each item's key, value and
// header) and the load cost with 1, 10,000 and 100,000 sessions stored.
// The server gets 256 MB so nothing is evicted.
func BenchmarkMemcachedGrowth(b *testing.B) {
	addr := startMemcached(b, "-m", "256")
	st := newStore(b, addr)
	client := memcache.New(addr)
	client.MaxIdleConns = 8
	empty := statsBytes(b, addr)
	stored := 0
	for _, n := range []int{1, 10_000, 100_000} {
		// Sealed values written straight to the server, 8 at a time: as
		// Save would write them, without a round trip per cookie.
		var (
			wg       sync.WaitGroup
			failures atomic.Int64
			firstErr atomic.Value
		)
		next := make(chan int)
		for range 8 {
			wg.Go(func() {
				for i := range next {
					s := sessiontest.ThreeLines()
					id := fmt.Sprintf("%043d", i)
					v, err := st.sealRecord(id, s)
					if err == nil {
						err = client.Set(&memcache.Item{Key: KeyPrefix + id, Value: v, Expiration: 3600})
					}
					if err != nil && failures.Add(1) == 1 {
						firstErr.Store(err)
					}
				}
			})
		}
		for ; stored < n; stored++ {
			next <- stored
		}
		close(next)
		wg.Wait()
		if failures.Load() > 0 {
			b.Fatalf("%d sessions not stored: %v", failures.Load(), firstErr.Load())
		}
		items := stored
		perSession := float64(statsBytes(b, addr)-empty) / float64(items)
		w := httptest.NewRecorder()
		s := sessiontest.ThreeLines()
		if err := st.Save(w, httptest.NewRequest("POST", "/", nil), s); err != nil {
			b.Fatal(err)
		}
		last := w.Result().Cookies()[0]
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			r := httptest.NewRequest("GET", "/", nil)
			r.AddCookie(last)
			for b.Loop() {
				if sess, err := st.Load(r); err != nil || sess.Event != session.EventFound {
					b.Fatal(sess, err)
				}
			}
			b.ReportMetric(perSession, "memcached-bytes/session")
		})
	}
}

// statsBytes is the server's `stats` bytes: what its items take.
func statsBytes(b *testing.B, addr string) int64 {
	b.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "stats\r\n"); err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		line := sc.Text()
		if line == "END" {
			break
		}
		if v, ok := strings.CutPrefix(line, "STAT bytes "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatalf("no bytes in memcached's stats: %v", sc.Err())
	return 0
}
