package memstore

import (
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
		New:       func(t *testing.T) session.Store { return New("app1", time.Hour) },
		Cookie:    CookieName,
		Stateful:  true,
		Malformed: "app1.short",
		Unknown:   "app2." + strings.Repeat("A", 43),
	})
}

func TestLostSessionNamesItsReplica(t *testing.T) {
	st := New("app1", time.Hour)
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
	st := New("app2", time.Hour)
	s := session.New(session.EventCreated, time.Now())
	w := httptest.NewRecorder()
	if err := st.Save(w, httptest.NewRequest("POST", "/", nil), s); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.ID, "app2.") || !idPattern.MatchString(s.ID) {
		t.Errorf("ID %q does not match the issued format", s.ID)
	}
}

func TestIdleSessionExpires(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	st := New("app1", time.Minute)
	st.now = func() time.Time { return now }
	s := session.New(session.EventCreated, now)
	w := httptest.NewRecorder()
	if err := st.Save(w, httptest.NewRequest("POST", "/", nil), s); err != nil {
		t.Fatal(err)
	}
	ck := w.Result().Cookies()[0]
	now = now.Add(61 * time.Second)
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(ck)
	got, err := st.Load(r)
	if err != nil {
		t.Fatal(err)
	}
	if got.Event != session.EventExpired || st.Len() != 0 {
		t.Errorf("event %s, %d sessions held; want expired and none", got.Event, st.Len())
	}
}
