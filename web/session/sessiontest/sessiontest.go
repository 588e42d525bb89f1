// Package sessiontest is the contract every session.Store passes. Each
// store's tests call Run with a way to make a fresh store.
package sessiontest

import (
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiondemo/shop/web/session"
)

// Contract describes the store under test.
type Contract struct {
	// New returns a fresh, empty store.
	New func(t *testing.T) session.Store
	// Cookie is the name of the cookie the store sets.
	Cookie string
	// Stateful is true when the store holds sessions on the server, so an
	// ID it forgets (on renewal) can no longer be used. A JWT store is not.
	Stateful bool
	// Malformed is a cookie value the store must reject as invalid.
	Malformed string
	// Unknown is a well-formed cookie value the store never issued.
	Unknown string
}

// Run runs the contract against c.
func Run(t *testing.T, c Contract) {
	t.Run("no cookie starts a new empty session", func(t *testing.T) {
		st := c.New(t)
		s, err := st.Load(httptest.NewRequest("GET", "/", nil))
		if err != nil {
			t.Fatal(err)
		}
		if s.Event != session.EventCreated || s.ID != "" || s.Cart.Count() != 0 || s.User != "" {
			t.Fatalf("got %+v, want a new empty session", s)
		}
	})

	t.Run("saved session loads back", func(t *testing.T) {
		st := c.New(t)
		s := Load(t, st, nil)
		s.User = "alice"
		mustAdd(t, s, "p1", 2)
		mustAdd(t, s, "p3", 1)
		s.Remember("0123abcd", "ff00", time.Now())
		ck := Save(t, st, s)
		if s.ID == "" {
			t.Fatal("Save left the ID empty")
		}
		got := Load(t, st, ck)
		if got.Event != session.EventFound {
			t.Fatalf("Event = %s, want found", got.Event)
		}
		if got.ID != s.ID || got.Hash() != s.Hash() || got.User != "alice" {
			t.Errorf("loaded %+v, want ID %s user alice", got, s.ID)
		}
		if got.Cart.Qty("p1") != 2 || got.Cart.Qty("p3") != 1 || len(got.Cart.Lines) != 2 {
			t.Errorf("cart = %v", got.Cart.Lines)
		}
		if seen, same := got.Recall("0123abcd", "ff00"); !seen || !same {
			t.Errorf("applied requests not kept: %v", got.Applied)
		}
		if got.Started.Unix() != s.Started.Unix() {
			t.Errorf("Started = %v, want %v", got.Started, s.Started)
		}
	})

	t.Run("changes without Save are not kept", func(t *testing.T) {
		st := c.New(t)
		s := Load(t, st, nil)
		mustAdd(t, s, "p1", 1)
		ck := Save(t, st, s)
		s2 := Load(t, st, ck)
		mustAdd(t, s2, "p2", 5)
		if got := Load(t, st, ck); got.Cart.Qty("p2") != 0 {
			t.Errorf("unsaved change visible: %v", got.Cart.Lines)
		}
	})

	t.Run("cookie flags", func(t *testing.T) {
		st := c.New(t)
		for _, https := range []bool{false, true} {
			r := httptest.NewRequest("POST", "/", nil)
			if https {
				r.Header.Set("X-Forwarded-Proto", "https")
			}
			s, err := st.Load(r)
			if err != nil {
				t.Fatal(err)
			}
			mustAdd(t, s, "p1", 1)
			w := httptest.NewRecorder()
			if err := st.Save(w, r, s); err != nil {
				t.Fatal(err)
			}
			// Over https the name takes the __Host- prefix (SECURITY S2),
			// which a browser accepts only with Secure, Path=/ and no
			// Domain; and the store reads it back under that name.
			name := c.Cookie
			if https {
				name = session.HostPrefix + c.Cookie
			}
			ck := findCookie(t, w, name)
			if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Domain != "" || ck.Secure != https {
				t.Errorf("https=%v: cookie %s has the wrong flags", https, ck.String())
			}
			if n := len(ck.String()); n > 4096 {
				t.Errorf("cookie is %d bytes", n)
			}
			back := httptest.NewRequest("GET", "/", nil)
			if https {
				back.Header.Set("X-Forwarded-Proto", "https")
			}
			back.AddCookie(ck)
			if got, err := st.Load(back); err != nil || got.Event != session.EventFound || got.Cart.Qty("p1") != 1 {
				t.Errorf("https=%v: the cookie %s did not load its session: %+v, %v", https, ck.Name, got, err)
			}
			if https {
				// Over https a cookie without the prefix (one a sibling
				// domain could have set) is not read.
				plain := httptest.NewRequest("GET", "/", nil)
				plain.Header.Set("X-Forwarded-Proto", "https")
				plain.AddCookie(&http.Cookie{Name: c.Cookie, Value: ck.Value})
				if got, err := st.Load(plain); err != nil || got.Event != session.EventCreated {
					t.Errorf("over https, the unprefixed cookie %s was read: %+v, %v", c.Cookie, got, err)
				}
			}
		}
	})

	t.Run("renew issues a new ID", func(t *testing.T) {
		st := c.New(t)
		s := Load(t, st, nil)
		mustAdd(t, s, "p4", 1)
		old := Save(t, st, s)
		oldID := s.ID
		s = Load(t, st, old)
		s.User = "bob"
		s.Renew()
		fresh := Save(t, st, s)
		if s.ID == oldID || fresh.Value == old.Value {
			t.Fatalf("ID not rotated: %s", s.ID)
		}
		got := Load(t, st, fresh)
		if got.User != "bob" || got.Cart.Qty("p4") != 1 {
			t.Errorf("renewed session lost its data: %+v", got)
		}
		if c.Stateful {
			if again := Load(t, st, old); again.Event == session.EventFound || again.Cart.Count() != 0 {
				t.Errorf("old ID still loads: %+v", again)
			}
		}
	})

	if c.Stateful {
		t.Run("a save over a changed state conflicts", func(t *testing.T) {
			st := c.New(t)
			s := Load(t, st, nil)
			mustAdd(t, s, "p1", 1)
			ck := Save(t, st, s)
			first, second := Load(t, st, ck), Load(t, st, ck)
			mustAdd(t, first, "p2", 1)
			Save(t, st, first)
			mustAdd(t, second, "p3", 1)
			err := st.Save(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil), second)
			if !errors.Is(err, session.ErrConflict) {
				t.Fatalf("stale save: err %v, want ErrConflict", err)
			}
			got := Load(t, st, ck)
			if got.Cart.Qty("p2") != 1 || got.Cart.Qty("p3") != 0 {
				t.Errorf("after the conflict the cart is %v; want the first save's p2 and no p3", got.Cart.Lines)
			}
			// Reloaded, the second change applies on top of the first.
			mustAdd(t, got, "p3", 1)
			Save(t, st, got)
			if again := Load(t, st, ck); again.Cart.Count() != 3 {
				t.Errorf("after a reload and retry the cart is %v, want p1, p2 and p3", again.Cart.Lines)
			}
		})
	}

	if c.Stateful {
		// Issue 31: a session that remembered only its last 10 keys applied
		// a stale copy of an older keyed request twice. A store that keeps
		// sessions on the server keeps every key for KeepApplied.
		t.Run("applied requests are kept for a time, not for a count", func(t *testing.T) {
			st := c.New(t)
			s := Load(t, st, nil)
			ck := Save(t, st, s)
			for i := range 40 {
				s = Load(t, st, ck)
				mustAdd(t, s, "p1", 1)
				s.Remember(fmt.Sprintf("%04x", i), "aa", time.Now())
				ck = Save(t, st, s)
			}
			got := Load(t, st, ck)
			for i := range 40 {
				if seen, same := got.Recall(fmt.Sprintf("%04x", i), "aa"); !seen || !same {
					t.Fatalf("the key of change %d of 40 is forgotten; %d remembered", i+1, len(got.Applied))
				}
			}
		})
	}

	// A stateless store has no unknown IDs: every verified token is its own
	// session, and forged ones are covered by "malformed cookie".
	if c.Unknown != "" {
		t.Run("unknown ID is never adopted", func(t *testing.T) {
			st := c.New(t)
			s := Load(t, st, &http.Cookie{Name: c.Cookie, Value: c.Unknown})
			if s.Event != session.EventLost || s.ID != "" || s.Cart.Count() != 0 {
				t.Fatalf("got %+v, want a new lost session", s)
			}
			mustAdd(t, s, "p1", 1)
			ck := Save(t, st, s)
			if ck.Value == c.Unknown || strings.Contains(ck.Value, c.Unknown) {
				t.Errorf("store adopted the client's ID")
			}
		})
	}

	t.Run("malformed cookie is rejected", func(t *testing.T) {
		st := c.New(t)
		for _, v := range []string{c.Malformed, "x", strings.Repeat("A", 5000), "../../etc/passwd", "a.b.c"} {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Cookie", c.Cookie+"="+v)
			s, err := st.Load(r)
			var inv *session.InvalidCookieError
			if !errors.As(err, &inv) {
				t.Errorf("value %.20q: got session %+v, err %v; want *InvalidCookieError", v, s, err)
			}
		}
		// net/http drops cookie values that are not valid octets; such a
		// request simply has no session.
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Cookie", c.Cookie+"=\"\x00é\"")
		if s, err := st.Load(r); err != nil || s.Event != session.EventCreated {
			t.Errorf("invalid octets: got %+v, %v; want a new session", s, err)
		}
	})

	t.Run("concurrent loads and saves", func(t *testing.T) {
		st := c.New(t)
		s := Load(t, st, nil)
		mustAdd(t, s, "p1", 1)
		ck := Save(t, st, s)
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < 10; j++ {
					r := httptest.NewRequest("GET", "/", nil)
					r.AddCookie(ck)
					s, err := st.Load(r)
					if err != nil {
						t.Error(err)
						return
					}
					_ = s.Cart.Set("p1", 1+j)
					if err := st.Save(httptest.NewRecorder(), r, s); err != nil && !errors.Is(err, session.ErrConflict) {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	})
}

// Load loads the session of a request that carries ck (nil for none),
// failing the test on an error.
func Load(t testing.TB, st session.Store, ck *http.Cookie) *session.Session {
	t.Helper()
	r := httptest.NewRequest("GET", "/", nil)
	if ck != nil {
		r.AddCookie(ck)
	}
	s, err := st.Load(r)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return s
}

// Save saves s and returns the cookie the store set, failing the test on
// an error or when no cookie was set.
func Save(t testing.TB, st session.Store, s *session.Session) *http.Cookie {
	t.Helper()
	w := httptest.NewRecorder()
	if err := st.Save(w, httptest.NewRequest("POST", "/", nil), s); err != nil {
		t.Fatalf("Save: %v", err)
	}
	return findCookie(t, w, "")
}

func findCookie(t testing.TB, w *httptest.ResponseRecorder, name string) *http.Cookie {
	t.Helper()
	for _, ck := range w.Result().Cookies() {
		if name == "" || ck.Name == name {
			return ck
		}
	}
	t.Fatalf("no cookie %q set; headers %v", name, w.Header())
	return nil
}

func mustAdd(t *testing.T, s *session.Session, id string, qty int) {
	t.Helper()
	if err := s.Cart.Add(id, qty); err != nil {
		t.Fatal(err)
	}
}

// ThreeLines returns a new, unsaved session whose cart holds three lines
// (p1, p4, p9, two of each): the cart of the read benchmarks.
func ThreeLines() *session.Session {
	s := session.New(session.EventCreated, time.Now())
	for _, p := range []string{"p1", "p4", "p9"} {
		_ = s.Cart.Add(p, 2)
	}
	return s
}

// ConcurrentAdds starts a session with one p1 in st, then n requests of
// that browser load it at once, each adds one p1, and all save at once
// with save (the store's Save, or a variant). A save that lost the race
// (session.ErrConflict) loads again and reapplies its add after a random,
// growing pause, as the shop's service does (web.maxAttempts): without
// the pause, twenty goroutines that retry at once kept beating each other,
// and one lost 200 races in a row once in about 30 runs under load. The
// barrier between load and save makes the race certain. It returns how
// many p1 the cart holds at the end: n+1 when no add was lost.
func ConcurrentAdds(t *testing.T, st session.Store, n int, save func(http.ResponseWriter, *http.Request, *session.Session) error) int {
	t.Helper()
	first := session.New(session.EventCreated, time.Now())
	_ = first.Cart.Add("p1", 1)
	ck := Save(t, st, first)
	load := func() (*session.Session, error) {
		r := httptest.NewRequest("POST", "/", nil)
		r.AddCookie(ck)
		return st.Load(r)
	}
	var loaded, done sync.WaitGroup
	loaded.Add(n)
	errs := make(chan error, n)
	for range n {
		done.Go(func() {
			s, err := load()
			loaded.Done()
			if err != nil {
				errs <- err
				return
			}
			loaded.Wait() // every request has read the same state
			for attempt := 1; ; attempt++ {
				_ = s.Cart.Add("p1", 1)
				err = save(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil), s)
				if !errors.Is(err, session.ErrConflict) || attempt == 10*n {
					errs <- err
					return
				}
				time.Sleep(time.Duration(mathrand.Int64N(int64(attempt) * int64(time.Millisecond))))
				if s, err = load(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	done.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a concurrent save failed: %v", err)
		}
	}
	final, err := load()
	if err != nil {
		t.Fatal(err)
	}
	return final.Cart.Qty("p1")
}
