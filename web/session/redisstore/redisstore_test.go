package redisstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"

	"github.com/sessiondemo/shop/e2e/dockertest"
	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/session/sessiontest"
)

var testKeys = []session.Key{{ID: "k1", Secret: bytes.Repeat([]byte{7}, 32)}}

func TestMain(m *testing.M) {
	dockertest.Prepare()
	os.Exit(m.Run())
}

// startRedis starts a real Redis in a container for the test. Without
// Docker the test is skipped, unless E2E_REQUIRED=1 (CI), where that is a
// failure. REDIS_IMAGE picks the image (default redis:8); args are added
// to redis-server's command line.
func startRedis(t testing.TB, args ...string) *redis.Client {
	t.Helper()
	dockertest.Need(t)
	ctx := context.Background()
	image := dockertest.Image("REDIS_IMAGE", "redis:8")
	ctr, err := tcredis.Run(ctx, image, testcontainers.WithCmd(append([]string{"redis-server", "--protected-mode", "no", "--save", "", "--appendonly", "no"}, args...)...))
	testcontainers.CleanupContainer(t, ctr)
	if err != nil {
		t.Fatalf("start redis (%s): %v\n(%s)", image, err, dockertest.NoRegistryHint)
	}
	uri, err := ctr.ConnectionString(ctx)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := redis.ParseURL(uri)
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opts)
	t.Cleanup(func() { client.Close() })
	return client
}

func newStore(t testing.TB, client redis.UniversalClient) *Store {
	t.Helper()
	s, err := New(client, testKeys, session.Timeouts{Idle: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRedis(t *testing.T) {
	client := startRedis(t)
	ctx := context.Background()

	t.Run("contract", func(t *testing.T) {
		sessiontest.Run(t, sessiontest.Contract{
			New:       func(t *testing.T) session.Store { return newStore(t, client) },
			Cookie:    CookieName,
			Stateful:  true,
			Malformed: strings.Repeat("a", 103),
			Unknown:   strings.Repeat("A", 103),
		})
	})

	t.Run("values are encrypted at rest", func(t *testing.T) {
		st := newStore(t, client)
		s := session.New(session.EventCreated, time.Now())
		s.User = "carol-the-customer"
		_ = s.Cart.Add("p10", 3)
		sessiontest.Save(t, st, s)
		raw, err := client.Get(ctx, KeyPrefix+s.ID).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		for _, plain := range []string{"carol", "p10", `"q"`} {
			if bytes.Contains(raw, []byte(plain)) {
				t.Errorf("stored value contains %q in the clear", plain)
			}
		}
		ttl := client.TTL(ctx, KeyPrefix+s.ID).Val()
		if ttl <= 0 || ttl > time.Hour {
			t.Errorf("TTL = %v, want (0, 1h]", ttl)
		}
		// Copied under another session's key, the value does not open.
		other := strings.Repeat("B", 103)
		client.Set(ctx, KeyPrefix+other, raw, time.Minute)
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(&http.Cookie{Name: CookieName, Value: other})
		got, err := st.Load(r)
		if err != nil || got.Event != session.EventLost || got.User != "" {
			t.Errorf("value under a foreign ID: %+v, %v; want a new lost session", got, err)
		}
		// A store whose only key is another cannot read it either.
		st2, _ := New(client, []session.Key{{ID: "k2", Secret: bytes.Repeat([]byte{9}, 32)}}, session.Timeouts{Idle: time.Hour})
		r = httptest.NewRequest("GET", "/", nil)
		r.AddCookie(&http.Cookie{Name: CookieName, Value: s.ID})
		if got, err := st2.Load(r); err != nil || got.Event != session.EventLost {
			t.Errorf("value under an unknown key: %+v, %v; want lost", got, err)
		}
		// During rotation (new key first, old still listed) it opens.
		st3, _ := New(client, []session.Key{{ID: "k2", Secret: bytes.Repeat([]byte{9}, 32)}, testKeys[0]}, session.Timeouts{Idle: time.Hour})
		if got, err := st3.Load(r); err != nil || got.User != "carol-the-customer" {
			t.Errorf("value during key rotation: %+v, %v; want found", got, err)
		}
	})

	t.Run("forged IDs create no keys", func(t *testing.T) {
		st := newStore(t, client)
		before := client.DBSize(ctx).Val()
		for i := 0; i < 100; i++ {
			forged := strings.Repeat(string(rune('A'+i%26)), 100) + "234"
			r := httptest.NewRequest("POST", "/", nil)
			r.AddCookie(&http.Cookie{Name: CookieName, Value: forged})
			s, err := st.Load(r)
			if err != nil {
				t.Fatal(err)
			}
			_ = s.Cart.Add("p1", 1)
			if err := st.Save(httptest.NewRecorder(), r, s); err != nil {
				t.Fatal(err)
			}
			if s.ID == forged || client.Exists(ctx, KeyPrefix+forged).Val() != 0 {
				t.Fatalf("forged ID %d adopted", i)
			}
		}
		if added := client.DBSize(ctx).Val() - before; added != 100 {
			t.Errorf("%d keys added for 100 forged sessions, want 100 new server IDs", added)
		}
	})

	t.Run("a read refreshes the TTL", func(t *testing.T) {
		st := newStore(t, client)
		s := session.New(session.EventCreated, time.Now())
		ck := sessiontest.Save(t, st, s)
		if ck.MaxAge != 0 {
			t.Errorf("cookie Max-Age %d: the browser must not expire a session whose TTL reads refresh", ck.MaxAge)
		}
		client.Expire(ctx, KeyPrefix+s.ID, 10*time.Second)
		sessiontest.Load(t, st, ck)
		if ttl := client.TTL(ctx, KeyPrefix+s.ID).Val(); ttl < 59*time.Minute {
			t.Errorf("TTL after a read %v, want it refreshed to the idle timeout (1h)", ttl)
		}
	})

	t.Run("absolute timeout", func(t *testing.T) {
		st, err := New(client, testKeys, session.Timeouts{Idle: time.Hour, Absolute: 2 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		s := session.New(session.EventCreated, time.Now().Add(-2*time.Hour+20*time.Second))
		ck := sessiontest.Save(t, st, s)
		if ttl := client.TTL(ctx, KeyPrefix+s.ID).Val(); ttl > 21*time.Second || ttl <= 0 {
			t.Errorf("TTL %v near the absolute end, want at most the 20 s left", ttl)
		}
		st.now = func() time.Time { return time.Now().Add(25 * time.Second) }
		if got := sessiontest.Load(t, st, ck); got.Event != session.EventExpired {
			t.Errorf("past the absolute end: %+v; want expired", got)
		}
		if n := client.Exists(ctx, KeyPrefix+s.ID).Val(); n != 0 {
			t.Errorf("the ended session's key is still there")
		}
	})

	t.Run("denylist", func(t *testing.T) {
		d := NewDenylist(client, Replication{})
		if revoked, err := d.Revoked(ctx, "jti-1"); err != nil || revoked {
			t.Fatalf("fresh jti: %v, %v", revoked, err)
		}
		if err := d.Revoke(ctx, "jti-1", time.Minute); err != nil {
			t.Fatal(err)
		}
		if revoked, err := d.Revoked(ctx, "jti-1"); err != nil || !revoked {
			t.Errorf("revoked jti: %v, %v", revoked, err)
		}
		if ttl := client.TTL(ctx, DenylistPrefix+"jti-1").Val(); ttl <= 0 || ttl > time.Minute {
			t.Errorf("denylist TTL %v, want (0, 1m]", ttl)
		}
	})

	t.Run("a renewal over a changed state conflicts and deletes nothing", func(t *testing.T) {
		st := newStore(t, client)
		s := session.New(session.EventCreated, time.Now())
		_ = s.Cart.Add("p1", 1)
		ck := sessiontest.Save(t, st, s)
		load := func() *session.Session { return sessiontest.Load(t, st, ck) }
		signIn, add := load(), load()
		_ = add.Cart.Add("p2", 1)
		if err := st.Save(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil), add); err != nil {
			t.Fatal(err)
		}
		signIn.Renew()
		signIn.User = "alice"
		if err := st.Save(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil), signIn); !errors.Is(err, session.ErrConflict) {
			t.Fatalf("stale renewal: err %v, want ErrConflict", err)
		}
		if got := load(); got.Cart.Qty("p2") != 1 || got.User != "" {
			t.Errorf("after the refused renewal the session is %+v; want the add kept, nobody signed in", got)
		}
	})

	t.Run("a write waits for replicas, and says so", func(t *testing.T) {
		// This Redis has no replica: WAIT 1 gets 0 acknowledgements.
		st := newStore(t, client)
		st.RequireReplicas(Replication{Replicas: 1, Timeout: 50 * time.Millisecond})
		s := session.New(session.EventCreated, time.Now())
		_ = s.Cart.Add("p1", 1)
		w := httptest.NewRecorder()
		err := st.Save(w, httptest.NewRequest("POST", "/", nil), s)
		var nr *NotReplicatedError
		if !errors.As(err, &nr) || !errors.Is(err, session.ErrUnavailable) || nr.Got != 0 || nr.Want != 1 {
			t.Fatalf("Save without a replica = %v, want a NotReplicatedError (0 of 1) that is ErrUnavailable", err)
		}
		var ue *session.UnavailableError
		if !errors.As(err, &ue) || !strings.Contains(ue.Message, "no Redis replica confirmed it") {
			t.Errorf("Save without a replica says %v, want a sentence saying no replica confirmed the change", err)
		}
		if got := w.Header().Get(ReplicationHeader); got != "wait-1" {
			t.Errorf("%s = %q, want wait-1", ReplicationHeader, got)
		}
		// The primary holds it, and the browser got its cookie: a retry
		// finds the session instead of starting another.
		var ck *http.Cookie
		for _, c := range w.Result().Cookies() {
			if c.Name == CookieName {
				ck = c
			}
		}
		if ck == nil {
			t.Fatal("no cookie for a write the primary holds")
		}
		if got := sessiontest.Load(t, st, ck); got.Event != session.EventFound || got.Cart.Count() != 1 {
			t.Errorf("after an unconfirmed write: %s with %d items, want the session found with 1", got.Event, got.Cart.Count())
		}

		// A request that asks for asynchronous replication does not wait.
		r := httptest.NewRequest("POST", "/", nil)
		r.Header.Set(ReplicationHeader, "async")
		w = httptest.NewRecorder()
		if err := st.Save(w, r, session.New(session.EventCreated, time.Now())); err != nil {
			t.Fatalf("async Save: %v", err)
		}
		if got := w.Header().Get(ReplicationHeader); got != "async" {
			t.Errorf("async Save: %s = %q, want async", ReplicationHeader, got)
		}
		// And so does the revocation list's write.
		if err := NewDenylist(client, Replication{Replicas: 1, Timeout: 50 * time.Millisecond}).Revoke(ctx, "jti-wait", time.Minute); !errors.Is(err, session.ErrUnavailable) {
			t.Errorf("Revoke without a replica = %v, want ErrUnavailable", err)
		}
	})

	t.Run("a write waits for every replica up", func(t *testing.T) {
		st := newStore(t, client)
		st.RequireReplicas(Replication{Replicas: 1, Timeout: 50 * time.Millisecond, Live: func() int { return 2 }})
		w := httptest.NewRecorder()
		var nr *NotReplicatedError
		if err := st.Save(w, httptest.NewRequest("POST", "/", nil), session.New(session.EventCreated, time.Now())); !errors.As(err, &nr) || nr.Want != 2 {
			t.Fatalf("Save with 2 replicas up = %v, want a NotReplicatedError for 2", err)
		}
		if got := w.Header().Get(ReplicationHeader); got != "wait-2" {
			t.Errorf("%s = %q, want wait-2", ReplicationHeader, got)
		}
	})

	t.Run("a replay is acknowledged only once replicated", func(t *testing.T) {
		// Issue 31: a change the primary took but no replica confirmed
		// (503) is found by the client's retry; reporting it then as
		// applied acknowledged what a failover could still lose.
		st := newStore(t, client)
		s := session.New(session.EventCreated, time.Now())
		_ = s.Cart.Add("p1", 1)
		if err := st.Save(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil), s); err != nil {
			t.Fatal(err)
		}
		st.RequireReplicas(Replication{Replicas: 1, Timeout: 50 * time.Millisecond})
		if err := st.Confirm(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil), s); !errors.Is(err, session.ErrUnavailable) || !strings.Contains(err.Error(), "no Redis replica confirmed it") {
			t.Errorf("Confirm without a replica = %v, want the 503 Save gives", err)
		}
		r := httptest.NewRequest("POST", "/", nil)
		r.Header.Set(ReplicationHeader, "async")
		w := httptest.NewRecorder()
		if err := st.Confirm(w, r, s); err != nil || w.Header().Get(ReplicationHeader) != "async" {
			t.Errorf("Confirm, asynchronous = %v, %s %q; want nil, async", err, ReplicationHeader, w.Header().Get(ReplicationHeader))
		}
		client.Del(ctx, KeyPrefix+s.ID)
		if err := st.Confirm(httptest.NewRecorder(), r, s); !errors.Is(err, session.ErrConflict) {
			t.Errorf("Confirm of a session that ended = %v, want ErrConflict", err)
		}
	})

	t.Run("renewal deletes the old key", func(t *testing.T) {
		st := newStore(t, client)
		s := session.New(session.EventCreated, time.Now())
		_ = s.Cart.Add("p1", 1)
		if err := st.Save(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil), s); err != nil {
			t.Fatal(err)
		}
		old := s.ID
		s.Renew()
		if err := st.Save(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil), s); err != nil {
			t.Fatal(err)
		}
		if n := client.Exists(ctx, KeyPrefix+old).Val(); n != 0 {
			t.Errorf("EXISTS old key = %d, want 0", n)
		}
	})
}

// TestRedisUnreachable needs no container: a client aimed at a closed port
// behaves like Redis being down.
func TestRedisUnreachable(t *testing.T) {
	redis.SetLogger(quietLogger{})
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1, DialerRetries: 1})
	defer client.Close()
	st := newStore(t, client)
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: CookieName, Value: strings.Repeat("A", 103)})
	if s, err := st.Load(r); !errors.Is(err, session.ErrUnavailable) || s != nil {
		t.Errorf("Load = %v, %v; want nil, ErrUnavailable", s, err)
	}
	s := session.New(session.EventCreated, time.Now())
	w := httptest.NewRecorder()
	if err := st.Save(w, httptest.NewRequest("POST", "/", nil), s); !errors.Is(err, session.ErrUnavailable) {
		t.Errorf("Save err = %v, want ErrUnavailable", err)
	}
	if len(w.Result().Cookies()) != 0 {
		t.Error("Save set a cookie although nothing was stored")
	}
	// No cookie needs no Redis: a visitor without a session still gets a page.
	if s, err := st.Load(httptest.NewRequest("GET", "/", nil)); err != nil || s.Event != session.EventCreated {
		t.Errorf("Load without cookie = %+v, %v", s, err)
	}
}

func FuzzSealOpen(f *testing.F) {
	seal, err := newSealer(testKeys)
	if err != nil {
		f.Fatal(err)
	}
	const plain = `{"c":[{"p":"p1","q":1}]}`
	good, _ := seal.seal("ID", []byte(plain))
	f.Add("ID", good)
	f.Add("ID", []byte{1, 2, 'k', '1'})
	f.Add("", []byte{})
	// Only a value sealed under the same ID with our key opens: nothing
	// else may, whatever bytes or ID the fuzzer makes up. (Seeds are sealed
	// with a random nonce, so compare what opens, not the ciphertext.)
	f.Fuzz(func(t *testing.T, id string, b []byte) {
		got, err := seal.open(id, b)
		if err == nil && (id != "ID" || string(got) != plain) {
			t.Fatalf("opened a value we did not seal: id %q -> %q", id, got)
		}
	})
}

// quietLogger drops go-redis's own dial-failure log lines, expected here.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// TestNaiveVersusSafeSaves: n requests of one browser load the same state,
// each adds one item, then all save at once. The naive write (one
// unconditional SET, redisstore's own) keeps only one of the n adds; the
// safe write makes the losers of each race reload and reapply, so all n
// are kept (sessiontest.ConcurrentAdds).
func TestNaiveVersusSafeSaves(t *testing.T) {
	client := startRedis(t)
	const n = 20
	for _, naive := range []bool{false, true} {
		name := map[bool]string{false: "safe", true: "naive"}[naive]
		t.Run(name, func(t *testing.T) {
			st := newStore(t, client)
			save := st.Save
			if naive {
				save = st.SaveNaive
			}
			got := sessiontest.ConcurrentAdds(t, st, n, save)
			t.Logf("%s: %d concurrent adds over 1, the cart holds %d", name, n, got)
			if naive && got != 2 {
				t.Errorf("naive: the cart holds %d, want 2: every save wrote the state all %d loaded plus its own add", got, n)
			}
			if !naive && got != n+1 {
				t.Errorf("safe: the cart holds %d, want %d: no add may be lost", got, n+1)
			}
		})
	}
}

// TestNaiveSaveNeverRevivesAnEndedSession: a naive write that loaded the
// session before it ended (sign-out in another tab, expiry) must not write
// it back: the old cookie would work again.
func TestNaiveSaveNeverRevivesAnEndedSession(t *testing.T) {
	client := startRedis(t)
	st := newStore(t, client)
	ck := sessiontest.Save(t, st, session.New(session.EventCreated, time.Now()))
	loaded := sessiontest.Load(t, st, ck)
	if err := client.Del(t.Context(), KeyPrefix+loaded.ID).Err(); err != nil {
		t.Fatal(err)
	}
	_ = loaded.Cart.Add("p1", 1)
	r := httptest.NewRequest("POST", "/", nil)
	r.AddCookie(ck)
	if err := st.SaveNaive(httptest.NewRecorder(), r, loaded); !errors.Is(err, session.ErrConflict) {
		t.Errorf("naive save over a deleted session = %v, want ErrConflict", err)
	}
	if n, err := client.Exists(t.Context(), KeyPrefix+loaded.ID).Result(); err != nil || n != 0 {
		t.Errorf("after the naive save the ended session's key exists: %d (%v)", n, err)
	}
}

// TestAFullStoreRefusesWritesClearly: Redis at its memory limit with the
// noeviction policy (compose/redis.conf) refuses a session write, and the
// store says the store is full (a 503 with its own sentence), instead of
// Redis evicting someone's session to make room. Sessions already there
// are still read.
func TestAFullStoreRefusesWritesClearly(t *testing.T) {
	client := startRedis(t, "--maxmemory", "4mb", "--maxmemory-policy", "noeviction")
	ctx := context.Background()
	st := newStore(t, client)
	w := httptest.NewRecorder()
	kept := session.New(session.EventCreated, time.Now())
	kept.Cart.Add("p1", 1)
	if err := st.Save(w, httptest.NewRequest("POST", "/", nil), kept); err != nil {
		t.Fatal(err)
	}
	cookie := w.Result().Cookies()[0]
	// Fill Redis until even a small write is refused. Redis checks the
	// limit before a write, counting the write's own arguments (its query
	// buffer), which it frees afterwards: a 64 KB value refused leaves up
	// to 64 KB free. So fill with ever smaller values, each until refused,
	// from one connection held open (a connection that closes frees its
	// buffers too).
	filler := redis.NewClient(&redis.Options{Addr: client.Options().Addr, PoolSize: 1})
	defer filler.Close()
	n := 0
	for _, size := range []int{64 << 10, 4 << 10, 256, 32} {
		value := strings.Repeat("x", size)
		full := false
		for i := 0; i < 2000 && !full; i++ {
			n++
			err := filler.Set(ctx, fmt.Sprintf("filler:%d", n), value, 0).Err()
			full = err != nil && strings.Contains(err.Error(), "OOM")
			if err != nil && !full {
				t.Fatal(err)
			}
		}
		if !full {
			t.Fatalf("Redis took 2,000 values of %d bytes more into a 4 MB limit without refusing one", size)
		}
	}
	s := session.New(session.EventCreated, time.Now())
	s.Cart.Add("p2", 1)
	w = httptest.NewRecorder()
	err := st.Save(w, httptest.NewRequest("POST", "/", nil), s)
	var ue *session.UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, session.ErrUnavailable) || ue.Title != "Session store full" {
		t.Fatalf("a save into a full Redis: %v; want a session.UnavailableError that says the store is full", err)
	}
	if len(w.Result().Cookies()) != 0 {
		t.Error("a refused save set a cookie")
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(cookie)
	if got, err := st.Load(r); err != nil || got.Cart.Count() != 1 {
		t.Errorf("reading a session already stored, with Redis full: %+v, %v", got, err)
	}
}
