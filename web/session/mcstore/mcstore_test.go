package mcstore

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/sessiondemo/shop/e2e/dockertest"
	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/session/sessiontest"
)

var testKeys = []session.Key{{ID: "k1", Secret: bytes.Repeat([]byte{9}, 32)}}

func TestMain(m *testing.M) {
	dockertest.Prepare()
	os.Exit(m.Run())
}

// startMemcached starts a real Memcached in a container (testcontainers'
// generic container: there is no fake), with args added to memcached's
// command line, and returns its host:port. MEMCACHED_IMAGE picks the image
// (default memcached:1.6). Without Docker the test is skipped, unless
// E2E_REQUIRED=1 (CI), where that is a failure.
func startMemcached(t testing.TB, args ...string) string {
	t.Helper()
	dockertest.Need(t)
	ctx := context.Background()
	image := dockertest.Image("MEMCACHED_IMAGE", "memcached:1.6")
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:        image,
			Cmd:          append([]string{"memcached"}, args...),
			ExposedPorts: []string{"11211/tcp"},
			WaitingFor:   wait.ForListeningPort("11211/tcp"),
		},
		Started: true,
	})
	testcontainers.CleanupContainer(t, ctr)
	if err != nil {
		t.Fatalf("start memcached (%s): %v\n(%s)", image, err, dockertest.NoRegistryHint)
	}
	ep, err := ctr.PortEndpoint(ctx, "11211/tcp", "")
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

func newStore(t testing.TB, addr string) *Store {
	t.Helper()
	s, err := New(memcache.New(addr), testKeys, session.Timeouts{Idle: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMemcached(t *testing.T) {
	addr := startMemcached(t)
	t.Run("contract", func(t *testing.T) {
		sessiontest.Run(t, sessiontest.Contract{
			New:       func(t *testing.T) session.Store { return newStore(t, addr) },
			Cookie:    CookieName,
			Stateful:  true,
			Malformed: "not-an-id",
			Unknown:   strings.Repeat("A", 43),
		})
	})

	t.Run("values are sealed", func(t *testing.T) {
		st := newStore(t, addr)
		s := session.New(session.EventCreated, time.Now())
		s.User = "visible-user-name"
		w := httptest.NewRecorder()
		if err := st.Save(w, httptest.NewRequest("POST", "/", nil), s); err != nil {
			t.Fatal(err)
		}
		item, err := memcache.New(addr).Get(KeyPrefix + s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(item.Value, []byte("visible-user-name")) {
			t.Error("the session is stored in the clear")
		}
		// A value copied under another ID does not open there.
		other := strings.Repeat("B", 43)
		memcache.New(addr).Set(&memcache.Item{Key: KeyPrefix + other, Value: item.Value})
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(&http.Cookie{Name: CookieName, Value: other})
		if got, err := st.Load(r); err != nil || got.Event != session.EventLost || got.User != "" {
			t.Errorf("a value copied under another ID: %+v, %v; want a lost session", got, err)
		}
	})

	t.Run("the idle timeout is the item's expiry", func(t *testing.T) {
		st, err := New(memcache.New(addr), testKeys, session.Timeouts{Idle: time.Second}, nil)
		if err != nil {
			t.Fatal(err)
		}
		s := session.New(session.EventCreated, time.Now())
		w := httptest.NewRecorder()
		if err := st.Save(w, httptest.NewRequest("POST", "/", nil), s); err != nil {
			t.Fatal(err)
		}
		// Memcached counts expiry in whole seconds: 2.5 s is past it.
		time.Sleep(2500 * time.Millisecond)
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(w.Result().Cookies()[0])
		if got, err := st.Load(r); err != nil || got.Event != session.EventLost {
			t.Errorf("after its idle timeout: %+v, %v; want lost", got, err)
		}
	})
}

// TestConcurrentSavesLoseNothing: n requests of one browser load the same
// state, each adds one item, then all save at once. Compare-and-swap makes
// the losers of each race reload and reapply: all n adds are kept
// (sessiontest.ConcurrentAdds).
func TestConcurrentSavesLoseNothing(t *testing.T) {
	st := newStore(t, startMemcached(t))
	const n = 20
	if got := sessiontest.ConcurrentAdds(t, st, n, st.Save); got != n+1 {
		t.Errorf("the cart holds %d, want %d: no add may be lost", got, n+1)
	}
}

// TestAStoppedServerIsAClear503: with its server unreachable, a session
// read is a session.UnavailableError that names the server, never a
// silently empty session.
func TestAStoppedServerIsAClear503(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	client := memcache.New(addr)
	client.Timeout = 200 * time.Millisecond
	st, err := New(client, testKeys, session.Timeouts{Idle: time.Hour}, func(string) string { return "memcached2" })
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: CookieName, Value: strings.Repeat("C", 43)})
	_, err = st.Load(r)
	var ue *session.UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, session.ErrUnavailable) || !strings.Contains(ue.Message, "memcached2") {
		t.Errorf("load with the server down: %v; want a 503 naming memcached2", err)
	}
}

// TestNewSessionsGoToTheLiveServer: with one of two servers unreachable,
// every new session is saved: an ID whose server fails is given up for
// another, and after a failure new IDs are picked to hash to the other
// server.
func TestNewSessionsGoToTheLiveServer(t *testing.T) {
	live := startMemcached(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	var list memcache.ServerList
	if err := list.SetServers(live, dead); err != nil {
		t.Fatal(err)
	}
	client := memcache.NewFromSelector(&list)
	client.Timeout = 200 * time.Millisecond
	name := func(key string) string {
		addr, err := list.PickServer(key)
		if err != nil {
			return ""
		}
		if addr.String() == dead {
			return "dead"
		}
		return "live"
	}
	st, err := New(client, testKeys, session.Timeouts{Idle: time.Hour}, name)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		s := session.New(session.EventCreated, time.Now())
		if err := st.Save(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil), s); err != nil {
			t.Fatalf("new session %d with one server down: %v", i+1, err)
		}
		if got := name(KeyPrefix + s.ID); got != "live" {
			t.Errorf("new session %d hashes to the %s server", i+1, got)
		}
	}
}
