// Tests of the admin page through a whole replica (web.NewHandler), as
// nginx reaches it: the request log needs the shop's traffic.
package admin_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiondemo/shop/web/admin"
	"github.com/sessiondemo/shop/web/peer"
	"github.com/sessiondemo/shop/web/reqlog"
	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/session/jwtstore"
	"github.com/sessiondemo/shop/web/session/memstore"
	"github.com/sessiondemo/shop/web/webtest"
)

// replicaPair is two replicas, app1 and app2, that know each other.
type replicaPair struct {
	app1, app2 *httptest.Server
	// crashed counts each replica's crashes. A crash runs at once, inside
	// the request that asked for it, so it is counted before the answer
	// comes: a test sees a crash, or that none came, without waiting.
	crashed map[string]*atomic.Int32
	// crashDelay is how long after its answer the last crash would have
	// come, as the replica asked (CrashAfter).
	crashDelay map[string]*atomic.Int64
	// clock is both replicas' password throttle's clock.
	clock *fakeClock
}

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

const testAdminPassword = "correct horse"

// testInternalKey is the replicas' shared key in these tests.
const testInternalKey = "test internal key"

func newReplicaPair(t *testing.T) *replicaPair {
	t.Helper()
	p := &replicaPair{
		crashed:    map[string]*atomic.Int32{"app1": {}, "app2": {}},
		crashDelay: map[string]*atomic.Int64{"app1": {}, "app2": {}},
		clock:      &fakeClock{now: time.Now()},
	}
	handlers := map[string]*swappable{"app1": {}, "app2": {}}
	p.app1 = httptest.NewServer(handlers["app1"])
	p.app2 = httptest.NewServer(handlers["app2"])
	t.Cleanup(p.app1.Close)
	t.Cleanup(p.app2.Close)
	peers := peer.Static{"app1": p.app1.URL, "app2": p.app2.URL}
	for name, sw := range handlers {
		sw.set(webtest.Replica(t, name, admin.Options{
			User: "admin", Password: testAdminPassword, InternalKey: testInternalKey, Peers: peers,
			Crash: func() { p.crashed[name].Add(1) },
			CrashAfter: func(d time.Duration, crash func()) {
				p.crashDelay[name].Store(int64(d))
				crash()
			},
			ThrottleClock: p.clock.Now,
		}))
	}
	return p
}

// swappable lets a test server start before its handler exists.
type swappable struct{ h atomic.Pointer[http.Handler] }

func (s *swappable) set(h http.Handler) { s.h.Store(&h) }

func (s *swappable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := s.h.Load()
	if h == nil { // a peer's call while the test builds the handlers
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	(*h).ServeHTTP(w, r)
}

func do(t *testing.T, method, u string, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestRequestLogSpansReplicasNewestFirst(t *testing.T) {
	p := newReplicaPair(t)
	do(t, "GET", p.app1.URL+"/api/cart?mode=jwt", "", map[string]string{"X-Request-Id": "first-request-01"})
	time.Sleep(2 * time.Millisecond) // distinct timestamps for the order check
	do(t, "GET", p.app2.URL+"/api/cart", "", map[string]string{"X-Request-Id": "second-request-02", "X-Load-Balancer": "lb2"})
	do(t, "GET", p.app2.URL+"/static/css/shop.css", "", nil)
	do(t, "GET", p.app2.URL+"/api/admin/status", "", nil)

	resp, body := do(t, "GET", p.app1.URL+"/api/admin/requests?limit=10", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/admin/requests = %d %s", resp.StatusCode, body)
	}
	var got []reqlog.Entry
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("log = %+v, want the two cart reads only (no assets, no admin calls)", got)
	}
	if got[0].RequestID != "second-request-02" || got[0].Replica != "app2" || got[0].LoadBalancer != "lb2" || got[0].Mode != "sticky" {
		t.Errorf("newest = %+v, want second-request-02 on app2 via lb2 in sticky mode", got[0])
	}
	if got[1].RequestID != "first-request-01" || got[1].Replica != "app1" || got[1].Mode != "jwt" || got[1].Status != 200 || got[1].SessionEvent != "created" {
		t.Errorf("oldest = %+v, want first-request-01 on app1, jwt, 200, created", got[1])
	}
	for _, bad := range []string{"0", "-1", "1001", "x"} {
		if resp, body := do(t, "GET", p.app1.URL+"/api/admin/requests?limit="+bad, "", nil); resp.StatusCode != 400 || !strings.Contains(body, "limit must be") {
			t.Errorf("limit=%s: %d %s, want 400 with a sentence", bad, resp.StatusCode, body)
		}
	}
}

func TestStatusShowsADeadPeerDown(t *testing.T) {
	p := newReplicaPair(t)
	p.app2.Close()
	_, body := do(t, "GET", p.app1.URL+"/api/admin/status", "", nil)
	var st admin.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, r := range st.Replicas {
		states[r.Name] = r.State
		if len(r.Load) != len(session.Modes) {
			t.Errorf("%s's load = %v, want one count per mode even when it is down", r.Name, r.Load)
		}
	}
	if states["app1"] != admin.StateUp || states["app2"] != admin.StateDown {
		t.Errorf("states = %v, want app1 up and app2 down", states)
	}
}

func TestInternalEndpointsNeedTheToken(t *testing.T) {
	p := newReplicaPair(t)
	for _, path := range []string{"/internal/requests", "/internal/crash", "/internal/hang"} {
		method := "POST"
		if path == "/internal/requests" {
			method = "GET"
		}
		resp, _ := do(t, method, p.app1.URL+path, "{}", map[string]string{peer.TokenHeader: "guess"})
		if resp.StatusCode != 404 {
			t.Errorf("%s %s with a wrong token = %d, want 404", method, path, resp.StatusCode)
		}
	}
	// A crash would have come before its answer (newReplicaPair).
	if n := p.crashed["app1"].Load(); n != 0 {
		t.Errorf("app1 crashed %d times, want 0", n)
	}
}

func TestHangHoldsRequestsOnThatReplicaOnly(t *testing.T) {
	p := newReplicaPair(t)
	auth := map[string]string{"Authorization": basic("admin", testAdminPassword), "Content-Type": "application/json"}
	for _, bad := range []string{`{"seconds":0}`, `{"seconds":31}`, `{}`} {
		if resp, _ := do(t, "POST", p.app1.URL+"/api/admin/replicas/app2/hang", bad, auth); resp.StatusCode != 400 {
			t.Errorf("hang %s = %d, want 400", bad, resp.StatusCode)
		}
	}
	if resp, body := do(t, "POST", p.app1.URL+"/api/admin/replicas/app9/hang", `{"seconds":1}`, auth); resp.StatusCode != 404 || !strings.Contains(body, "no such control") {
		t.Errorf("hang app9 = %d %s, want 404", resp.StatusCode, body)
	}
	if resp, body := do(t, "POST", p.app1.URL+"/api/admin/replicas/app2/hang", `{"seconds":1}`, auth); resp.StatusCode != 202 {
		t.Fatalf("hang app2 = %d %s", resp.StatusCode, body)
	}
	start := time.Now()
	do(t, "GET", p.app2.URL+"/api/ping", "", nil)
	if d := time.Since(start); d < 700*time.Millisecond {
		t.Errorf("app2 answered in %v while hung for 1s", d)
	}
	start = time.Now()
	do(t, "GET", p.app1.URL+"/api/ping", "", nil)
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("app1 took %v: only app2 was to hang", d)
	}
}

func TestEventStreamSendsStatusAndRequests(t *testing.T) {
	p := newReplicaPair(t)
	do(t, "GET", p.app2.URL+"/api/cart", "", map[string]string{"X-Request-Id": "streamed-request-1"})
	resp, err := http.Get(p.app1.URL + "/api/admin/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" || resp.Header.Get("X-Accel-Buffering") != "no" {
		t.Errorf("Content-Type %q, X-Accel-Buffering %q", ct, resp.Header.Get("X-Accel-Buffering"))
	}
	buf := make([]byte, 0, 8192)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(string(buf), "streamed-request-1") {
		b := make([]byte, 4096)
		n, err := resp.Body.Read(b)
		buf = append(buf, b[:n]...)
		if err != nil {
			break
		}
	}
	s := string(buf)
	if !strings.Contains(s, "event: status") || !strings.Contains(s, "event: requests") || !strings.Contains(s, "streamed-request-1") {
		t.Errorf("stream = %q, want a status event and the request from app2", s)
	}
}

func TestAdminPageShowsTheCallersSessions(t *testing.T) {
	p := newReplicaPair(t)
	// A jwt cart, then the admin page with that cookie.
	resp, _ := do(t, "POST", p.app2.URL+"/api/cart/items?mode=jwt", `{"product_id":"p3","qty":2}`, map[string]string{"Content-Type": "application/json"})
	var jwtCookie string
	for _, c := range resp.Cookies() {
		if c.Name == jwtstore.CookieName {
			jwtCookie = c.Value
		}
	}
	resp, _ = do(t, "POST", p.app2.URL+"/api/cart/items?mode=sticky", `{"product_id":"p1"}`, map[string]string{"Content-Type": "application/json"})
	var stickyCookie string
	for _, c := range resp.Cookies() {
		if c.Name == memstore.CookieName {
			stickyCookie = c.Value
		}
	}
	// app1 shows app2's in-memory entry by asking app2.
	resp, body := do(t, "GET", p.app1.URL+"/admin", "", map[string]string{"Cookie": jwtstore.CookieName + "=" + jwtCookie + "; " + memstore.CookieName + "=" + stickyCookie})
	if resp.StatusCode != 200 {
		t.Fatalf("GET /admin = %d", resp.StatusCode)
	}
	for _, want := range []string{`data-testid="store-jwt"`, `&#34;q&#34;: 2`, `data-testid="size-jwt"`, "Sticky: memory of app2", `&#34;p&#34;: &#34;p1&#34;`, `data-testid="admin-login"`} {
		if !strings.Contains(body, want) {
			t.Errorf("admin page lacks %s", want)
		}
	}
	if strings.Contains(body, stickyCookie) || strings.Contains(body, jwtCookie[len(jwtCookie)-20:]) {
		t.Error("the admin page shows a session ID or a token's signature")
	}
}

func basic(user, password string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, password)
	return req.Header.Get("Authorization")
}

func TestSimulatorControlsCheckTheirInput(t *testing.T) {
	p := newReplicaPair(t)
	auth := map[string]string{"Authorization": basic("admin", testAdminPassword), "Content-Type": "application/json"}
	if resp, _ := do(t, "POST", p.app1.URL+"/api/admin/simulations", `{"clients":3,"mode":"redis","seconds":1}`, nil); resp.StatusCode != 404 {
		t.Errorf("simulation without credentials = %d, want 404", resp.StatusCode)
	}
	for body, want := range map[string]string{
		`{"clients":3,"mode":"redis","seconds":0}`:                   "seconds",
		`{"clients":500,"mode":"redis","seconds":5}`:                 "clients must be from 1 to 200",
		`{"clients":3,"mode":"nosql","seconds":5}`:                   "no session mode",
		`{"clients":3,"mode":"jwt","seconds":5,"naive":true}`:        "only in redis mode",
		`{"clients":3,"mode":"redis","seconds":5}`:                   "SIMULATOR_TARGETS", // none configured here
		`{"clients":3,"mode":"sticky","affinity":"dns","seconds":5}`: "no affinity technique",
	} {
		resp, got := do(t, "POST", p.app1.URL+"/api/admin/simulations", body, auth)
		if resp.StatusCode/100 != 4 && resp.StatusCode != 501 || !strings.Contains(got, want) {
			t.Errorf("POST %s = %d %s, want an error saying %q", body, resp.StatusCode, got, want)
		}
	}
	if resp, got := do(t, "GET", p.app2.URL+"/api/admin/simulations/app1.1.1", "", nil); resp.StatusCode != 404 || !strings.Contains(got, "no simulation") {
		t.Errorf("unknown simulation = %d %s, want 404", resp.StatusCode, got)
	}
	if resp, got := do(t, "POST", p.app1.URL+"/api/admin/concurrent-adds", `{"mode":"sticky","n":500}`, auth); resp.StatusCode != 400 {
		t.Errorf("500 concurrent adds = %d %s, want 400", resp.StatusCode, got)
	}
}

func TestWithoutAPasswordNoReplicaTakesControls(t *testing.T) {
	h := webtest.Replica(t, "app1", admin.Options{
		Crash:      func() { t.Error("crashed without a password") },
		CrashAfter: func(time.Duration, func()) { t.Error("a crash was asked for without a password") },
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	// The token of an empty password is public: it reads, it does not act.
	token := map[string]string{peer.TokenHeader: peer.Token(""), "Content-Type": "application/json"}
	for _, path := range []string{"/internal/crash", "/internal/hang"} {
		if resp, _ := do(t, "POST", srv.URL+path, `{"seconds":5}`, token); resp.StatusCode != 403 {
			t.Errorf("POST %s without an admin password = %d, want 403", path, resp.StatusCode)
		}
	}
	if resp, _ := do(t, "GET", srv.URL+"/internal/requests", "", token); resp.StatusCode != 200 {
		t.Errorf("GET /internal/requests = %d, want 200: the log works without a password", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", srv.URL+"/internal/crash", "", token); resp.StatusCode != 404 {
		t.Errorf("GET /internal/crash = %d, want 404 (no 405 that shows the route)", resp.StatusCode)
	}
	// HEAD on the event stream answers at once instead of streaming into the void.
	start := time.Now()
	if resp, _ := do(t, "HEAD", srv.URL+"/api/admin/events", "", nil); resp.StatusCode != 200 || time.Since(start) > 2*time.Second {
		t.Errorf("HEAD /api/admin/events = %d after %v, want 200 at once", resp.StatusCode, time.Since(start))
	}
}

// changingDirectory is a peer.Directory a test rewrites (while the
// replicas read it: a starting one asks its peers for their sign-outs).
type changingDirectory struct {
	mu      sync.Mutex
	members []peer.Member
}

func (d *changingDirectory) Members() []peer.Member {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.members
}

func (d *changingDirectory) set(members []peer.Member) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.members = members
}

// TestStatusMarksReplicasThatJoinedOrLeft: the status lists every replica
// the directory lists, however many; one that started lately, well after
// the others, is marked joined (and up); one that left is marked left and
// drawn down without being called; an address that now answers as another
// replica is not taken for the one listed; and the page's topology
// fragment draws them all.
func TestStatusMarksReplicasThatJoinedOrLeft(t *testing.T) {
	peerSrv := httptest.NewServer(nil)
	defer peerSrv.Close()
	dir := &changingDirectory{}
	// app-1 has run for five minutes; app-4 starts now.
	h := webtest.Replica(t, "app-1", admin.Options{User: "admin", Password: testAdminPassword, InternalKey: testInternalKey, Peers: dir, Started: time.Now().Add(-5 * time.Minute)})
	peerSrv.Config.Handler = webtest.Replica(t, "app-4", admin.Options{User: "admin", Password: testAdminPassword, InternalKey: testInternalKey, Peers: dir})
	self := httptest.NewServer(h)
	defer self.Close()
	now := time.Now()
	dir.set([]peer.Member{
		{Name: "app-1", BaseURL: self.URL},
		{Name: "app-2", BaseURL: "http://127.0.0.1:1", Left: now.Add(-10 * time.Second)},
		{Name: "app-3", BaseURL: "http://127.0.0.1:1"},
		{Name: "app-4", BaseURL: peerSrv.URL},
		{Name: "app-5", BaseURL: peerSrv.URL}, // an old entry for app-4's address
	})
	resp, body := do(t, "GET", self.URL+"/api/admin/status", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status: %d %s", resp.StatusCode, body)
	}
	var st admin.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	got := map[string]admin.ReplicaStatus{}
	for _, r := range st.Replicas {
		got[r.Name] = r
	}
	for name, want := range map[string]struct{ state, change string }{
		"app-1": {admin.StateUp, ""},
		"app-2": {admin.StateDown, admin.ChangeLeft},
		"app-3": {admin.StateDown, ""},
		"app-4": {admin.StateUp, admin.ChangeJoined},
	} {
		r := got[name]
		if r.State != want.state || r.Change != want.change {
			t.Errorf("%s: state %q change %q, want %q %q (%+v)", name, r.State, r.Change, want.state, want.change, r)
		}
	}
	if len(st.Replicas) != 5 {
		t.Errorf("%d replicas in the status, want 5", len(st.Replicas))
	}
	// app-5's address answers as app-4 (Docker gave it a freed address):
	// the status must not take app-4's answer for app-5's.
	if r := got["app-5"]; r.State == admin.StateUp || r.Change != "" || !strings.Contains(r.Detail, "app-4") {
		t.Errorf("app-5: %+v; its address answered as app-4, so want it not up, unmarked, and the detail to say so", r)
	}
	_, frag := do(t, "GET", self.URL+"/admin/topology", "", nil)
	for _, want := range []string{`data-testid="node-app-5"`, `data-change="joined"`, `data-change="left"`, `aria-label="Browsers, 0 load balancers, 5 replicas and Redis"`} {
		if !strings.Contains(frag, want) {
			t.Errorf("the topology fragment lacks %s", want)
		}
	}
}

func TestScorecardControls(t *testing.T) {
	p := newReplicaPair(t)
	auth := map[string]string{"Authorization": basic("admin", testAdminPassword), "Content-Type": "application/json"}
	if resp, _ := do(t, "POST", p.app1.URL+"/api/admin/scorecard", `{}`, nil); resp.StatusCode != 404 {
		t.Errorf("a scorecard without credentials = %d, want 404", resp.StatusCode)
	}
	if resp, got := do(t, "POST", p.app1.URL+"/api/admin/scorecard", `{}`, auth); resp.StatusCode != 501 || !strings.Contains(got, "SIMULATOR_TARGETS") {
		t.Errorf("a scorecard with nowhere to send shoppers = %d %s, want 501 naming SIMULATOR_TARGETS", resp.StatusCode, got)
	}
	for _, u := range []string{p.app2.URL + "/api/admin/scorecard/app1.1.1", p.app1.URL + "/api/admin/scorecard/app1.1.1"} {
		if resp, got := do(t, "GET", u, "", nil); resp.StatusCode != 404 || !strings.Contains(got, "no scorecard") {
			t.Errorf("GET %s = %d %s, want 404", u, resp.StatusCode, got)
		}
	}
	if resp, got := do(t, "GET", p.app2.URL+"/api/admin/scorecards", "", nil); resp.StatusCode != 200 || strings.TrimSpace(got) != "[]" {
		t.Errorf("the runs of no replica = %d %s, want 200 []", resp.StatusCode, got)
	}
	if resp, _ := do(t, "POST", p.app1.URL+"/api/admin/replicas/app2/stop", `{}`, nil); resp.StatusCode != 404 {
		t.Errorf("a stop without credentials = %d, want 404", resp.StatusCode)
	}
	if resp, got := do(t, "POST", p.app1.URL+"/api/admin/replicas/app2/stop", `{}`, auth); resp.StatusCode != 501 || !strings.Contains(got, "stop itself") {
		t.Errorf("a stop of a replica started without Stop = %d %s, want 501", resp.StatusCode, got)
	}
}

// TestStoppingEndsStreamsAndHangs: when the replica begins to shut down,
// its live streams end and the requests a hang holds go on, so that a
// stop does not wait for them.
func TestStoppingEndsStreamsAndHangs(t *testing.T) {
	stopping := make(chan struct{})
	srv := httptest.NewServer(webtest.Replica(t, "app1", admin.Options{
		User: "admin", Password: testAdminPassword, InternalKey: testInternalKey,
		Peers: peer.Static{"app1": "http://127.0.0.1:1"}, Stopping: stopping,
	}))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/api/admin/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, 64)
	if _, err := resp.Body.Read(first); err != nil {
		t.Fatalf("the stream sent nothing: %v", err)
	}
	ended := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, resp.Body); ended <- err }()
	select {
	case err := <-ended:
		t.Fatalf("the stream ended before the shutdown began: %v", err)
	default:
	}
	auth := map[string]string{"Authorization": basic("admin", testAdminPassword), "Content-Type": "application/json"}
	if resp, got := do(t, "POST", srv.URL+"/api/admin/replicas/app1/hang", `{"seconds":30}`, auth); resp.StatusCode != 202 {
		t.Fatalf("hang = %d %s", resp.StatusCode, got)
	}
	held := make(chan int, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/api/cart?mode=sticky")
		if err != nil {
			held <- 0
			return
		}
		resp.Body.Close()
		held <- resp.StatusCode
	}()
	close(stopping)
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Error("the stream did not end when the shutdown began")
	}
	select {
	case status := <-held:
		if status != 200 {
			t.Errorf("the request the hang held answered %d, want 200", status)
		}
	case <-time.After(5 * time.Second):
		t.Error("the request the hang held was not let go when the shutdown began")
	}
}
