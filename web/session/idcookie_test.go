package session

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessiondemo/shop/web/cart"
)

// The formats are the patterns each store checked before they were
// written once, to the letter: a stored session stays valid.
func TestIDFormats(t *testing.T) {
	for _, c := range []struct {
		name    string
		f       IDFormat
		pattern string
		replica string
		length  int
	}{
		{"sticky", StickyIDs, `^(` + ReplicaNamePattern + `)\.[A-Za-z0-9_-]{43}$`, "app1", 5 + 43},
		{"redis", RedisIDs, `^[A-Z2-7]{103}$`, "", 103},
		{"memcached", MemcachedIDs, `^[A-Za-z0-9_-]{43}$`, "", 43},
	} {
		if got := c.f.pattern.String(); got != c.pattern {
			t.Errorf("%s: pattern %s, want %s", c.name, got, c.pattern)
		}
		id, err := c.f.New(c.replica)
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != c.length || !c.f.Valid(id) {
			t.Errorf("%s: new ID %q (%d characters) is not of its own format", c.name, id, len(id))
		}
		if other, _ := c.f.New(c.replica); other == id {
			t.Errorf("%s: two new IDs are the same", c.name)
		}
		if replica, ok := c.f.Replica(id); !ok || replica != c.replica {
			t.Errorf("%s: Replica(%q) = %q, %v", c.name, id, replica, ok)
		}
	}
	if StickyIDs.Valid(strings.Repeat("A", 43)) || MemcachedIDs.Valid("app1."+strings.Repeat("A", 43)) || RedisIDs.Valid(strings.Repeat("a", 103)) {
		t.Error("a format accepts another's ID")
	}
	if _, ok := StickyIDs.Replica("app1.short"); ok {
		t.Error("Replica accepts a malformed ID")
	}
}

var testCookie = IDCookie{Name: "t_sid", Mode: Memcached, Format: MemcachedIDs}

func TestIDCookieLoad(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	valid := strings.Repeat("A", 43)
	for _, c := range []struct {
		name  string
		value string // "-" for no cookie
		https bool
		want  string
		event Event
		err   bool
	}{
		{"none", "-", false, "", EventCreated, false},
		{"empty", "", false, "", EventCreated, false},
		{"valid", valid, false, valid, "", false},
		{"malformed", "not-an-id", false, "", "", true},
		{"https reads the prefixed one", valid, true, valid, "", false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if c.https {
			r.TLS = &tls.ConnectionState{}
		}
		if c.value != "-" {
			r.AddCookie(&http.Cookie{Name: CookieName(r, "t_sid"), Value: c.value})
		}
		id, instead, err := testCookie.Load(r, now)
		var invalid *InvalidCookieError
		switch {
		case id != c.want:
			t.Errorf("%s: id %q, want %q", c.name, id, c.want)
		case c.err && (!errors.As(err, &invalid) || invalid.Cookie != "t_sid" || invalid.InURL || instead != nil):
			t.Errorf("%s: %v, %+v; want an *InvalidCookieError", c.name, err, instead)
		case !c.err && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.event != "" && (instead == nil || instead.Event != c.event || !instead.Started.Equal(now)):
			t.Errorf("%s: instead %+v, want a new session %s", c.name, instead, c.event)
		case c.event == "" && instead != nil:
			t.Errorf("%s: instead %+v, want none", c.name, instead)
		}
	}
	// Over https the unprefixed cookie does not count.
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Forwarded-Proto", "https")
	r.AddCookie(&http.Cookie{Name: "t_sid", Value: valid})
	if id, instead, _ := testCookie.Load(r, now); id != "" || instead.Event != EventCreated {
		t.Errorf("https read the unprefixed cookie: %q", id)
	}
}

func TestIDCookieSet(t *testing.T) {
	for _, https := range []bool{false, true} {
		r := httptest.NewRequest("POST", "/", nil)
		name := "t_sid"
		if https {
			r.Header.Set("X-Forwarded-Proto", "https")
			name = HostPrefix + name
		}
		w := httptest.NewRecorder()
		testCookie.Set(w, r, "ID")
		got := w.Result().Header.Values("Set-Cookie")
		secure := ""
		if https {
			secure = "; Secure"
		}
		want := []string{
			name + "=ID; Path=/; HttpOnly" + secure + "; SameSite=Lax",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("https %v: Set-Cookie\n%s\nwant\n%s", https, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

func TestIDCookieInURL(t *testing.T) {
	c := IDCookie{Name: "t_sid", Mode: Sticky, Format: StickyIDs, URL: true}
	id, _ := StickyIDs.New("app1")
	r := httptest.NewRequest("GET", "/?"+URLParam+"=app1.short", nil)
	r.AddCookie(&http.Cookie{Name: "t_sid", Value: id})
	if got := c.Value(r); got != id {
		t.Errorf("unmarked: Value %q, want the cookie's", got)
	}
	r = WithIDInURL(r)
	if got := c.Value(r); got != "app1.short" {
		t.Errorf("marked: Value %q, want the URL's", got)
	}
	var invalid *InvalidCookieError
	if _, _, err := c.Load(r, time.Now()); !errors.As(err, &invalid) || !invalid.InURL {
		t.Errorf("marked, malformed: %v, want an *InvalidCookieError InURL", err)
	}
	w := httptest.NewRecorder()
	c.Set(w, r, id)
	if len(w.Result().Cookies()) != 0 {
		t.Error("Set set a cookie for an ID that travels in the URL")
	}
	// A cookie without URL ignores the mark.
	if got := testCookie.Value(r); got != id {
		t.Errorf("a cookie without URL read %q, want its cookie's value", got)
	}
}

func TestIDCookieInspect(t *testing.T) {
	for id, want := range map[string]string{
		"":                      "This browser has no memcached session yet.",
		"x":                     "The memcached session cookie is not an ID this shop issues.",
		strings.Repeat("A", 43): "",
	} {
		in, ok := testCookie.Inspect(id)
		if in.Mode != Memcached || in.Where != want || ok != (want == "") {
			t.Errorf("Inspect(%q) = %+v, %v", id, in, ok)
		}
	}
}

func TestTTL(t *testing.T) {
	start := time.Unix(1_000_000, 0)
	tt := Timeouts{Idle: time.Minute, Absolute: time.Hour}
	for _, c := range []struct {
		now  time.Duration // after start
		want time.Duration
	}{
		{0, time.Minute},
		{30 * time.Minute, time.Minute},
		{time.Hour - 20*time.Second, 20 * time.Second},
		{time.Hour - 100*time.Millisecond, time.Second},
	} {
		if got := tt.TTL(start, start.Add(c.now)); got != c.want {
			t.Errorf("TTL at %v = %v, want %v", c.now, got, c.want)
		}
	}
}

func TestDataValidate(t *testing.T) {
	if err := (Data{Applied: []string{"ab:cd:12"}}).Validate(); err != nil {
		t.Errorf("valid data: %v", err)
	}
	if err := (Data{Applied: []string{"zz"}}).Validate(); err == nil || err.Error() != "invalid idempotency list" {
		t.Errorf("invalid list: %v", err)
	}
	bad := Data{Cart: cart.Cart{Lines: []cart.Line{{ProductID: "no-such-product", Qty: 1}}}}
	if err := bad.Validate(); err == nil || !strings.HasPrefix(err.Error(), "invalid cart: ") {
		t.Errorf("invalid cart: %v", err)
	}
}
