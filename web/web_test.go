package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/session/jwtstore"
	"github.com/sessiondemo/shop/web/session/memstore"
	"github.com/sessiondemo/shop/web/session/redisstore"
)

type quietRedisLogger struct{}

func (quietRedisLogger) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quietRedisLogger{}) }

// newTestServer serves the app as replica "app1" with sticky and jwt stores
// and a redis store whose Redis is unreachable.
func newTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	jwtSt, err := jwtstore.New(jwtstore.Options{Keys: []session.Key{{ID: "k1", Secret: bytes.Repeat([]byte{1}, 32)}}})
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { rdb.Close() })
	redisSt, err := redisstore.New(rdb, []session.Key{{ID: "k1", Secret: bytes.Repeat([]byte{2}, 32)}}, session.Timeouts{Idle: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHandler(Options{
		Replica: "app1",
		Stores: Stores{
			session.Sticky: memstore.New("app1", session.Timeouts{Idle: time.Hour}),
			session.Redis:  redisSt,
			session.JWT:    jwtSt,
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// client is a browser-like API client with a cookie jar and a mode.
type client struct {
	t    *testing.T
	srv  *httptest.Server
	http *http.Client
}

func newClient(t *testing.T, srv *httptest.Server, mode session.Mode) *client {
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(srv.URL)
	jar.SetCookies(u, []*http.Cookie{{Name: "mode", Value: string(mode)}})
	return &client{t: t, srv: srv, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type response struct {
	status int
	header http.Header
	body   string
}

func (c *client) do(method, path, body string, header ...string) response {
	c.t.Helper()
	req, err := http.NewRequest(method, c.srv.URL+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" && strings.HasPrefix(body, "{") {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(b)}
}

func (c *client) form(path string, values url.Values) response {
	c.t.Helper()
	return c.do("POST", path, values.Encode(), "Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "same-origin")
}

func (c *client) cart() cartJSON {
	c.t.Helper()
	r := c.do("GET", "/api/cart", "")
	if r.status != 200 {
		c.t.Fatalf("GET /api/cart = %d %s", r.status, r.body)
	}
	var out cartJSON
	if err := json.Unmarshal([]byte(r.body), &out); err != nil {
		c.t.Fatal(err)
	}
	return out
}

func TestHeadersOnEveryResponse(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv, session.JWT)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/"}, {"GET", "/cart"}, {"GET", "/api/cart"}, {"GET", "/api/products"},
		{"GET", "/static/css/shop.css"}, {"GET", "/no/such/page"}, {"PATCH", "/api/cart"},
		{"GET", "/healthz"}, {"GET", "/?mode=bogus"}, {"GET", "/api/ping"},
	} {
		r := c.do(tc.method, tc.path, "")
		if r.header.Get("X-Replica") != "app1" || r.header.Get("X-Session-Mode") == "" || len(r.header.Get("X-Request-Id")) < 8 {
			t.Errorf("%s %s (%d): headers %v", tc.method, tc.path, r.status, r.header)
		}
		csp := r.header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
			r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s %s (%d): CSP %q, nosniff %q, X-Frame-Options %q", tc.method, tc.path, r.status, csp, r.header.Get("X-Content-Type-Options"), r.header.Get("X-Frame-Options"))
		}
	}
	r := c.do("GET", "/api/cart", "", "X-Request-Id", "0123456789abcdef0123456789abcdef")
	if got := r.header.Get("X-Request-Id"); got != "0123456789abcdef0123456789abcdef" {
		t.Errorf("X-Request-Id from nginx not kept: %q", got)
	}
	if got := c.do("GET", "/api/cart?mode=redis", "").header.Get("X-Session-Mode"); got != "redis" {
		t.Errorf("?mode=redis answered as %q", got)
	}
}

func TestCartAPIInEachMode(t *testing.T) {
	srv := newTestServer(t)
	for _, mode := range []session.Mode{session.Sticky, session.JWT} {
		t.Run(string(mode), func(t *testing.T) {
			c := newClient(t, srv, mode)
			if got := c.cart(); got.Count != 0 || got.Mode != string(mode) || got.Replica != "app1" || len(got.Items) != 0 {
				t.Fatalf("new cart = %+v", got)
			}
			for _, step := range []struct {
				method, path, body string
				want               int
			}{
				{"POST", "/api/cart/items", `{"product_id":"p1","qty":2}`, 200},
				{"POST", "/api/cart/items", `{"product_id":"p3"}`, 200},
				{"POST", "/api/cart/items", `{"product_id":"p1","qty":1}`, 200},
				{"PUT", "/api/cart/items/p3", `{"qty":5}`, 200},
				{"DELETE", "/api/cart/items/p1", ``, 200},
				{"POST", "/api/cart/items", `{"product_id":"p2","qty":1}`, 200},
			} {
				if r := c.do(step.method, step.path, step.body); r.status != step.want {
					t.Fatalf("%s %s %s = %d %s", step.method, step.path, step.body, r.status, r.body)
				}
			}
			got := c.cart()
			if got.Count != 6 || len(got.Items) != 2 || got.Items[0].ProductID != "p3" || got.Items[0].Qty != 5 || got.TotalCents != 5*999+1850 {
				t.Errorf("cart = %+v", got)
			}
			if r := c.do("DELETE", "/api/cart", ""); r.status != 200 || c.cart().Count != 0 {
				t.Errorf("clear: %d %s", r.status, r.body)
			}
		})
	}
}

func TestBadInputIsA4xxAndChangesNothing(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv, session.Sticky)
	if r := c.do("POST", "/api/cart/items", `{"product_id":"p4","qty":3}`); r.status != 200 {
		t.Fatalf("seed cart: %d %s", r.status, r.body)
	}
	before := c.cart()
	for _, tc := range []struct {
		name, method, path, body string
		want                     int
		mentions                 string
	}{
		{"unknown product", "POST", "/api/cart/items", `{"product_id":"p999","qty":1}`, 400, "no product"},
		{"qty zero", "POST", "/api/cart/items", `{"product_id":"p1","qty":0}`, 400, "between 1 and 99"},
		{"qty 100", "POST", "/api/cart/items", `{"product_id":"p1","qty":100}`, 400, "between 1 and 99"},
		{"line over 99", "POST", "/api/cart/items", `{"product_id":"p4","qty":97}`, 400, "at most 99"},
		{"qty string", "POST", "/api/cart/items", `{"product_id":"p1","qty":"2"}`, 400, "whole number"},
		{"qty float", "POST", "/api/cart/items", `{"product_id":"p1","qty":1.5}`, 400, "whole number"},
		{"product number", "POST", "/api/cart/items", `{"product_id":1}`, 400, "a string"},
		{"missing product", "POST", "/api/cart/items", `{"qty":1}`, 400, "product_id"},
		{"malformed", "POST", "/api/cart/items", `{"product_id":`, 400, "JSON"},
		{"not an object", "POST", "/api/cart/items", `[1,2]`, 400, "JSON object"},
		{"unknown field", "POST", "/api/cart/items", `{"product_id":"p1","price_cents":1}`, 400, "does not know"},
		{"two objects", "POST", "/api/cart/items", `{"product_id":"p1"}{"product_id":"p2"}`, 400, "one JSON object"},
		{"oversized", "POST", "/api/cart/items", `{"product_id":"` + strings.Repeat("x", 5000) + `"}`, 400, "larger than"},
		{"set not in cart", "PUT", "/api/cart/items/p2", `{"qty":1}`, 404, "not in your cart"},
		{"set unknown", "PUT", "/api/cart/items/zzz", `{"qty":1}`, 400, "no product"},
		{"set missing qty", "PUT", "/api/cart/items/p4", `{}`, 400, "qty"},
		{"delete not in cart", "DELETE", "/api/cart/items/p2", ``, 404, "not in your cart"},
		{"bad user", "POST", "/api/login", `{"user":"<script>"}`, 400, "user name"},
		{"wrong method", "PATCH", "/api/cart/items", `{}`, 405, "accepts POST"},
		{"GET never adds", "GET", "/cart/add?product_id=p1", ``, 405, ""},
		{"bad mode", "GET", "/api/cart?mode=admin", ``, 400, "no session mode"},
		{"unknown api path", "GET", "/api/nope", ``, 404, "nothing at"},
		{"unknown admin api path", "GET", "/api/admin/nope", ``, 404, "nothing at"},
		{"the api's root", "GET", "/api", ``, 404, ""},
		{"the admin api's root", "GET", "/api/admin", ``, 404, "nothing at"},
		{"wrong method on a page", "DELETE", "/cart", ``, 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.do(tc.method, tc.path, tc.body)
			if r.status != tc.want {
				t.Fatalf("status = %d, want %d; body %s", r.status, tc.want, r.body)
			}
			if strings.HasPrefix(tc.path, "/api/") {
				var e struct{ Error string }
				if err := json.Unmarshal([]byte(r.body), &e); err != nil || !strings.Contains(e.Error, tc.mentions) {
					t.Errorf("body %s does not mention %q", r.body, tc.mentions)
				}
			}
		})
	}
	if after := c.cart(); after.Count != before.Count || after.Session != before.Session {
		t.Errorf("cart changed from %+v to %+v", before, after)
	}
}

func TestCrossOriginStateChangesAreRefused(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv, session.JWT)
	u, _ := url.Parse(srv.URL)
	for _, tc := range []struct {
		name   string
		header []string
		want   int
	}{
		{"cross-site fetch", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"same-site fetch", []string{"Sec-Fetch-Site", "same-site"}, 403},
		{"evil origin", []string{"Origin", "https://evil.example"}, 403},
		{"null origin", []string{"Origin", "null"}, 403},
		{"same origin", []string{"Sec-Fetch-Site", "same-origin"}, 200},
		{"same origin header only", []string{"Origin", "http://" + u.Host}, 200},
		{"no headers (curl)", nil, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.do("POST", "/api/cart/items", `{"product_id":"p1"}`, tc.header...)
			if r.status != tc.want {
				t.Errorf("status = %d, want %d (%s)", r.status, tc.want, r.body)
			}
		})
	}
	if got := c.cart().Count; got != 3 {
		t.Errorf("count = %d, want 3 (only the allowed adds)", got)
	}
	if r := c.do("POST", "/cart/clear", "", "Sec-Fetch-Site", "cross-site"); r.status != 403 || !strings.Contains(r.body, "another site") {
		t.Errorf("cross-site form: %d", r.status)
	}
}

func TestRedisDownAnswers503AndWritesNothing(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv, session.Redis)
	u, _ := url.Parse(srv.URL)
	c.http.Jar.SetCookies(u, []*http.Cookie{{Name: redisstore.CookieName, Value: strings.Repeat("A", 103)}})
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/api/cart", ""},
		{"POST", "/api/cart/items", `{"product_id":"p1"}`},
	} {
		r := c.do(tc.method, tc.path, tc.body)
		if r.status != 503 || !strings.Contains(r.body, "Redis") || strings.Contains(strings.Join(r.header.Values("Set-Cookie"), "\n"), redisstore.CookieName) {
			t.Errorf("%s %s = %d %s (Set-Cookie %q)", tc.method, tc.path, r.status, r.body, r.header.Get("Set-Cookie"))
		}
	}
	r := c.do("GET", "/cart", "")
	if r.status != 503 || !strings.Contains(r.body, `data-testid="error-title"`) {
		t.Errorf("cart page = %d", r.status)
	}
	// Sticky and jwt don't need Redis.
	if r := c.do("GET", "/api/cart?mode=jwt", ""); r.status != 200 {
		t.Errorf("jwt while Redis is down = %d", r.status)
	}
}

func TestFormsRedirectWithFlash(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv, session.Sticky)
	r := c.form("/cart/add", url.Values{"product_id": {"p5"}, "qty": {"2"}, "return_to": {"/cart"}})
	if r.status != 303 || r.header.Get("Location") != "/cart" {
		t.Fatalf("add form = %d to %q", r.status, r.header.Get("Location"))
	}
	page := c.do("GET", "/cart", "")
	if !strings.Contains(page.body, "Desk Succulent added to your cart.") || !strings.Contains(page.body, `data-testid="cart-line"`) {
		t.Errorf("cart page after add lacks flash or line")
	}
	if !regexp.MustCompile(`data-testid="session-ends"[^>]*>in 59 min<`).MatchString(page.body) {
		t.Errorf("cart page does not say when the session ends (idle timeout 1h)")
	}
	if again := c.do("GET", "/cart", ""); strings.Contains(again.body, "added to your cart") {
		t.Error("flash shown twice")
	}
	for _, tc := range []struct {
		path   string
		values url.Values
		count  int
	}{
		{"/cart/update", url.Values{"product_id": {"p5"}, "qty": {"7"}}, 7},
		{"/cart/add", url.Values{"product_id": {"p6"}}, 8},
		{"/cart/remove", url.Values{"product_id": {"p5"}}, 1},
		{"/cart/clear", nil, 0},
	} {
		if r := c.form(tc.path, tc.values); r.status != 303 {
			t.Fatalf("%s = %d %s", tc.path, r.status, r.body)
		}
		if got := c.cart().Count; got != tc.count {
			t.Errorf("after %s count = %d, want %d", tc.path, got, tc.count)
		}
	}
	for _, to := range []string{"//evil.example/x", "/%5Cevil.example", "/\\evil.example", "https://evil.example/", "/%2F%2Fevil.example", "/a\tb"} {
		if r := c.form("/cart/add", url.Values{"product_id": {"p1"}, "return_to": {to}}); r.header.Get("Location") != "/" {
			t.Errorf("return_to %q: Location %q, want /", to, r.header.Get("Location"))
		}
	}
	if r := c.form("/cart/add", url.Values{"product_id": {"p1"}, "return_to": {"/cart"}}); r.header.Get("Location") != "/cart" {
		t.Errorf("return_to /cart: Location %q", r.header.Get("Location"))
	}
	if r := c.form("/cart/update", url.Values{"product_id": {"p1"}, "qty": {"lots"}}); r.status != 400 || !strings.Contains(r.body, "whole number") {
		t.Errorf("bad qty form = %d", r.status)
	}
}

func TestSignInRotatesTheSession(t *testing.T) {
	srv := newTestServer(t)
	for _, mode := range []session.Mode{session.Sticky, session.JWT} {
		t.Run(string(mode), func(t *testing.T) {
			c := newClient(t, srv, mode)
			c.do("POST", "/api/cart/items", `{"product_id":"p2"}`)
			before := c.cart()
			if r := c.do("POST", "/api/login", `{"user":"alice"}`); r.status != 200 {
				t.Fatalf("login = %d %s", r.status, r.body)
			}
			after := c.cart()
			if after.User != "alice" || after.Session == before.Session || after.Count != 1 {
				t.Errorf("after sign-in %+v (before %+v): want alice, a new session, the cart kept", after, before)
			}
			c.do("POST", "/api/logout", "")
			out := c.cart()
			if out.User != "" || out.Count != 0 || out.Session == after.Session {
				t.Errorf("after sign-out %+v", out)
			}
		})
	}
}

func TestTamperedCookiesAreRejectedAndCleared(t *testing.T) {
	srv := newTestServer(t)
	for _, tc := range []struct {
		mode   session.Mode
		cookie string
		value  string
	}{
		{session.JWT, jwtstore.CookieName, "eyJhbGciOiJub25lIiwidHlwIjoiY2FydCtqd3QifQ.eyJjYXJ0IjpbXX0."},
		{session.Sticky, memstore.CookieName, "not-an-id"},
		{session.Redis, redisstore.CookieName, "../../etc"},
	} {
		c := newClient(t, srv, tc.mode)
		u, _ := url.Parse(srv.URL)
		c.http.Jar.SetCookies(u, []*http.Cookie{{Name: tc.cookie, Value: tc.value}})
		r := c.do("POST", "/api/cart/items", `{"product_id":"p1"}`)
		if r.status != 400 || !strings.Contains(r.body, "not accepted") || !strings.Contains(strings.Join(r.header.Values("Set-Cookie"), "\n"), tc.cookie+"=;") {
			t.Errorf("%s: %d %s, Set-Cookie %q", tc.mode, r.status, r.body, r.header.Get("Set-Cookie"))
		}
		if got := c.cart(); got.Count != 0 || got.Event != string(session.EventCreated) {
			t.Errorf("%s: after rejection the cart is %+v, want a fresh empty one", tc.mode, got)
		}
	}
}

func TestModeToggle(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv, session.Sticky)
	c.do("POST", "/api/cart/items", `{"product_id":"p1"}`)
	r := c.form("/mode", url.Values{"mode": {"jwt"}, "return_to": {"/cart"}})
	if r.status != 303 || !strings.Contains(strings.Join(r.header.Values("Set-Cookie"), "\n"), "mode=jwt;") {
		t.Fatalf("toggle = %d %v", r.status, r.header)
	}
	if got := c.cart(); got.Mode != "jwt" || got.Count != 0 {
		t.Errorf("jwt cart = %+v, want its own empty cart", got)
	}
	c.form("/mode", url.Values{"mode": {"sticky"}})
	if got := c.cart(); got.Mode != "sticky" || got.Count != 1 {
		t.Errorf("back in sticky = %+v, want the sticky cart kept", got)
	}
	if r := c.form("/mode", url.Values{"mode": {"cassandra"}}); r.status != 400 {
		t.Errorf("unknown mode = %d", r.status)
	}
}

func TestPagesShowReplicaAndTrail(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv, session.Sticky)
	var body string
	for i := 0; i < 12; i++ {
		body = c.do("GET", "/", "").body
	}
	if !strings.Contains(body, `data-testid="replica"`) || !strings.Contains(body, ">app1<") {
		t.Error("page does not name its replica")
	}
	if n := strings.Count(body, `data-testid="trail-item"`); n != 10 {
		t.Errorf("trail has %d items, want the last 10", n)
	}
}

func FuzzCartJSON(f *testing.F) {
	for _, seed := range []string{`{"product_id":"p1","qty":1}`, `{"qty":-1}`, `[]`, `{`, `{"product_id":"p1"}{}`, `null`, `{"product_id":null,"qty":1e9}`} {
		f.Add(seed)
	}
	h, _ := NewHandler(Options{Replica: "app1", Stores: Stores{session.Sticky: memstore.New("app1", session.Timeouts{Idle: time.Hour})}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	f.Fuzz(func(t *testing.T, body string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "/api/cart/items", strings.NewReader(body)))
		if w.Code >= 500 {
			t.Fatalf("body %q: status %d", body, w.Code)
		}
		if w.Code != 200 && !strings.Contains(w.Body.String(), `"error"`) {
			t.Fatalf("body %q: %d without an error sentence", body, w.Code)
		}
	})
}

// FuzzSessionCookie sends arbitrary session cookie values in every mode:
// no value may cause a 5xx, and a rejected one is answered with a sentence.
func FuzzSessionCookie(f *testing.F) {
	for _, seed := range []string{
		"app1." + strings.Repeat("A", 43), strings.Repeat("A", 103), "../../etc/passwd", "",
		"eyJhbGciOiJub25lIn0.e30.", "a\r\nSet-Cookie: x=y", strings.Repeat("x", 5000), "é",
	} {
		f.Add(seed)
	}
	jwtSt, _ := jwtstore.New(jwtstore.Options{Keys: []session.Key{{ID: "k1", Secret: bytes.Repeat([]byte{1}, 32)}}})
	h, err := NewHandler(Options{
		Replica: "app1",
		Stores:  Stores{session.Sticky: memstore.New("app1", session.Timeouts{Idle: time.Hour}), session.JWT: jwtSt},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, value string) {
		for mode, name := range map[string]string{"sticky": memstore.CookieName, "jwt": jwtstore.CookieName} {
			r := httptest.NewRequest("POST", "/api/cart/items?mode="+mode, strings.NewReader(`{"product_id":"p1"}`))
			r.Header.Set("Cookie", name+"="+value)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code >= 500 {
				t.Fatalf("%s cookie %q: status %d", mode, value, w.Code)
			}
			if w.Code != 200 && !strings.Contains(w.Body.String(), `"error"`) {
				t.Fatalf("%s cookie %q: %d without an error sentence", mode, value, w.Code)
			}
		}
	})
}

func TestIdempotencyKeyAppliesARetryOnce(t *testing.T) {
	srv := newTestServer(t)
	for _, mode := range []session.Mode{session.Sticky, session.JWT} {
		t.Run(string(mode), func(t *testing.T) {
			c := newClient(t, srv, mode)
			add := `{"product_id":"p2","qty":2}`
			first := c.do("POST", "/api/cart/items", add, "Idempotency-Key", "key-0001-abcdef")
			again := c.do("POST", "/api/cart/items", add, "Idempotency-Key", "key-0001-abcdef")
			if first.status != 200 || again.status != 200 || again.header.Get("Idempotent-Replayed") != "true" || first.header.Get("Idempotent-Replayed") != "" {
				t.Fatalf("first %d %v, retry %d %v", first.status, first.header.Get("Idempotent-Replayed"), again.status, again.header.Get("Idempotent-Replayed"))
			}
			if got := c.cart().Count; got != 2 {
				t.Errorf("count = %d after a retried add of 2, want 2", got)
			}
			if r := c.do("POST", "/api/cart/items", `{"product_id":"p3"}`, "Idempotency-Key", "key-0001-abcdef"); r.status != 422 || !strings.Contains(r.body, "different change") {
				t.Errorf("key reused for another add: %d %s", r.status, r.body)
			}
			if r := c.do("POST", "/api/cart/items", add, "Idempotency-Key", "short"); r.status != 400 {
				t.Errorf("malformed key: %d", r.status)
			}
			if r := c.do("POST", "/api/cart/items", add, "Idempotency-Key", "key-0002-abcdef"); r.status != 200 || c.cart().Count != 4 {
				t.Errorf("a new key is a new add: %d, count %d", r.status, c.cart().Count)
			}
			// The shop's add forms carry a key in their action, where nginx sees it.
			for i := 0; i < 2; i++ {
				if r := c.form("/cart/add?idem=form-key-0001", url.Values{"product_id": {"p7"}}); r.status != 303 {
					t.Fatalf("form add: %d", r.status)
				}
			}
			if got := c.cart(); got.Count != 5 {
				t.Errorf("count = %d after a form add sent twice, want 5", got.Count)
			}
		})
	}
	page := newClient(t, srv, session.Sticky).do("GET", "/", "")
	if n := strings.Count(page.body, `action="/cart/add?idem=`); n != 10 {
		t.Errorf("%d add forms carry an idempotency key, want 10", n)
	}
}

// TestConcurrentAddsAreNotLost: 20 adds at once from one sticky browser
// to one replica; each save that loses the race reloads and reapplies.
func TestConcurrentAddsAreNotLost(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv, session.Sticky)
	c.do("POST", "/api/cart/items", `{"product_id":"p1"}`)
	var wg sync.WaitGroup
	statuses := make(chan int, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", srv.URL+"/api/cart/items", strings.NewReader(fmt.Sprintf(`{"product_id":"p%d"}`, 1+i%10)))
			for _, ck := range c.http.Jar.Cookies(req.URL) {
				req.AddCookie(ck)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != 200 {
			t.Errorf("a concurrent add answered %d", s)
		}
	}
	if got := c.cart().Count; got != 21 {
		t.Errorf("count = %d after 1 + 20 concurrent adds, want 21", got)
	}
}

// TestCartPageExplainsTheJWTLastWriter: the cart page in jwt mode, and
// only there, says what the token does to concurrent changes.
func TestCartPageExplainsTheJWTLastWriter(t *testing.T) {
	srv := newTestServer(t)
	for _, mode := range []session.Mode{session.JWT, session.Sticky} {
		c := newClient(t, srv, mode)
		if r := c.do("POST", "/api/cart/items", `{"product_id":"p1"}`); r.status != 200 {
			t.Fatalf("%s add = %d %s", mode, r.status, r.body)
		}
		body := c.do("GET", "/cart", "").body
		got := strings.Contains(body, `data-testid="mode-note"`) && strings.Contains(body, "keeps the token that arrives last")
		if want := mode == session.JWT; got != want {
			t.Errorf("%s cart page explains the last writer: %v, want %v", mode, got, want)
		}
	}
}

// TestTooLateChangesAreNotApplied: a change that reaches the replica
// after the load balancer stopped waiting for it (X-Request-Start plus
// X-Request-Budget, as nginx stamps them) is refused and changes nothing,
// keyed or not, in every mode: a paused replica, unpaused, runs the
// requests it held long after nginx gave up on them (issue 31). One
// within its budget is applied.
func TestTooLateChangesAreNotApplied(t *testing.T) {
	srv := newTestServer(t)
	stamp := func(ago time.Duration) string {
		return strconv.FormatFloat(float64(time.Now().Add(-ago).UnixMilli())/1000, 'f', 3, 64)
	}
	for _, mode := range []session.Mode{session.Sticky, session.JWT} {
		t.Run(string(mode), func(t *testing.T) {
			c := newClient(t, srv, mode)
			if r := c.do("POST", "/api/cart/items", `{"product_id":"p1"}`, "X-Request-Start", stamp(time.Second), "X-Request-Budget", "5"); r.status != 200 {
				t.Fatalf("an add within its budget: %d %s", r.status, r.body)
			}
			for _, key := range []string{"", "late-key-0001"} {
				r := c.do("POST", "/api/cart/items", `{"product_id":"p2"}`, "X-Request-Start", stamp(6*time.Second), "X-Request-Budget", "5", "Idempotency-Key", key)
				if r.status != 503 || !strings.Contains(r.body, "stopped waiting for this change") || r.header.Get("Set-Cookie") != "" {
					t.Errorf("an add 1 s past its budget (key %q): %d %s, cookie %q; want 503 saying it was not applied, no cookie", key, r.status, r.body, r.header.Get("Set-Cookie"))
				}
			}
			if got := c.cart(); got.Count != 1 {
				t.Errorf("cart holds %d items; want only the add within its budget", got.Count)
			}
			// The same key, sent again in time (a client's retry), is applied.
			r := c.do("POST", "/api/cart/items", `{"product_id":"p2"}`, "X-Request-Start", stamp(0), "X-Request-Budget", "5", "Idempotency-Key", "late-key-0001")
			if r.status != 200 || r.header.Get("Idempotent-Replayed") != "" || c.cart().Count != 2 {
				t.Errorf("the refused key sent again in time: %d, replayed %q, count %d; want applied", r.status, r.header.Get("Idempotent-Replayed"), c.cart().Count)
			}
		})
	}
}

func TestAnswerByIgnoresNonsense(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv, session.Sticky)
	for _, h := range [][2]string{{"abc", "5"}, {"1", "x"}, {"1", "-5"}, {"1", "100000"}, {"", "5"}} {
		if r := c.do("POST", "/api/cart/items", `{"product_id":"p1"}`, "X-Request-Start", h[0], "X-Request-Budget", h[1]); r.status != 200 {
			t.Errorf("X-Request-Start %q, X-Request-Budget %q: %d %s; want the headers ignored", h[0], h[1], r.status, r.body)
		}
	}
}

// confirmingStore is a store whose replays must be confirmed
// (session.Confirmer), as redis mode's are, with the answer confirm gives.
type confirmingStore struct {
	session.Store
	confirm func() error
}

func (s confirmingStore) Confirm(http.ResponseWriter, *http.Request, *session.Session) error {
	return s.confirm()
}

// TestReplayIsConfirmedFirst: a retried keyed add that the session already
// holds is acknowledged only when its store confirms the session is as
// durable as a save (redis: replicated). Otherwise the retry would
// acknowledge a change that had been answered 503, not replicated, and
// that a failover then loses (issue 31).
func TestReplayIsConfirmedFirst(t *testing.T) {
	confirmErr := error(nil)
	h, err := NewHandler(Options{
		Replica: "app1",
		Stores: Stores{session.Redis: confirmingStore{
			Store:   memstore.New("app1", session.Timeouts{Idle: time.Hour}),
			confirm: func() error { return confirmErr },
		}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := newClient(t, srv, session.Redis)
	add := `{"product_id":"p4"}`
	if r := c.do("POST", "/api/cart/items", add, "Idempotency-Key", "replay-key-01"); r.status != 200 {
		t.Fatalf("add: %d %s", r.status, r.body)
	}
	confirmErr = &session.UnavailableError{Title: "Change not yet replicated", Message: "not replicated", Err: errors.New("WAIT")}
	if r := c.do("POST", "/api/cart/items", add, "Idempotency-Key", "replay-key-01"); r.status != 503 || r.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("replay that cannot be confirmed: %d, replayed %q; want 503, not replayed", r.status, r.header.Get("Idempotent-Replayed"))
	}
	confirmErr = nil
	if r := c.do("POST", "/api/cart/items", add, "Idempotency-Key", "replay-key-01"); r.status != 200 || r.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay confirmed: %d, replayed %q; want 200, replayed", r.status, r.header.Get("Idempotent-Replayed"))
	}
	if got := c.cart().Count; got != 1 {
		t.Errorf("cart holds %d, want the one add", got)
	}
}
