package memstore

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/session/sessiontest"
)

func TestContract(t *testing.T) {
	sessiontest.Run(t, sessiontest.Contract{
		New:       func(t *testing.T) session.Store { return New("app1", session.Timeouts{Idle: time.Hour}) },
		Cookie:    CookieName,
		Stateful:  true,
		Malformed: "app1.short",
		Unknown:   "app2." + strings.Repeat("A", 43),
	})
}

func TestLostSessionNamesItsReplica(t *testing.T) {
	st := New("app1", session.Timeouts{Idle: time.Hour})
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: CookieName, Value: "app3." + strings.Repeat("b", 43)})
	s, err := st.Load(r)
	if err != nil {
		t.Fatal(err)
	}
	if s.Event != session.EventLost || s.LostFrom != "app3" {
		t.Errorf("got event %s from %q, want lost from app3", s.Event, s.LostFrom)
	}
}

func TestIssuedIDsNameThisReplica(t *testing.T) {
	st := New("app2", session.Timeouts{Idle: time.Hour})
	s := session.New(session.EventCreated, time.Now())
	sessiontest.Save(t, st, s)
	if !strings.HasPrefix(s.ID, "app2.") || !idCookie.Format.Valid(s.ID) {
		t.Errorf("ID %q does not match the issued format", s.ID)
	}
}

func TestIdleSessionExpires(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	st := New("app1", session.Timeouts{Idle: time.Minute})
	st.now = func() time.Time { return now }
	ck := sessiontest.Save(t, st, session.New(session.EventCreated, now))
	now = now.Add(61 * time.Second)
	if got := sessiontest.Load(t, st, ck); got.Event != session.EventExpired || st.Len() != 0 {
		t.Errorf("event %s, %d sessions held; want expired and none", got.Event, st.Len())
	}
}

func TestAbsoluteTimeoutAndSweep(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	st := New("app1", session.Timeouts{Idle: 2 * time.Second, Absolute: 5 * time.Second})
	st.now = func() time.Time { return now }
	ck := sessiontest.Save(t, st, session.New(session.EventCreated, now))
	load := func() *session.Session { return sessiontest.Load(t, st, ck) }
	// Requests 1.5 s apart keep it alive past the idle timeout...
	for i := 0; i < 3; i++ {
		now = now.Add(1500 * time.Millisecond)
		if got := load(); got.Event != session.EventFound {
			t.Fatalf("at +%v: %s, want found", time.Duration(i+1)*1500*time.Millisecond, got.Event)
		}
	}
	// ...but not past the absolute one.
	now = now.Add(1500 * time.Millisecond)
	if got := load(); got.Event != session.EventExpired {
		t.Errorf("at +6s: %s, want expired (absolute 5s)", got.Event)
	}
	// A session nobody asks for again is swept.
	ck2 := sessiontest.Save(t, st, session.New(session.EventCreated, now))
	now = now.Add(3 * time.Second)
	if n := st.Sweep(); n != 1 || st.Len() != 0 {
		t.Errorf("swept %d, %d left; want 1 swept, none left", n, st.Len())
	}
	// Its browser, coming back, hears that it expired, not that it was lost.
	if got := sessiontest.Load(t, st, ck2); got.Event != session.EventExpired {
		t.Errorf("swept session: %+v; want expired", got)
	}
}

func TestIDInURL(t *testing.T) {
	st := New("app2", session.Timeouts{Idle: time.Hour})
	s := session.New(session.EventCreated, time.Now())
	w := httptest.NewRecorder()
	if err := st.Save(w, session.WithIDInURL(httptest.NewRequest("POST", "/", nil)), s); err != nil {
		t.Fatal(err)
	}
	if c := w.Result().Cookies(); len(c) != 0 {
		t.Errorf("a session in the URL got a cookie: %v", c)
	}
	// Read from the query parameter; the cookie is not consulted.
	r := httptest.NewRequest("GET", "/?sid="+s.ID, nil)
	r.AddCookie(&http.Cookie{Name: CookieName, Value: "app2." + strings.Repeat("c", 43)})
	got, err := st.Load(session.WithIDInURL(r))
	if err != nil || got.Event != session.EventFound || got.ID != s.ID {
		t.Errorf("Load from the query: %+v, %v; want the saved session", got, err)
	}
	// An unmarked request reads the cookie, never the query.
	plain, err := st.Load(httptest.NewRequest("GET", "/?sid="+s.ID, nil))
	if err != nil || plain.Event != session.EventCreated {
		t.Errorf("an unmarked request read the sid parameter: %+v, %v", plain, err)
	}
	_, err = st.Load(session.WithIDInURL(httptest.NewRequest("GET", "/?sid=app2.short", nil)))
	var ic *session.InvalidCookieError
	if !errors.As(err, &ic) || !ic.InURL || !strings.Contains(err.Error(), "query parameter") {
		t.Errorf("a malformed sid gave %v, want an InvalidCookieError in the URL", err)
	}
}

// TestEndUserDeletesThatUsersSessionsOnly: an admin's end of a user's
// sessions deletes them, and no one else's; the browser finds its session
// lost.
func TestEndUserDeletesThatUsersSessionsOnly(t *testing.T) {
	st := New("app1", session.Timeouts{Idle: time.Hour})
	save := func(user string) *http.Cookie {
		s := session.New(session.EventCreated, time.Now())
		s.User = user
		w := httptest.NewRecorder()
		if err := st.Save(w, httptest.NewRequest("POST", "/", nil), s); err != nil {
			t.Fatal(err)
		}
		return w.Result().Cookies()[0]
	}
	erin1, erin2, frank := save("erin"), save("erin"), save("frank")
	if n := st.EndUser("erin"); n != 2 {
		t.Errorf("EndUser(erin) = %d, want 2", n)
	}
	for _, c := range []*http.Cookie{erin1, erin2} {
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(c)
		if s, err := st.Load(r); err != nil || s.User != "" || s.Event != session.EventLost {
			t.Errorf("erin's session after the end: %+v, %v", s, err)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(frank)
	if s, err := st.Load(r); err != nil || s.User != "frank" {
		t.Errorf("frank's session after erin's end: %+v, %v", s, err)
	}
	if n := st.EndUser(""); n != 0 {
		t.Errorf("EndUser(\"\") ended %d anonymous sessions", n)
	}
}
