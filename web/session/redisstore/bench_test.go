package redisstore

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/sessions"
	"github.com/redis/go-redis/v9"

	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/session/sessiontest"
)

// BenchmarkRedis measures one session's load and save against a real
// Redis (one round trip each over loopback), and the sealing alone.
func BenchmarkRedis(b *testing.B) {
	client := startRedis(b)
	st := newStore(b, client)
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
	b.Run("save", func(b *testing.B) {
		r := httptest.NewRequest("POST", "/", nil)
		for b.Loop() {
			if err := st.Save(headerSink{}, r, s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("seal+open", func(b *testing.B) {
		gs := sessions.NewSession(st.rs, CookieName)
		gs.ID = s.ID
		gs.Values[valuesKey] = record{Lines: s.Cart.Lines, Started: s.Started.UnixMilli()}
		for b.Loop() {
			v, err := st.seal.Serialize(gs)
			if err != nil {
				b.Fatal(err)
			}
			if err := st.seal.Deserialize(v, gs); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRedisGrowth measures the bytes one session takes in Redis
// (MEMORY USAGE) and the load cost with 1, 10,000 and 100,000 sessions
// stored.
func BenchmarkRedisGrowth(b *testing.B) {
	client := startRedis(b)
	ctx := context.Background()
	st := newStore(b, client)
	empty := usedMemory(b, client)
	stored := 0
	for _, n := range []int{1, 10_000, 100_000} {
		var last *http.Cookie
		for stored < n {
			pipe := client.Pipeline()
			batch := min(n-stored, 1000)
			for i := 0; i < batch; i++ {
				s := sessiontest.ThreeLines()
				s.ID = fmt.Sprintf("%0103d", stored+i)
				gs := sessions.NewSession(st.rs, CookieName)
				gs.ID = s.ID
				gs.Values[valuesKey] = record{Lines: s.Cart.Lines, Started: s.Started.UnixMilli()}
				v, err := st.seal.Serialize(gs)
				if err != nil {
					b.Fatal(err)
				}
				pipe.Set(ctx, KeyPrefix+s.ID, v, time.Hour)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
			stored += batch
		}
		s := sessiontest.ThreeLines()
		w := httptest.NewRecorder()
		if err := st.Save(w, httptest.NewRequest("POST", "/", nil), s); err != nil {
			b.Fatal(err)
		}
		last = w.Result().Cookies()[0]
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			r := httptest.NewRequest("GET", "/", nil)
			r.AddCookie(last)
			for b.Loop() {
				if _, err := st.Load(r); err != nil {
					b.Fatal(err)
				}
			}
			usage, err := client.MemoryUsage(ctx, KeyPrefix+s.ID).Result()
			if err != nil {
				b.Fatal(err)
			}
			keys, _ := client.DBSize(ctx).Result()
			b.ReportMetric(float64(usage), "redis-bytes/session")
			// What Redis as a whole grew by, per session: the keys, their
			// expiry, and the hash tables' share.
			b.ReportMetric(float64(usedMemory(b, client)-empty)/float64(keys), "used-bytes/session")
			b.ReportMetric(float64(keys), "keys")
		})
	}
}

// usedMemory is Redis's used_memory (INFO memory), in bytes.
func usedMemory(b *testing.B, client *redis.Client) int64 {
	b.Helper()
	info, err := client.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatalf("no used_memory in INFO memory: %q", info)
	return 0
}

// headerSink is a ResponseWriter that keeps nothing.
type headerSink struct{}

func (headerSink) Header() http.Header         { return http.Header{} }
func (headerSink) Write(b []byte) (int, error) { return len(b), nil }
func (headerSink) WriteHeader(int)             {}
