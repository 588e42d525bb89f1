package e2e

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/session/jwtstore"
)

// TestDNSRebindingIsRefused: a web page that points its own name at this
// machine makes the browser send requests whose Host and Origin both carry
// that name, as same-origin, with whatever credentials the browser holds
// for it. Through nginx such a request to a control, with the admin
// credentials, gets a 421 and changes nothing; so does a read of the
// request log. The names the stack serves (localhost, an IP address, and
// ALLOWED_HOSTS, here shop.e2e.test) are served.
func TestDNSRebindingIsRefused(t *testing.T) {
	needStack(t)
	lb, err := url.Parse(stack.lbURL)
	if err != nil {
		t.Fatal(err)
	}
	send := func(method, host, path, body string, admin bool) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, stack.lbURL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host + ":" + lb.Port()
		req.Header.Set("Origin", "http://"+req.Host)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("Content-Type", "application/json")
		if admin {
			req.SetBasicAuth(adminUser, adminPassword)
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("%s %s with Host %s: %v", method, path, req.Host, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	victim := replicas(t)[1]
	for _, host := range []string{"rebind.evil.example", "localhost.evil.example", "shop.e2e.test.evil.example"} {
		if status, body := send("POST", host, "/api/admin/replicas/"+victim+"/hang", `{"seconds":10}`, true); status != http.StatusMisdirectedRequest {
			t.Errorf("hang %s with Host %s and the admin credentials = %d %s, want 421", victim, host, status, body)
		}
		if status, _ := send("GET", host, "/api/admin/requests", "", false); status != http.StatusMisdirectedRequest {
			t.Errorf("the request log with Host %s = %d, want 421", host, status)
		}
		if status, _ := send("POST", host, "/api/cart/items", `{"product_id":"p1"}`, false); status != http.StatusMisdirectedRequest {
			t.Errorf("an add with Host %s = %d, want 421", host, status)
		}
	}
	// Nothing changed: the replica does not hang.
	var st struct {
		Replicas []struct {
			Name    string `json:"name"`
			HungFor int    `json:"hung_for"`
		} `json:"replicas"`
	}
	adminDo(t, "GET", "/api/admin/status", "", false, &st)
	for _, r := range st.Replicas {
		if r.HungFor != 0 {
			t.Errorf("%s hangs for %d s after refused requests", r.Name, r.HungFor)
		}
	}
	for _, host := range []string{"localhost", "127.0.0.1", e2eAllowedHost} {
		if status, body := send("GET", host, "/api/products", "", false); status != 200 {
			t.Errorf("GET /api/products with Host %s = %d %s, want 200", host, status, body)
		}
	}
	if status, body := send("POST", e2eAllowedHost, "/api/cart/items", `{"product_id":"p1"}`, false); status != 200 {
		t.Errorf("an add with Host %s (in ALLOWED_HOSTS) = %d %s, want 200", e2eAllowedHost, status, body)
	}
}

// TestRedisAppUserRunsOnlyWhatTheAppNeeds: the app's Redis user may run
// the session store's commands on its own keys and nothing else; SCAN,
// KEYS, SELECT, FLUSHDB and SCRIPT FLUSH, which the earlier +@all
// -@dangerous ACL still allowed some of, are refused (NOPERM).
func TestRedisAppUserRunsOnlyWhatTheAppNeeds(t *testing.T) {
	needStack(t)
	primary := waitRedisSettled(t)
	run := func(args string) string {
		t.Helper()
		// The app user's name is in the node's environment, its password
		// in /secrets (generated on the stack's first start), as the
		// healthcheck reads them.
		_, out, err := service(t, primary).Exec(t.Context(), []string{"sh", "-c", `REDISCLI_AUTH="$(cat /secrets/redis_app_password)" redis-cli --no-auth-warning --user "$REDIS_APP_USERNAME" ` + args})
		if err != nil {
			t.Fatalf("redis-cli %s: %v", args, err)
		}
		b, _ := io.ReadAll(out)
		return string(b)
	}
	for _, args := range []string{"SCAN 0", "KEYS '*'", "SELECT 1", "FLUSHDB", "SCRIPT FLUSH", "CONFIG GET maxmemory"} {
		if out := run(args); !strings.Contains(out, "NOPERM") {
			t.Errorf("the app user ran %s: %q, want NOPERM", args, strings.TrimSpace(out))
		}
	}
	if out := run("GET other:key"); !strings.Contains(out, "NOPERM") {
		t.Errorf("the app user read a key outside its prefixes: %q, want NOPERM", strings.TrimSpace(out))
	}
	if out := run("SET session:acl-probe 1 EX 10"); !strings.Contains(out, "OK") {
		t.Errorf("the app user could not SET a session key: %q", strings.TrimSpace(out))
	}
}

// The values compose.yaml once carried as defaults, printed in the README
// and so known to anyone (issue 12, finding 2).
const (
	publishedAdminPassword = "ZuFP0qsAVgUO-aXm"
	publishedJWTKey        = "wWoWsy4Tdcxlp0RZmDjAW8ayKNZSUfgc9i3S3oAvMlE="
)

// asClient returns a header that makes nginx see the request as coming
// from addr (it trusts X-Forwarded-For from Docker's networks), so a test
// that trips a per-address limit trips it for that address alone.
func asClient(addr string) map[string]string { return map[string]string{"X-Forwarded-For": addr} }

// lbDo sends one request through lb with the given headers and returns
// the answer with its body read.
func lbDo(t *testing.T, method, path, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, stack.lbURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestPublishedSecretsDoNotWork (finding 2): the stack generated its own
// secrets on its first start, so a token for usr=admin signed with the
// key compose.yaml used to publish is rejected, and so is the admin
// password it used to publish. The admin password comes from the
// README's one command (startStack ran it), and a second run of the
// secrets service keeps every secret.
func TestPublishedSecretsDoNotWork(t *testing.T) {
	needStack(t)
	secret, _ := base64.StdEncoding.DecodeString(publishedJWTKey)
	forger, err := jwtstore.New(jwtstore.Options{Keys: []session.Key{{ID: "j1", Secret: secret}}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	token, err := forger.Sign(jwtstore.Claims{
		RegisteredClaims: gojwt.RegisteredClaims{Issuer: "session-demo", Audience: gojwt.ClaimStrings{"cart"},
			ExpiresAt: gojwt.NewNumericDate(now.Add(time.Hour)), IssuedAt: gojwt.NewNumericDate(now), ID: "forged-admin-token"},
		User: "admin", Started: now.Unix(),
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		resp, body := lbDo(t, "GET", "/api/cart", "", map[string]string{"Cookie": "mode=jwt; jwt_session=" + token})
		if resp.StatusCode != 400 || strings.Contains(body, `"user":"admin"`) {
			t.Errorf("a usr=admin token signed with the published key = %d %s, want 400", resp.StatusCode, body)
		}
	}
	resp, body := lbDo(t, "POST", "/api/admin/replicas/"+replicas(t)[0]+"/hang", `{"seconds":5}`,
		map[string]string{"Authorization": basicAuth(adminUser, publishedAdminPassword), "Content-Type": "application/json", "X-Forwarded-For": "203.0.113.20"})
	if resp.StatusCode != 404 {
		t.Errorf("a control with the published admin password = %d %s, want 404", resp.StatusCode, body)
	}
	if adminPassword == publishedAdminPassword || len(adminPassword) < 20 {
		t.Errorf("the stack's admin password is %d characters or the published one", len(adminPassword))
	}

	// `docker compose up` again runs the secrets service again: it keeps
	// what it wrote, and the replicas' admin password is the same.
	out, err := stack.up.compose(t.Context(), "up", "-d", "--no-recreate", "secrets")
	if err != nil {
		t.Fatalf("compose up secrets: %v\n%s", err, out)
	}
	logs, _ := stack.up.compose(t.Context(), "logs", "--no-log-prefix", "secrets")
	if !strings.Contains(string(logs), "0 generated, 8 kept") {
		t.Errorf("the secrets service's second run:\n%s\nwant 0 generated, 8 kept", logs)
	}
	again, err := stack.up.compose(t.Context(), "exec", "-T", "app", "/app/server", "admin-password")
	if err != nil || strings.TrimSpace(string(again)) != adminPassword {
		t.Errorf("the admin password changed after the secrets service ran again (%v)", err)
	}
}

func basicAuth(user, password string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, password)
	return req.Header.Get("Authorization")
}

// TestAdminPasswordGuessingIsThrottled (finding 4), through nginx: 40
// parallel guesses from one address get no 2xx, nginx's limit_req turns
// most away with a 429 and each replica checks at most one password in
// the burst (the rest wait: 429). A wrong password and the right one on
// an unknown replica get the same answer. Another address is not held up.
func TestAdminPasswordGuessingIsThrottled(t *testing.T) {
	needStack(t)
	victim := replicas(t)[0]
	statuses := map[int]int{}
	checked := 0
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			h := asClient("203.0.113.30")
			h["Authorization"] = basicAuth(adminUser, fmt.Sprintf("guess-%02d", i))
			h["Content-Type"] = "application/json"
			resp, body := lbDo(t, "POST", "/api/admin/replicas/"+victim+"/hang", `{"seconds":5}`, h)
			mu.Lock()
			defer mu.Unlock()
			statuses[resp.StatusCode]++
			if resp.StatusCode == 404 && strings.Contains(body, "not signed in") {
				checked++
			}
		})
	}
	wg.Wait()
	t.Logf("40 parallel guesses through nginx: %v (%d passwords checked)", statuses, checked)
	if statuses[429] < 37 || checked > 3 || statuses[404] != checked || statuses[202] != 0 {
		t.Errorf("40 parallel guesses: %v, %d checked; want at least 37 429s and at most one password checked per replica", statuses, checked)
	}
	if replicaHung(t, victim) {
		t.Errorf("%s hangs after 40 wrong passwords", victim)
	}
	wrong := asClient("203.0.113.31")
	wrong["Authorization"] = basicAuth(adminUser, "not-the-password")
	_, wrongBody := lbDo(t, "POST", "/api/admin/replicas/"+victim+"/hang", `{"seconds":1}`, wrong)
	right := asClient("203.0.113.32")
	right["Authorization"] = basicAuth(adminUser, adminPassword)
	resp, unknownBody := lbDo(t, "POST", "/api/admin/replicas/app-99/hang", `{"seconds":1}`, right)
	if resp.StatusCode != 404 || unknownBody != wrongBody {
		t.Errorf("the right password on an unknown replica = %d %q; a wrong password got %q: want the same answer", resp.StatusCode, unknownBody, wrongBody)
	}
	// The sign-in form: nginx allows 2 a second with a burst of 5.
	statuses = map[int]int{}
	for i := range 12 {
		h := asClient("203.0.113.33")
		h["Content-Type"] = "application/x-www-form-urlencoded"
		resp, _ := lbDo(t, "POST", "/admin/login", fmt.Sprintf("user=admin&password=guess-%d", i), h)
		statuses[resp.StatusCode]++
	}
	if statuses[429] < 6 || statuses[303] != 0 {
		t.Errorf("12 sign-ins at once: %v, want at least 6 turned away with 429", statuses)
	}
}

// replicaHung reports whether the admin status shows the replica hanging.
func replicaHung(t *testing.T, name string) bool {
	var st struct {
		Replicas []struct {
			Name    string `json:"name"`
			HungFor int    `json:"hung_for"`
		} `json:"replicas"`
	}
	adminDo(t, "GET", "/api/admin/status", "", false, &st)
	for _, r := range st.Replicas {
		if r.Name == name {
			return r.HungFor > 0
		}
	}
	return false
}

// TestAdminSignOutEndsTheSessionEverywhere (finding 5), through nginx: a
// cookie replayed after its sign-out is refused by every replica, and
// HTTP Basic from a browser is refused, so no credentials a browser kept
// outlive a sign-out.
func TestAdminSignOutEndsTheSessionEverywhere(t *testing.T) {
	needStack(t)
	h := asClient("203.0.113.40")
	h["Content-Type"] = "application/x-www-form-urlencoded"
	resp, _ := lbDo(t, "POST", "/admin/login", "user=admin&password="+url.QueryEscape(adminPassword), h)
	var cookie string
	for _, c := range resp.Cookies() {
		if c.Name == "admin_auth" {
			cookie = c.Value
		}
	}
	if resp.StatusCode != 303 || cookie == "" {
		t.Fatalf("sign-in through nginx = %d, cookie %q", resp.StatusCode, cookie)
	}
	withCookie := map[string]string{"Cookie": "admin_auth=" + cookie}
	// Signed in on every replica nginx sends the page to.
	signedInOn := func() (yes, no map[string]bool) {
		yes, no = map[string]bool{}, map[string]bool{}
		for range 9 {
			resp, page := lbDo(t, "GET", "/admin", "", withCookie)
			if strings.Contains(page, "Sign out of admin") {
				yes[resp.Header.Get("X-Replica")] = true
			} else {
				no[resp.Header.Get("X-Replica")] = true
			}
		}
		return yes, no
	}
	if yes, no := signedInOn(); len(no) != 0 || len(yes) < 2 {
		t.Fatalf("before sign-out: signed in on %v, not on %v", yes, no)
	}
	resp, _ = lbDo(t, "POST", "/admin/logout", "", withCookie)
	if resp.StatusCode != 303 {
		t.Fatalf("sign-out = %d", resp.StatusCode)
	}
	if yes, no := signedInOn(); len(yes) != 0 || len(no) < 2 {
		t.Errorf("the cookie replayed after sign-out: still signed in on %v (refused on %v)", yes, no)
	}
	browser := map[string]string{"Authorization": basicAuth(adminUser, adminPassword), "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"}
	if resp, body := lbDo(t, "POST", "/api/admin/replicas/app-99/hang", `{"seconds":1}`, browser); resp.StatusCode != 404 || resp.Header.Get("WWW-Authenticate") != "" {
		t.Errorf("HTTP Basic from a browser = %d %s (WWW-Authenticate %q), want 404 and no prompt", resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
	}
}

// TestAdminEndsEverySessionOfAUser (finding 3, ASVS 7.4.5): an admin
// ends every session of one user, in every mode, through nginx. Each of
// that user's browsers is signed out on every replica, another user's
// is not, and the user can sign in again.
func TestAdminEndsEverySessionOfAUser(t *testing.T) {
	needStack(t)
	waitRedisSettled(t)
	signIn := func(mode, user string) *shopper {
		s := newShopper(t, mode)
		if status, _ := s.do("POST", "/api/login", fmt.Sprintf(`{"user":%q}`, user)); status != 200 {
			t.Fatalf("%s sign-in as %s: %d", mode, user, status)
		}
		if status, _ := s.do("POST", "/api/cart/items", `{"product_id":"p3"}`); status != 200 {
			t.Fatalf("%s add as %s: %d", mode, user, status)
		}
		return s
	}
	modes := []string{"sticky", "redis", "jwt", "memcached"}
	erin, frank := map[string]*shopper{}, map[string]*shopper{}
	for _, m := range modes {
		erin[m], frank[m] = signIn(m, "erin"), signIn(m, "frank")
	}
	var ans struct {
		Message  string   `json:"message"`
		Sticky   int      `json:"sticky_ended"`
		Missing  []string `json:"replicas_missing"`
		Recorded bool     `json:"redis_jwt_ended"`
	}
	if status := adminDo(t, "POST", "/api/admin/users/erin/end-sessions", "", true, &ans); status != 200 || ans.Sticky != 1 || !ans.Recorded || len(ans.Missing) != 0 {
		t.Fatalf("end erin's sessions = %d %+v, want 200, 1 sticky session ended and Redis recorded", status, ans)
	}
	endedAt := time.Now()
	t.Logf("the control said: %s", ans.Message)
	for _, m := range modes {
		status, c := erin[m].do("GET", "/api/cart", "")
		if status != 200 || c.User != "" || c.Count != 0 {
			t.Errorf("%s: erin's browser after the end (%s): %d, user %q, %d items; want signed out", m, c.Replica, status, c.User, c.Count)
		}
		// Every replica agrees (a second and third read, wherever nginx sends them).
		for range 2 {
			if _, c := erin[m].do("GET", "/api/cart", ""); c.User != "" {
				t.Errorf("%s: erin signed in again on %s", m, c.Replica)
			}
		}
		if _, c := frank[m].do("GET", "/api/cart", ""); c.User != "frank" || c.Count != 1 {
			t.Errorf("%s: frank's session after erin's end: user %q, %d items; want untouched", m, c.User, c.Count)
		}
	}
	// Erin signs in again. Session starts count to the second (a token's
	// sst), so a sign-in within the second of the end is ended too
	// (session.EndedByAdmin): this one comes in the next second.
	time.Sleep(time.Until(endedAt.Truncate(time.Second).Add(time.Second)))
	for _, m := range modes {
		again := newShopper(t, m)
		if status, _ := again.do("POST", "/api/login", `{"user":"erin"}`); status != 200 {
			t.Errorf("%s: erin cannot sign in again: %d", m, status)
		}
		if _, c := again.do("GET", "/api/cart", ""); c.User != "erin" {
			t.Errorf("%s: erin's new sign-in is not signed in: %q", m, c.User)
		}
	}
	if status := adminDo(t, "POST", "/api/admin/users/not%20a%20user/end-sessions", "", true, nil); status != 400 {
		t.Errorf("a bad user name = %d, want 400", status)
	}
}

// TestRedisRefusesRatherThanEvicts (finding 6): the primary has a memory
// limit and the noeviction policy, so a full store refuses writes (the
// shop's 503 "Session store full", TestAFullStoreRefusesWritesClearly)
// rather than dropping sessions. Read with the Sentinels' user, which may
// run INFO.
func TestRedisRefusesRatherThanEvicts(t *testing.T) {
	needStack(t)
	primary := waitRedisSettled(t)
	_, out, err := service(t, primary).Exec(t.Context(), []string{"sh", "-c", `REDISCLI_AUTH="$(cat /secrets/redis_sentinel_password)" redis-cli --no-auth-warning --user sentinel INFO memory`})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(out)
	info := string(b)
	if !strings.Contains(info, "maxmemory:268435456") || !strings.Contains(info, "maxmemory_policy:noeviction") {
		t.Errorf("INFO memory on %s has no 256 MB limit with noeviction:\n%s", primary, info)
	}
}
