package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"
)

// The sticky techniques other than cookie, end to end through nginx: url
// (the session ID in the query names the replica) and ip (ip_hash of the
// client address nginx takes from X-Forwarded-For).

// urlQuery is the query of sticky mode with url affinity.
const urlQuery = "mode=sticky&affinity=url"

// bareClient keeps no cookies and follows no redirects: what it keeps
// travels in the URLs it is handed.
var bareClient = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// affinityAnswer is one response as these tests read it.
type affinityAnswer struct {
	status   int
	replica  string
	location string
	cookies  []string
	cart     struct {
		SID   string `json:"sid"`
		Count int    `json:"count"`
		Items []struct {
			ProductID string `json:"product_id"`
			Qty       int    `json:"qty"`
		} `json:"items"`
		Event string `json:"session_event"`
		Error string `json:"error"`
	}
	body string
}

// call sends one request through lb with the headers and returns what came
// back; a transport error fails the test.
func call(t *testing.T, method, path, body string, header map[string]string) affinityAnswer {
	t.Helper()
	req, err := http.NewRequest(method, stack.lbURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(body, "{") {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := bareClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := affinityAnswer{status: resp.StatusCode, replica: resp.Header.Get("X-Replica"), location: resp.Header.Get("Location"), body: string(raw)}
	for _, c := range resp.Cookies() {
		a.cookies = append(a.cookies, c.Name)
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(raw, &a.cart)
	}
	return a
}

// TestURLAffinityWithoutCookies: a client with no cookie jar keeps its
// sticky session through nginx because the session ID rides in the query
// and names its replica. The request that creates the session and the next
// one meet on one replica, for every one of several new sessions (which
// nginx spreads round robin while they have no sid yet).
func TestURLAffinityWithoutCookies(t *testing.T) {
	needStack(t)
	first := call(t, "POST", "/api/cart/items?"+urlQuery, `{"product_id":"p1"}`, nil)
	if first.status != 200 || first.cart.SID == "" {
		t.Fatalf("first add: %d, sid %q: %s", first.status, first.cart.SID, first.body)
	}
	if prefix, _, _ := strings.Cut(first.cart.SID, "."); prefix != first.replica {
		t.Errorf("sid %s… was issued by %s but names %s", first.cart.SID[:10], first.replica, prefix)
	}
	for _, c := range first.cookies {
		if c == "sticky_sid" || c == "lb_route" {
			t.Errorf("url affinity set the cookie %s", c)
		}
	}
	q := urlQuery + "&sid=" + url.QueryEscape(first.cart.SID)
	seq := []string{first.replica}
	adds := 1
	for i := 1; i <= 10; i++ {
		var a affinityAnswer
		if i%2 == 1 {
			a = call(t, "POST", "/api/cart/items?"+q, fmt.Sprintf(`{"product_id":"p%d"}`, 1+i), nil)
			adds++
		} else {
			a = call(t, "GET", "/api/cart?"+q, "", nil)
		}
		if a.status != 200 || a.cart.Count != adds || a.cart.SID != first.cart.SID {
			t.Fatalf("request %d: %d, count %d (want %d), same sid %v: %s", i, a.status, a.cart.Count, adds, a.cart.SID == first.cart.SID, a.body)
		}
		seq = append(seq, a.replica)
	}
	final := call(t, "GET", "/api/cart?"+q, "", nil)
	seq = append(seq, final.replica)
	t.Logf("one cookieless session: 12 requests served by %s; the cart holds %d items in %d lines", strings.Join(seq, " "), final.cart.Count, len(final.cart.Items))
	for i, r := range seq {
		if r != first.replica {
			t.Errorf("request %d went to %s, the session is on %s", i, r, first.replica)
		}
	}
	if final.cart.Count != 6 || len(final.cart.Items) != 6 {
		t.Errorf("the cart holds %d items in %d lines, want the 6 adds", final.cart.Count, len(final.cart.Items))
	}

	// Through the pages: a form creates the session, its redirect carries
	// the sid, and the page it leads to (the next click) is on the same
	// replica, for each of six new sessions.
	created := map[string]int{}
	for i := 0; i < 6; i++ {
		post := call(t, "POST", "/cart/add?"+urlQuery, "product_id=p9&return_to=/cart",
			map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "same-origin"})
		loc, err := url.Parse(post.location)
		if post.status != http.StatusSeeOther || err != nil || loc.Query().Get("sid") == "" {
			t.Fatalf("form add %d: %d, Location %q", i, post.status, post.location)
		}
		next := call(t, "GET", loc.RequestURI(), "", nil)
		if next.status != 200 || next.replica != post.replica || !strings.Contains(next.body, `data-product-id="p9"`) {
			t.Errorf("session %d: created on %s, the next click landed on %s (status %d, item shown %v)",
				i, post.replica, next.replica, next.status, strings.Contains(next.body, `data-product-id="p9"`))
		}
		created[post.replica]++
	}
	t.Logf("six new form sessions were created on %v; each next click landed on the same replica", created)
	if len(created) < 2 {
		t.Errorf("six new sessions were all created on %v; without a sid nginx should spread them", created)
	}

	// nginx's access log names the paths, never the query with the sid.
	// It is buffered (flush=1s), so the lines come within a second or so.
	var raw []byte
	waitFor(t, 10*time.Second, "nginx's access log to list the adds", func() bool {
		logs, err := service(t, "lb").Logs(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer logs.Close()
		raw, _ = io.ReadAll(logs)
		return strings.Contains(string(raw), `"POST /api/cart/items"`)
	})
	if strings.Contains(string(raw), first.cart.SID) || strings.Contains(string(raw), "sid=") {
		t.Errorf("nginx's log holds a session ID")
	}
}

// ipHashIndex is nginx's ip_hash for an IPv4 address (ngx_http_upstream_ip_hash_module.c):
// the first three octets folded into 89 by hash = (hash*113 + octet) % 6271,
// then hash modulo the total weight picks a server. With n servers of
// weight 1 and none down, the result is the server's index.
func ipHashIndex(a netip.Addr, n int) int {
	b := a.As4()
	h := 89
	for _, o := range b[:3] {
		h = (h*113 + int(o)) % 6271
	}
	return h % n
}

// TestIPAffinity: nginx hashes the client address it takes from
// X-Forwarded-For (trusted from Docker's private ranges). Each of 13
// addresses stays on one replica; addresses nginx's hash puts in the same
// bucket share a replica and different buckets get different replicas, so
// together they use all three. The last address shares a /24 with the
// first: only three octets count. Without the header every client is the
// gateway, and all land on one replica.
func TestIPAffinity(t *testing.T) {
	needStack(t)
	// Addresses from the documentation and benchmarking ranges (RFC 5737,
	// RFC 2544): only header values, no traffic goes to them. Their hash
	// buckets (ipHashIndex), so the expected spread is known in advance:
	// bucket 0: 192.0.2.10, 198.51.100.10, 203.0.113.10, 198.18.0.10,
	// 198.18.201.10, 198.19.40.10, 198.19.250.10 and 192.0.2.200;
	// bucket 1: 198.18.7.10, 198.18.100.10, 198.19.77.10;
	// bucket 2: 198.18.14.10, 198.19.3.10.
	// Which replica serves which bucket depends on the order of nginx's
	// peer list (with `resolve` it is not the order of the config), so the
	// test checks the grouping: one replica per bucket, three in all.
	addrs := []string{
		"192.0.2.10", "198.51.100.10", "203.0.113.10",
		"198.18.0.10", "198.18.7.10", "198.18.14.10", "198.18.100.10", "198.18.201.10",
		"198.19.3.10", "198.19.40.10", "198.19.77.10", "198.19.250.10",
		"192.0.2.200",
	}
	const rounds = 4
	n := len(replicas(t)) // three, the stack's default
	byBucket := map[int]map[string]bool{}
	landed := map[string]string{}
	var lines []string
	for _, s := range addrs {
		a := netip.MustParseAddr(s)
		bucket := ipHashIndex(a, n)
		seen := map[string]int{}
		for i := 0; i < rounds; i++ {
			r := call(t, "GET", "/api/cart?mode=sticky&affinity=ip", "", map[string]string{"X-Forwarded-For": s})
			if r.status != 200 {
				t.Fatalf("%s: status %d: %s", s, r.status, r.body)
			}
			seen[r.replica]++
		}
		var rs []string
		for r := range seen {
			rs = append(rs, r)
		}
		sort.Strings(rs)
		lines = append(lines, fmt.Sprintf("%-15s bucket %d -> %s", s, bucket, strings.Join(rs, ",")))
		if len(rs) != 1 {
			t.Errorf("%s was served by %v over %d requests, want one replica", s, seen, rounds)
			continue
		}
		landed[s] = rs[0]
		if byBucket[bucket] == nil {
			byBucket[bucket] = map[string]bool{}
		}
		byBucket[bucket][rs[0]] = true
	}
	t.Logf("ip affinity, %d requests per address:\n%s", rounds, strings.Join(lines, "\n"))
	replicaOf := map[string]int{}
	for b, rs := range byBucket {
		if len(rs) != 1 {
			t.Errorf("addresses of hash bucket %d landed on %v, want one replica", b, rs)
		}
		for r := range rs {
			if other, ok := replicaOf[r]; ok && other != b {
				t.Errorf("%s serves hash buckets %d and %d, want one replica per bucket", r, other, b)
			}
			replicaOf[r] = b
		}
	}
	if len(replicaOf) != 3 {
		t.Errorf("the %d addresses used %d replicas %v, want all 3", len(addrs), len(replicaOf), replicaOf)
	}
	if landed["192.0.2.200"] != landed["192.0.2.10"] {
		t.Errorf("192.0.2.10 and 192.0.2.200 share their first three octets but landed on %s and %s", landed["192.0.2.10"], landed["192.0.2.200"])
	}

	// The pitfall: no header, so every client is Docker's gateway.
	gateway := map[string]int{}
	for i := 0; i < 10; i++ {
		r := call(t, "GET", "/api/cart?mode=sticky&affinity=ip", "", nil)
		if r.status != 200 {
			t.Fatalf("without X-Forwarded-For: %d %s", r.status, r.body)
		}
		gateway[r.replica]++
	}
	page := call(t, "GET", "/?mode=sticky&affinity=ip", "", nil)
	addr := textBetween(page.body, `data-testid="client-addr">`, "<")
	t.Logf("without X-Forwarded-For: 10 requests served by %v; the page says nginx sees %q", gateway, addr)
	if len(gateway) != 1 {
		t.Errorf("clients without X-Forwarded-For landed on %v, want one replica (they all share the gateway address)", gateway)
	}
	if a, err := netip.ParseAddr(addr); err != nil || !a.IsPrivate() {
		t.Errorf("the ip-affinity page shows %q as the address nginx sees, want Docker's gateway (a private address)", addr)
	}
	if !strings.Contains(page.body, "every browser on this machine arrives from Docker") {
		t.Errorf("the ip-affinity page does not explain the gateway pitfall")
	}
	// A forwarded address from the trusted side is what the page shows.
	spoofed := call(t, "GET", "/?mode=sticky&affinity=ip", "", map[string]string{"X-Forwarded-For": "198.18.7.10"})
	if got := textBetween(spoofed.body, `data-testid="client-addr">`, "<"); got != "198.18.7.10" || spoofed.replica != landed["198.18.7.10"] {
		t.Errorf("with X-Forwarded-For 198.18.7.10 the page shows %q on %s, want that address on %s", got, spoofed.replica, landed["198.18.7.10"])
	}
}

// textBetween returns the text after the first start up to end, or "".
func textBetween(s, start, end string) string {
	_, after, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(after, end)
	return v
}

// TestURLAffinityBrowserWithoutCookies: a person whose browser blocks
// cookies opens the shop in url affinity, adds two products through the
// page's forms, and finds both in the cart: the session travelled in the
// links. The browser stored no cookie at all.
func TestURLAffinityBrowserWithoutCookies(t *testing.T) {
	needStack(t)
	ctx := newCookielessBrowser(t)
	dir := screenshotDir(t)
	step := startBrowser(t, ctx, 1280, 900, 2*time.Minute)
	base := stack.lbURL
	err := chromedp.Do(step,
		chromedp.Navigate(base+"/?"+urlQuery),
		chromedp.WaitVisible(byTestID("product-card")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="affinity-url"][aria-pressed="true"]`)),
		addToCart("p2"),
		addToCart("p6"),
		click(byTestID("cart-link")),
		cartShows("p2", "p6"),
		screenshot(t, dir, "cart-sticky-url"),
	)
	if err != nil {
		t.Fatalf("shop with cookies blocked in url affinity: %v", err)
	}
	loc, err := chromedp.Run(step, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(loc)
	sid := u.Query().Get("sid")
	served, _ := chromedp.Run(step, chromedp.Text(byTestID("replica")))
	count, _ := chromedp.Run(step, chromedp.Text(byTestID("cart-count")))
	trail, _ := chromedp.Run(step, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="trail-item"]').length`))
	if prefix, _, _ := strings.Cut(sid, "."); sid == "" || prefix != served {
		t.Errorf("the cart page's URL %s carries sid %q; want one that names the serving replica %s", u.Path, prefix, served)
	}
	if strings.TrimSpace(count) != "2" {
		t.Errorf("cart count %q, want 2", count)
	}
	cookies, err := chromedp.CallBrowser(step, storage.GetCookies, storage.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cookies.Cookies {
		names = append(names, c.Name)
	}
	if len(names) != 0 {
		t.Errorf("the browser stored cookies %v, want none (cookies are blocked)", names)
	}
	// The trail of replicas lives in a cookie the app sets on every page:
	// blocked, each page shows only itself.
	if trail != 1 {
		t.Errorf("the page shows a trail of %d replicas; with cookies blocked it can only know itself", trail)
	}
	t.Logf("cookieless browser: cart of %s items on %s, sid prefix %q, %d cookies stored, trail of %d", strings.TrimSpace(count), served, strings.SplitN(sid, ".", 2)[0], len(names), trail)
}

// TestAffinityToggleInTheBrowser: a person switches the sticky technique
// with the toggle under the replica badge, through all three, and each
// page says what the technique means; ip affinity names the address nginx
// saw, Docker's gateway.
func TestAffinityToggleInTheBrowser(t *testing.T) {
	needStack(t)
	ctx, base := newBrowser(t)
	dir := screenshotDir(t)
	step := startBrowser(t, ctx, 1280, 900, 2*time.Minute)
	pressed := func(a string) chromedp.CSS {
		return chromedp.CSS(fmt.Sprintf(`[data-testid="affinity-toggle"][data-affinity=%q] [data-testid="affinity-%s"][aria-pressed="true"]`, a, a))
	}
	err := chromedp.Do(step,
		chromedp.Navigate(base+"/?mode=sticky"),
		chromedp.WaitVisible(pressed("cookie")),
		click(byTestID("affinity-url")),
		chromedp.WaitVisible(pressed("url")),
		addToCart("p5"),
	)
	if err != nil {
		t.Fatalf("switch to url affinity and add: %v", err)
	}
	loc, _ := chromedp.Run(step, chromedp.Location())
	if u, err := url.Parse(loc); err != nil || u.Query().Get("sid") == "" {
		t.Errorf("after an add in url affinity the page is %q, without a sid", loc)
	}
	err = chromedp.Do(step,
		click(byTestID("affinity-ip")),
		chromedp.WaitVisible(pressed("ip")),
		chromedp.WaitVisible(byTestID("client-addr")),
		screenshot(t, dir, "shop-sticky-ip"),
	)
	if err != nil {
		t.Fatalf("switch to ip affinity: %v", err)
	}
	loc, _ = chromedp.Run(step, chromedp.Location())
	note, _ := chromedp.Run(step, chromedp.Text(byTestID("affinity-note")))
	if strings.Contains(loc, "sid=") {
		t.Errorf("after leaving url affinity the page %s still carries the sid", loc)
	}
	if !strings.Contains(note, "nginx sees this browser as 1") || !strings.Contains(note, "land on the same replica") {
		t.Errorf("the ip-affinity note says %q", note)
	}
	err = chromedp.Do(step,
		chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile),
		chromedp.Reload(),
		chromedp.WaitVisible(byTestID("client-addr")),
		viewportShot(t, dir, "shop-sticky-ip-phone"),
		chromedp.EmulateViewport(1280, 900),
		click(byTestID("affinity-cookie")),
		chromedp.WaitVisible(pressed("cookie")),
	)
	if err != nil {
		t.Fatalf("back to cookie affinity: %v", err)
	}
	t.Logf("toggled cookie -> url -> ip -> cookie; ip note: %q", note)
}
