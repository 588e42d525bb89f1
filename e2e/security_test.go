package e2e

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
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
		// The node's environment has the app user's name and password
		// (REDIS_USERNAME, REDISCLI_AUTH), as its healthcheck uses them.
		_, out, err := service(t, primary).Exec(t.Context(), []string{"sh", "-c", `redis-cli --no-auth-warning --user "$REDIS_USERNAME" ` + args})
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
