package admin

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/sessiondemo/shop/web/peer"
)

// TestAdminCookieLifeIsCappedOnTheServer (finding 2): a cookie with a
// valid MAC whose expiry lies 30 days out, as one made with the key could
// be, is refused; one within the hour is accepted.
func TestAdminCookieLifeIsCappedOnTheServer(t *testing.T) {
	a, err := New(Options{Replica: "app1", User: "admin", Password: "pw", InternalKey: "key", Peers: peer.Static{}})
	if err != nil {
		t.Fatal(err)
	}
	cookie := func(exp time.Time) *http.Request {
		e := strconv.FormatInt(exp.Unix(), 10)
		r := httptest.NewRequest("GET", "/admin", nil)
		r.AddCookie(&http.Cookie{Name: CookieName, Value: "id1." + e + "." + a.cookieMAC("id1", e)})
		return r
	}
	if _, _, ok := a.adminCookie(cookie(time.Now().Add(30 * time.Minute))); !ok {
		t.Fatal("a cookie within the hour was refused")
	}
	if _, _, ok := a.adminCookie(cookie(time.Now().Add(30 * 24 * time.Hour))); ok {
		t.Error("a cookie expiring in 30 days was accepted")
	}
	if _, _, ok := a.adminCookie(cookie(time.Now().Add(-time.Second))); ok {
		t.Error("an expired cookie was accepted")
	}
	// A cookie signed with another internal key (another stack) is refused.
	b, _ := New(Options{Replica: "app1", User: "admin", Password: "pw", InternalKey: "other", Peers: peer.Static{}})
	e := strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10)
	r := httptest.NewRequest("GET", "/admin", nil)
	r.AddCookie(&http.Cookie{Name: CookieName, Value: "id1." + e + "." + b.cookieMAC("id1", e)})
	if _, _, ok := a.adminCookie(r); ok {
		t.Error("a cookie signed with another internal key was accepted")
	}
}
