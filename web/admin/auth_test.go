package admin_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiondemo/shop/web/admin"
	"github.com/sessiondemo/shop/web/peer"
	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/webtest"
)

// signIn posts the sign-in form to base, from the client address addr
// as nginx would pass it ("" for none), and returns the answer and the
// admin cookie it set, if any.
func signIn(t *testing.T, base, password, addr string) (*http.Response, *http.Cookie) {
	t.Helper()
	form := url.Values{"user": {"admin"}, "password": {password}}.Encode()
	req, _ := http.NewRequest("POST", base+"/admin/login", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if addr != "" {
		req.Header.Set("X-Real-IP", addr)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == admin.CookieName {
			return resp, c
		}
	}
	return resp, nil
}

// TestControlsNeedTheAdminCredentials: without credentials, with a wrong
// password, and with the right one but a replica that does not exist, a
// control gets the very same answer (finding 4: 401 against 404 told a
// right password from a wrong one). A good sign-in's cookie works on the
// other replica too; a forged one does not.
func TestControlsNeedTheAdminCredentials(t *testing.T) {
	p := newReplicaPair(t)
	crash := p.app1.URL + "/api/admin/replicas/app2/crash"
	_, none := do(t, "POST", crash, "", nil)
	resp, wrong := do(t, "POST", crash, "", map[string]string{"Authorization": basic("admin", "wrong")})
	if resp.StatusCode != 404 || wrong != none || !strings.Contains(none, "not signed in") {
		t.Errorf("crash with a wrong password = %d %q, without credentials %q: want the same 404", resp.StatusCode, wrong, none)
	}
	if resp.Header.Get("WWW-Authenticate") != "" {
		t.Errorf("WWW-Authenticate %q: a browser would ask for HTTP Basic and keep it past a sign-out", resp.Header.Get("WWW-Authenticate"))
	}
	// app2 has seen no wrong password: no throttle in the way.
	resp, unknown := do(t, "POST", p.app2.URL+"/api/admin/replicas/app9/crash", "", map[string]string{"Authorization": basic("admin", testAdminPassword)})
	if resp.StatusCode != 404 || unknown != none {
		t.Errorf("the right password on an unknown replica = %d %q, want the answer to a wrong password, %q", resp.StatusCode, unknown, none)
	}
	// HTTP Basic from a browser is refused even when right.
	resp, _ = do(t, "POST", p.app2.URL+"/api/admin/replicas/app1/hang", `{"seconds":1}`, map[string]string{"Authorization": basic("admin", testAdminPassword), "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"})
	if resp.StatusCode != 404 {
		t.Errorf("HTTP Basic from a browser = %d, want 404", resp.StatusCode)
	}

	resp, _ = signIn(t, p.app2.URL, "nope", "")
	if resp.StatusCode != 403 {
		t.Errorf("bad sign-in = %d, want 403", resp.StatusCode)
	}
	// From another address: 127.0.0.1 waits after its wrong passwords.
	resp, cookie := signIn(t, p.app1.URL, testAdminPassword, "192.0.2.1")
	if resp.StatusCode != http.StatusSeeOther || cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("sign-in = %d, cookie %+v: want 303 and an HttpOnly, SameSite=Strict cookie", resp.StatusCode, cookie)
	}
	resp, body := do(t, "POST", p.app2.URL+"/api/admin/replicas/app1/crash", "", map[string]string{"Cookie": admin.CookieName + "=" + cookie.Value})
	if resp.StatusCode != 202 || !strings.Contains(body, "crashing") {
		t.Fatalf("crash app1 via app2 = %d %s, want 202", resp.StatusCode, body)
	}
	// The crash came with the answer (newReplicaPair), asked for 100 ms
	// after it.
	if n := p.crashed["app1"].Load(); n != 1 {
		t.Errorf("app1 crashed %d times, want 1", n)
	}
	if d := time.Duration(p.crashDelay["app1"].Load()); d != 100*time.Millisecond {
		t.Errorf("app1's crash was asked for %v after its answer, want 100ms", d)
	}
	if n := p.crashed["app2"].Load(); n != 0 {
		t.Errorf("app2 crashed %d times, want 0: only app1 was asked", n)
	}
	// A forged cookie does not work.
	for _, forged := range []string{"9999999999.deadbeef", "x.9999999999.deadbeef", strings.Replace(cookie.Value, ".", ".9", 1)} {
		if resp, _ = do(t, "POST", p.app2.URL+"/api/admin/replicas/app1/crash", "", map[string]string{"Cookie": admin.CookieName + "=" + forged}); resp.StatusCode != 404 {
			t.Errorf("crash with a forged cookie %q = %d, want 404", forged, resp.StatusCode)
		}
	}
}

// TestPasswordGuessesAreThrottled (finding 4): after a wrong password the
// same user and address wait, doubling, and a try during the wait gets a
// 429 without its password being looked at, so 50 parallel guesses check
// one password, not 50. Another address is not held up; a right password
// after the wait works and clears the count.
func TestPasswordGuessesAreThrottled(t *testing.T) {
	p := newReplicaPair(t)
	hang := p.app1.URL + "/api/admin/replicas/app1/hang"
	guess := func(password, addr string) int {
		h := map[string]string{"Authorization": basic("admin", password), "Content-Type": "application/json"}
		if addr != "" {
			h["X-Real-IP"] = addr
		}
		resp, _ := do(t, "POST", hang, `{"seconds":0}`, h)
		return resp.StatusCode
	}
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	start := time.Now()
	for i := range 50 {
		wg.Go(func() {
			s := guess("wrong-"+string(rune('a'+i%26)), "198.51.100.7")
			mu.Lock()
			statuses[s]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if statuses[404] != 1 || statuses[429] != 49 {
		t.Errorf("50 parallel wrong passwords: %v, want one 404 (checked) and 49 429s", statuses)
	}
	t.Logf("50 parallel guesses answered in %v", time.Since(start))
	// The right password during the wait is refused the same way.
	if s := guess(testAdminPassword, "198.51.100.7"); s != 429 {
		t.Errorf("the right password during the wait = %d, want 429", s)
	}
	// Another address is not held up (a bad body: 400 after the password passed).
	if s := guess(testAdminPassword, "198.51.100.8"); s != 400 {
		t.Errorf("the right password from another address = %d, want 400 (past the password)", s)
	}
	// The replicas' throttle reads p.clock, which stands still until the
	// test moves it: the wrong passwords above all came at its start.
	p.clock.Advance(499 * time.Millisecond)
	if s := guess(testAdminPassword, "198.51.100.7"); s != 429 {
		t.Errorf("0.499 s into a 0.5 s wait = %d, want 429", s)
	}
	// A second wrong password after the first wait doubles it.
	p.clock.Advance(51 * time.Millisecond)
	if s := guess("wrong", "198.51.100.7"); s != 404 {
		t.Fatalf("a guess after the wait = %d, want 404", s)
	}
	p.clock.Advance(550 * time.Millisecond)
	if s := guess(testAdminPassword, "198.51.100.7"); s != 429 {
		t.Errorf("0.55 s into a 1 s wait = %d, want 429", s)
	}
	resp, _ := do(t, "POST", hang, "", map[string]string{"Authorization": basic("admin", "x"), "X-Real-IP": "198.51.100.7"})
	if ra := resp.Header.Get("Retry-After"); resp.StatusCode != 429 || ra != "1" {
		t.Errorf("429 with Retry-After %q, want 1", ra)
	}
	p.clock.Advance(449 * time.Millisecond)
	if s := guess(testAdminPassword, "198.51.100.7"); s != 429 {
		t.Errorf("0.999 s into a 1 s wait = %d, want 429", s)
	}
	p.clock.Advance(time.Millisecond)
	if s := guess(testAdminPassword, "198.51.100.7"); s != 400 {
		t.Errorf("the right password when the wait ends = %d, want 400 (past the password)", s)
	}
	// The sign-in form goes through the same throttle.
	resp, _ = signIn(t, p.app2.URL, "nope", "")
	resp2, _ := signIn(t, p.app2.URL, testAdminPassword, "")
	if resp.StatusCode != 403 || resp2.StatusCode != 429 {
		t.Errorf("sign-in: wrong then right at once = %d, %d; want 403, 429", resp.StatusCode, resp2.StatusCode)
	}
}

// TestSignOutEndsTheCookieOnEveryReplica (finding 5): a cookie replayed
// after its sign-out is refused by both replicas; a new sign-in works.
func TestSignOutEndsTheCookieOnEveryReplica(t *testing.T) {
	p := newReplicaPair(t)
	_, cookie := signIn(t, p.app1.URL, testAdminPassword, "")
	if cookie == nil {
		t.Fatal("no cookie")
	}
	hdr := map[string]string{"Cookie": admin.CookieName + "=" + cookie.Value, "Content-Type": "application/json"}
	for _, base := range []string{p.app1.URL, p.app2.URL} {
		if resp, body := do(t, "POST", base+"/api/admin/replicas/app9/hang", `{"seconds":1}`, hdr); resp.StatusCode != 404 || !strings.Contains(body, "no such control") {
			t.Fatalf("before sign-out: %d %s", resp.StatusCode, body)
		}
	}
	// Signed in: the page shows the controls.
	if _, page := do(t, "GET", p.app2.URL+"/admin", "", hdr); !strings.Contains(page, "Sign out") {
		t.Fatalf("the admin page with the cookie does not show the sign-out button")
	}
	resp, _ := do(t, "POST", p.app2.URL+"/admin/logout", "", hdr)
	if resp.StatusCode != 200 { // the redirect, followed
		t.Fatalf("sign-out = %d", resp.StatusCode)
	}
	for _, base := range []string{p.app1.URL, p.app2.URL} {
		if _, page := do(t, "GET", base+"/admin", "", hdr); strings.Contains(page, "Sign out") {
			t.Errorf("%s still shows the controls to the replayed cookie", base)
		}
		if resp, body := do(t, "POST", base+"/api/admin/replicas/app1/hang", `{"seconds":1}`, hdr); resp.StatusCode != 404 {
			t.Errorf("%s: the replayed cookie after sign-out = %d %s, want 404", base, resp.StatusCode, body)
		}
	}
	if _, again := signIn(t, p.app1.URL, testAdminPassword, ""); again == nil || again.Value == cookie.Value {
		t.Errorf("a new sign-in after the sign-out got no new cookie")
	}
}

// TestAStartingReplicaLearnsTheSignOuts: a replica that starts after a
// sign-out asks the others first, and refuses the ended cookie too.
func TestAStartingReplicaLearnsTheSignOuts(t *testing.T) {
	p := newReplicaPair(t)
	_, cookie := signIn(t, p.app1.URL, testAdminPassword, "")
	hdr := map[string]string{"Cookie": admin.CookieName + "=" + cookie.Value}
	do(t, "POST", p.app1.URL+"/admin/logout", "", hdr)
	late := httptest.NewServer(webtest.Replica(t, "app3", admin.Options{
		User: "admin", Password: testAdminPassword, InternalKey: testInternalKey,
		Peers: peer.Static{"app1": p.app1.URL, "app2": p.app2.URL},
	}))
	defer late.Close()
	if _, page := do(t, "GET", late.URL+"/admin", "", hdr); strings.Contains(page, "Sign out") {
		t.Error("a replica started after the sign-out accepted the ended cookie")
	}
	_, fresh := signIn(t, p.app2.URL, testAdminPassword, "")
	if _, page := do(t, "GET", late.URL+"/admin", "", map[string]string{"Cookie": admin.CookieName + "=" + fresh.Value}); !strings.Contains(page, "Sign out") {
		t.Error("the late replica refused a cookie that was never signed out")
	}
}

// TestEventStreamsAreLimitedPerAddress (finding 6): one address that
// opens many live views gets a 429 past its share, and another address
// still gets its live view.
func TestEventStreamsAreLimitedPerAddress(t *testing.T) {
	p := newReplicaPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func(addr string) int {
		req, _ := http.NewRequestWithContext(ctx, "GET", p.app1.URL+"/api/admin/events", nil)
		req.Header.Set("X-Real-IP", addr)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			resp.Body.Close()
		} // else the stream stays open until cancel
		return resp.StatusCode
	}
	for i := range 4 {
		if s := open("198.51.100.1"); s != 200 {
			t.Fatalf("live view %d from one address = %d, want 200", i+1, s)
		}
	}
	if s := open("198.51.100.1"); s != 429 {
		t.Errorf("a 5th live view from the same address = %d, want 429", s)
	}
	if s := open("198.51.100.2"); s != 200 {
		t.Errorf("a live view from another address = %d, want 200", s)
	}
}

// TestAdminCookieOverHTTPSIsHostPrefixed (finding 6): behind https the
// admin cookie is __Host-admin_auth, Secure, and works; one without the
// prefix is not read.
func TestAdminCookieOverHTTPSIsHostPrefixed(t *testing.T) {
	p := newReplicaPair(t)
	form := url.Values{"user": {"admin"}, "password": {testAdminPassword}}.Encode()
	req, _ := http.NewRequest("POST", p.app1.URL+"/admin/login", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-Proto", "https")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var c *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == session.HostPrefix+admin.CookieName {
			c = ck
		}
	}
	if c == nil || !c.Secure || c.Path != "/" || c.Domain != "" {
		t.Fatalf("admin cookie over https: %v, want __Host-%s, Secure, Path=/", resp.Cookies(), admin.CookieName)
	}
	hdr := map[string]string{"Cookie": c.Name + "=" + c.Value, "X-Forwarded-Proto": "https"}
	if _, page := do(t, "GET", p.app2.URL+"/admin", "", hdr); !strings.Contains(page, "Sign out") {
		t.Error("the __Host- admin cookie is not accepted over https")
	}
	hdr["Cookie"] = admin.CookieName + "=" + c.Value
	if _, page := do(t, "GET", p.app2.URL+"/admin", "", hdr); strings.Contains(page, "Sign out") {
		t.Error("over https, an admin cookie without the prefix was accepted")
	}
}
