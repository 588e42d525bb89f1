package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/sessiondemo/shop/web/session"
)

// cookieless is a client that keeps no cookies and follows no redirects:
// everything it keeps travels in the URLs it is handed.
func cookieless(t *testing.T) *client {
	return &client{t: t, srv: newTestServer(t), http: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var stickyIDPattern = regexp.MustCompile(`^app1\.[A-Za-z0-9_-]{43}$`)

func decodeCart(t *testing.T, r response) cartJSON {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var c cartJSON
	if err := json.Unmarshal([]byte(r.body), &c); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	return c
}

// urlAffinity is the query of sticky mode with url affinity.
const urlAffinity = "mode=sticky&affinity=url"

func TestURLAffinityCarriesTheSessionInTheQuery(t *testing.T) {
	c := cookieless(t)
	r := c.do("POST", "/api/cart/items?"+urlAffinity, `{"product_id":"p1","qty":2}`)
	first := decodeCart(t, r)
	if !stickyIDPattern.MatchString(first.SID) {
		t.Fatalf(`the first add answered "sid" %q, want app1.<43 characters>`, first.SID)
	}
	if sc := r.header.Values("Set-Cookie"); strings.Contains(strings.Join(sc, ";"), "sticky_sid") {
		t.Errorf("url affinity set the session cookie: %q", sc)
	}
	q := urlAffinity + "&sid=" + first.SID
	decodeCart(t, c.do("POST", "/api/cart/items?"+q, `{"product_id":"p3"}`))
	got := decodeCart(t, c.do("GET", "/api/cart?"+q, ""))
	if got.Count != 3 || got.SID != first.SID || got.Event != "found" {
		t.Errorf("cart read with the sid: count %d, sid %q, event %q; want 3 items, the same sid, found", got.Count, got.SID, got.Event)
	}
	// Without the sid, the same cookieless client has no session.
	if none := decodeCart(t, c.do("GET", "/api/cart?"+urlAffinity, "")); none.Count != 0 || none.SID != "" || none.Event != "created" {
		t.Errorf("without sid: count %d, sid %q, event %q; want an empty new session and no sid", none.Count, none.SID, none.Event)
	}
	// A sid this shop did not issue is refused with a sentence, and no
	// cookie is expired for it.
	bad := c.do("GET", "/api/cart?"+urlAffinity+"&sid=app1.forged", "")
	if bad.status != 400 || !strings.Contains(bad.body, "query parameter") || len(bad.header.Values("Set-Cookie")) != 0 {
		t.Errorf("forged sid: %d %s, cookies %q", bad.status, bad.body, bad.header.Values("Set-Cookie"))
	}
}

func TestSIDIsIgnoredOutsideURLAffinity(t *testing.T) {
	srv := newTestServer(t)
	// A url-affinity session with one item, by a cookieless client.
	planter := &client{t: t, srv: srv, http: &http.Client{}}
	planted := decodeCart(t, planter.do("POST", "/api/cart/items?"+urlAffinity, `{"product_id":"p7"}`)).SID
	if planted == "" {
		t.Fatal("no sid for the url-affinity session")
	}
	for _, tc := range []struct{ name, query string }{
		{"cookie affinity", "mode=sticky&affinity=cookie"},
		{"ip affinity", "mode=sticky&affinity=ip"},
		{"default affinity", "mode=sticky"},
		{"jwt mode with url affinity", "mode=jwt&affinity=url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, srv, session.Sticky)
			got := decodeCart(t, c.do("GET", "/api/cart?"+tc.query+"&sid="+planted, ""))
			if got.Count != 0 || got.SID != "" || got.Event != "created" {
				t.Errorf("a planted sid was used: count %d, sid %q, event %q", got.Count, got.SID, got.Event)
			}
			// Adding with the planted sid changes this client's own session.
			decodeCart(t, c.do("POST", "/api/cart/items?"+tc.query+"&sid="+planted, `{"product_id":"p2"}`))
			if own := decodeCart(t, c.do("GET", "/api/cart?"+tc.query, "")); own.Count != 1 || own.SID != "" {
				t.Errorf("own cart count %d, sid %q; want the one add and no sid", own.Count, own.SID)
			}
			page := c.do("GET", "/?"+tc.query+"&sid="+planted, "")
			if strings.Contains(page.body, planted) {
				t.Errorf("the page shows the planted sid")
			}
			for _, u := range localURLs(t, page.body) {
				if mustQuery(t, u).Has("sid") {
					t.Errorf("%s carries a sid", u)
				}
			}
		})
	}
	if still := decodeCart(t, planter.do("GET", "/api/cart?"+urlAffinity+"&sid="+planted, "")); still.Count != 1 {
		t.Errorf("the url session holds %d items, want its 1", still.Count)
	}
}

func TestURLAffinityKeepsCookieSessionApart(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv, session.Sticky)
	decodeCart(t, c.do("POST", "/api/cart/items", `{"product_id":"p1"}`)) // cookie affinity: cookie session
	got := decodeCart(t, c.do("GET", "/api/cart?"+urlAffinity, ""))
	if got.Count != 0 || got.Event != "created" {
		t.Errorf("url affinity read the cookie session: count %d, event %q", got.Count, got.Event)
	}
	u, _ := url.Parse(srv.URL)
	before := c.http.Jar.Cookies(u)
	decodeCart(t, c.do("POST", "/api/cart/items?"+urlAffinity, `{"product_id":"p2"}`))
	if after := c.http.Jar.Cookies(u); len(after) != len(before) || cookieValue(after, "sticky_sid") != cookieValue(before, "sticky_sid") {
		t.Errorf("a url-affinity save touched the cookies: %v -> %v", before, after)
	}
	if back := decodeCart(t, c.do("GET", "/api/cart", "")); back.Count != 1 || back.Items[0].ProductID != "p1" {
		t.Errorf("cookie session after url-affinity adds: %+v", back.Items)
	}
}

func cookieValue(cs []*http.Cookie, name string) string {
	for _, c := range cs {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// localURLs returns every href and form action of a page that stays on the
// site, static files aside.
func localURLs(t *testing.T, body string) []string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && (n.Data == "a" || n.Data == "form") {
			for _, a := range n.Attr {
				if (a.Key == "href" || a.Key == "action") && strings.HasPrefix(a.Val, "/") && !strings.HasPrefix(a.Val, "/static/") && !strings.HasPrefix(a.Val, "#") {
					out = append(out, a.Val)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return out
}

func TestURLAffinityPagesCarryTheQuery(t *testing.T) {
	c := cookieless(t)
	// Before the session exists, links carry mode and affinity.
	for _, u := range localURLs(t, c.do("GET", "/?"+urlAffinity, "").body) {
		v := mustQuery(t, u)
		if v.Get("mode") != "sticky" || v.Get("affinity") != "url" || v.Has("sid") {
			t.Errorf("before the session, %s does not carry mode=sticky&affinity=url alone", u)
		}
	}

	// The first form creates the session; its redirect carries it.
	r := c.form("/cart/add?idem=first-add-0001&"+urlAffinity, url.Values{"product_id": {"p4"}, "return_to": {"/cart"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("add form: %d %s", r.status, r.body)
	}
	loc, err := url.Parse(r.header.Get("Location"))
	if err != nil || loc.Path != "/cart" {
		t.Fatalf("redirect to %q", r.header.Get("Location"))
	}
	sid := loc.Query().Get("sid")
	if !stickyIDPattern.MatchString(sid) || loc.Query().Get("mode") != "sticky" || loc.Query().Get("affinity") != "url" {
		t.Fatalf("the redirect %s does not carry mode, affinity and the new sid", loc)
	}

	// Every link and form of both pages carries all three; the cart page
	// shows the item the form added.
	for _, path := range []string{"/", "/cart"} {
		page := c.do("GET", path+"?"+loc.RawQuery, "")
		if page.status != 200 {
			t.Fatalf("GET %s: %d", path, page.status)
		}
		urls := localURLs(t, page.body)
		if len(urls) < 5 {
			t.Fatalf("%s has only %d links and forms: %v", path, len(urls), urls)
		}
		for _, u := range urls {
			v := mustQuery(t, u)
			if v.Get("mode") != "sticky" || v.Get("affinity") != "url" || v.Get("sid") != sid || len(v["sid"]) != 1 {
				t.Errorf("%s: %s does not carry mode=sticky&affinity=url&sid once", path, u)
			}
		}
		if got := page.header.Get("Referrer-Policy"); got != "no-referrer" {
			t.Errorf("%s: Referrer-Policy %q, want no-referrer", path, got)
		}
		if path == "/cart" && !strings.Contains(page.body, `data-product-id="p4"`) {
			t.Errorf("the cart page does not show the added item")
		}
	}

	// The next form, with the sid, redirects with the same sid.
	r = c.form("/cart/update?"+loc.RawQuery, url.Values{"product_id": {"p4"}, "qty": {"3"}, "return_to": {"/cart"}})
	if next, _ := url.Parse(r.header.Get("Location")); r.status != http.StatusSeeOther || next.Query().Get("sid") != sid {
		t.Errorf("update form: %d, redirect %q, want the same sid", r.status, r.header.Get("Location"))
	}
	if got := decodeCart(t, c.do("GET", "/api/cart?"+loc.RawQuery, "")); got.Count != 3 {
		t.Errorf("count %d after setting the quantity to 3", got.Count)
	}
}

func mustQuery(t *testing.T, u string) url.Values {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatalf("%q: %v", u, err)
	}
	return p.Query()
}

func TestModeFormCarriesURLAffinity(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv, session.Sticky)
	for _, tc := range []struct {
		name, action string
		form         url.Values
		want         string
	}{
		{"into url affinity", "/mode", url.Values{"mode": {"sticky"}, "affinity": {"url"}, "return_to": {"/cart"}}, "/cart?affinity=url&mode=sticky"},
		{"staying in url keeps the sid", "/mode?" + urlAffinity + "&sid=app1.x", url.Values{"mode": {"sticky"}, "return_to": {"/"}}, "/?affinity=url&mode=sticky&sid=app1.x"},
		{"out to cookie affinity", "/mode?" + urlAffinity + "&sid=app1.x", url.Values{"mode": {"sticky"}, "affinity": {"cookie"}, "return_to": {"/"}}, "/"},
		{"out to redis mode", "/mode?" + urlAffinity + "&sid=app1.x", url.Values{"mode": {"redis"}, "return_to": {"/"}}, "/"},
		{"into ip affinity", "/mode", url.Values{"mode": {"sticky"}, "affinity": {"ip"}, "return_to": {"/"}}, "/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.form(tc.action, tc.form)
			if r.status != http.StatusSeeOther || r.header.Get("Location") != tc.want {
				t.Errorf("%d, Location %q, want %q", r.status, r.header.Get("Location"), tc.want)
			}
		})
	}
}

func TestIPAffinityShowsTheAddressNginxSaw(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv, session.Sticky)
	page := c.do("GET", "/?mode=sticky&affinity=ip", "", "X-Real-IP", "172.18.0.1")
	for _, want := range []string{"nginx sees this browser as", ">172.18.0.1<", "Docker's gateway address", "same replica"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("the ip-affinity page does not say %q", want)
		}
	}
	if p := c.do("GET", "/?mode=sticky&affinity=ip", "", "X-Real-IP", "<b>not an address</b>"); strings.Contains(p.body, "not an address") {
		t.Errorf("an X-Real-IP that is no address reached the page")
	}
	if p := c.do("GET", "/?mode=sticky&affinity=cookie", "", "X-Real-IP", "172.18.0.1"); strings.Contains(p.body, "172.18.0.1") {
		t.Errorf("cookie affinity shows the client address")
	}
}

func TestAffinityToggleListsEveryTechnique(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv, session.Sticky)
	body := c.do("GET", "/", "").body
	for _, a := range []string{"cookie", "url", "ip"} {
		if !strings.Contains(body, `data-testid="affinity-`+a+`"`) {
			t.Errorf("the affinity toggle has no %s button", a)
		}
	}
}

func TestAffinitySwitchSaysWhatChanged(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv, session.Sticky)
	for a, want := range map[string]string{"url": "rides in every link", "ip": "hashes it", "cookie": "lb_route cookie"} {
		if r := c.form("/mode", url.Values{"mode": {"sticky"}, "affinity": {a}, "return_to": {"/"}}); r.status != http.StatusSeeOther {
			t.Fatalf("switch to %s: %d", a, r.status)
		}
		page := c.do("GET", "/?mode=sticky&affinity="+a, "")
		if !strings.Contains(page.body, want) {
			t.Errorf("after switching to %s the page does not say %q", a, want)
		}
	}
}

// TestErrorPagesCarryTheSessionTheyServed: an error page after a session
// was loaded shows that session, and its links carry it on in url
// affinity; a sid the replica does not hold (lost) is not handed on, so
// the next click does not report the loss again.
func TestErrorPagesCarryTheSessionTheyServed(t *testing.T) {
	c := cookieless(t)
	sid := decodeCart(t, c.do("POST", "/api/cart/items?"+urlAffinity, `{"product_id":"p1"}`)).SID
	lost := "app1." + strings.Repeat("A", 43)
	for _, tc := range []struct {
		name, sid, event string
		carried          bool
	}{
		{"held", sid, "found", true},
		{"lost", lost, "lost", false},
	} {
		r := c.form("/cart/add?"+urlAffinity+"&sid="+tc.sid, url.Values{"product_id": {"p999"}})
		if r.status != http.StatusBadRequest {
			t.Fatalf("%s: unknown product = %d, want 400", tc.name, r.status)
		}
		if !strings.Contains(r.body, `data-testid="session-event">`+tc.event+`<`) {
			t.Errorf("%s: the error page does not show the session as %s", tc.name, tc.event)
		}
		links := localURLs(t, r.body)
		if len(links) == 0 {
			t.Fatalf("%s: the error page has no links", tc.name)
		}
		for _, u := range links {
			if v := mustQuery(t, u); v.Has("sid") != tc.carried || tc.carried && v.Get("sid") != tc.sid {
				t.Errorf("%s: link %q; want the sid carried: %v", tc.name, u, tc.carried)
			}
		}
	}
}
