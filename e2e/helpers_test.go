package e2e

// The helpers every file shares: the shopper (a client of the shop that
// keeps cookies, with all its methods), plain probes, the waits, the admin
// API and the simulator's HTTP client. helpers_docker_test.go has the
// Docker calls (containers, faults, scaling), helpers_browser_test.go the
// browser plumbing. A helper that serves the claims of one test only
// stays beside that test.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// modes are the session modes the suite drives, each a column of
// DESIGN.md's table. Written here rather than taken from session.Modes: a
// mode joins the suite on purpose, with the outcomes it promises.
var modes = []string{"sticky", "redis", "jwt", "memcached"}

// shopper is one browser-like client of the shop through nginx: it keeps
// cookies (nginx's affinity cookie among them) and remembers which replica
// served each of its requests.
//
// fetch and try fail nothing and return what went wrong, so a goroutine
// other than the test's may call them (one goroutine per shopper); do and
// page fail the test and are for the test's own goroutine.
type shopper struct {
	t        *testing.T
	base     string
	http     *http.Client
	replicas []string
}

// newShopper returns a shopper of the shop through lb, its mode cookie set.
func newShopper(t *testing.T, mode string) *shopper {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(stack.lbURL)
	jar.SetCookies(u, []*http.Cookie{{Name: "mode", Value: mode, Path: "/"}})
	return &shopper{t: t, base: stack.lbURL, http: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

// cartBody is the JSON of GET /api/cart.
type cartBody struct {
	Mode    string `json:"mode"`
	Replica string `json:"replica"`
	Items   []struct {
		ProductID string `json:"product_id"`
		Qty       int    `json:"qty"`
	} `json:"items"`
	Count int    `json:"count"`
	User  string `json:"user"`
	Event string `json:"session_event"`
	Error string `json:"error"`
}

// send makes one request, with the idempotency key (if any) on a request
// with a body, and returns the answer with its body read; the error is
// that of a request that got no answer.
func (s *shopper) send(method, path, body, key string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	// A body cut short decodes to an empty cart; the status still counts.
	raw, _ := io.ReadAll(resp.Body)
	s.replicas = append(s.replicas, resp.Header.Get("X-Replica"))
	return resp, raw, nil
}

// fetch makes one request and returns the status and the cart it answers
// with. A request that got no answer returns status 0 and the error; an
// answer without X-Replica, or whose body names another replica than the
// header, returns its status and cart with an error that says so.
func (s *shopper) fetch(method, path, body string) (int, cartBody, error) {
	resp, raw, err := s.send(method, path, body, "")
	if err != nil {
		return 0, cartBody{}, err
	}
	var c cartBody
	_ = json.Unmarshal(raw, &c)
	var errs []error
	replica := resp.Header.Get("X-Replica")
	if replica == "" {
		errs = append(errs, fmt.Errorf("%s %s: no X-Replica header (status %d)", method, path, resp.StatusCode))
	}
	if c.Replica != "" && c.Replica != replica {
		errs = append(errs, fmt.Errorf("body says replica %q, header %q", c.Replica, replica))
	}
	return resp.StatusCode, c, errors.Join(errs...)
}

// do is fetch for the test's own goroutine: a request that got no answer
// fails the test, an answer without the replica's headers is an error.
func (s *shopper) do(method, path, body string) (int, cartBody) {
	s.t.Helper()
	status, c, err := s.fetch(method, path, body)
	if status == 0 {
		s.t.Fatal(err)
	}
	if err != nil {
		s.t.Error(err)
	}
	return status, c
}

// try makes one request, with the idempotency key on a request with a
// body, and returns the status, or the error of a request that got no
// answer.
func (s *shopper) try(method, path, body, key string) (int, error) {
	resp, _, err := s.send(method, path, body, key)
	if err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// page fetches a page through the shopper's client and returns its HTML.
func (s *shopper) page(path string) string {
	s.t.Helper()
	_, raw, err := s.send("GET", path, "", "")
	if err != nil {
		s.t.Fatal(err)
	}
	return string(raw)
}

// lastReplica is the replica that served the shopper's latest request.
func (s *shopper) lastReplica() string { return s.replicas[len(s.replicas)-1] }

// distinctReplicas lists the replicas that served the shopper, sorted.
func (s *shopper) distinctReplicas() []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range s.replicas {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out
}

// describeCart writes a cart as "[p1 x2, p4 x1]".
func describeCart(c cartBody) string {
	var parts []string
	for _, it := range c.Items {
		parts = append(parts, fmt.Sprintf("%s x%d", it.ProductID, it.Qty))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// sameCart reports whether two carts hold the same lines.
func sameCart(a, b cartBody) bool { return describeCart(a) == describeCart(b) }

// fillCart makes three adds and returns the cart as the shopper sees it.
func fillCart(t *testing.T, s *shopper) cartBody {
	t.Helper()
	for i, body := range []string{`{"product_id":"p2","qty":2}`, `{"product_id":"p5"}`, `{"product_id":"p9","qty":3}`} {
		if status, c := s.do("POST", "/api/cart/items", body); status != 200 {
			t.Fatalf("add %d: %d %s", i, status, c.Error)
		}
	}
	status, c := s.do("GET", "/api/cart", "")
	if status != 200 || c.Count != 6 {
		t.Fatalf("cart after three adds: %d %s", status, describeCart(c))
	}
	return c
}

// shopperPerMode returns a shopper with a filled cart in each mode, and
// the carts.
func shopperPerMode(t *testing.T) (map[string]*shopper, map[string]cartBody) {
	t.Helper()
	shoppers := map[string]*shopper{}
	carts := map[string]cartBody{}
	for _, mode := range modes {
		shoppers[mode] = newShopper(t, mode)
		carts[mode] = fillCart(t, shoppers[mode])
	}
	return shoppers, carts
}

// probe is one request through a load balancer: status and replica, or
// the transport error.
func probe(base, method, path string, header map[string]string) (int, string, error) {
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		return 0, "", err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0, "", err
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Replica"), nil
}

// waitFor polls cond every 100 ms until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("waited %s for %s", timeout, what)
	return 0
}

// waitServing waits until nginx sends requests to the replica again: a
// round-robin pool is probed until the replica answers.
func waitServing(t *testing.T, replica string, timeout time.Duration) time.Duration {
	t.Helper()
	return waitFor(t, timeout, replica+" to serve again", func() bool {
		status, served, err := probe(stack.lbURL, "GET", "/api/products?mode=redis", nil)
		return err == nil && status == 200 && served == replica
	})
}

// waitStackHealthy waits until every replica serves through nginx and
// Redis answers redis-mode requests, so a test leaves the stack as it found it.
func waitStackHealthy(t *testing.T) {
	t.Helper()
	waitFor(t, 60*time.Second, "the stack's three replicas to run", func() bool { return len(replicas(t)) == 3 })
	for _, r := range replicas(t) {
		waitServing(t, r, 60*time.Second)
	}
	waitFor(t, 60*time.Second, "Redis to answer", func() bool {
		status, _, err := probe(stack.lbURL, "GET", "/api/cart?mode=redis", map[string]string{"Cookie": "redis_sid=" + strings.Repeat("A", 103)})
		return err == nil && status == 200
	})
	waitRedisSettled(t)
}

// redisNodes are the session store's nodes (compose services).
var redisNodes = []string{"redis1", "redis2", "redis3"}

// waitRedisSettled waits until the session store is whole again: every
// node running, one primary and two replicas in sync with it as the
// Sentinels see them, all three Sentinels up, and a redis-mode write
// acknowledged (it waits for a replica). It returns the primary.
func waitRedisSettled(t *testing.T) string {
	t.Helper()
	var primary string
	waitFor(t, 90*time.Second, "the Redis nodes and Sentinels to settle", func() bool {
		var st adminStatus
		if adminDo(t, "GET", "/api/admin/status", "", false, &st) != 200 || len(st.RedisNodes) != len(redisNodes) || len(st.Sentinels) != 3 {
			return false
		}
		for _, s := range st.Sentinels {
			if s.State != "up" {
				return false
			}
		}
		primaries := 0
		for _, n := range st.RedisNodes {
			if n.State != "up" || n.Detail != "" {
				return false
			}
			if n.Role == "primary" {
				primaries++
			}
		}
		if primaries != 1 || st.RedisPrimary == "" {
			return false
		}
		primary = st.RedisPrimary
		status, err := newShopper(t, "redis").try("POST", "/api/cart/items", `{"product_id":"p1"}`, "")
		return err == nil && status == 200
	})
	return primary
}

// logEntry is one entry of GET /api/admin/requests.
type logEntry struct {
	ID           string    `json:"id"`
	Time         time.Time `json:"time"`
	RequestID    string    `json:"request_id"`
	Replica      string    `json:"replica"`
	LoadBalancer string    `json:"lb"`
	Mode         string    `json:"mode"`
	Affinity     string    `json:"affinity"`
	Method       string    `json:"method"`
	Path         string    `json:"path"`
	Status       int       `json:"status"`
	DurationMS   float64   `json:"duration_ms"`
	Session      string    `json:"session"`
	SessionEvent string    `json:"session_event"`
}

// adminStatus is GET /api/admin/status.
type adminStatus struct {
	ServedBy string `json:"served_by"`
	Replicas []struct {
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"replicas"`
	Redis struct {
		State string `json:"state"`
	} `json:"redis"`
	RedisPrimary string `json:"redis_primary"`
	RedisNodes   []struct {
		Name   string `json:"name"`
		Role   string `json:"role"`
		State  string `json:"state"`
		Detail string `json:"detail"`
	} `json:"redis_nodes"`
	Sentinels []struct {
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"sentinels"`
	LoadBalancers []struct {
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"load_balancers"`
}

// adminDo calls the admin API through lb, with the admin credentials
// when auth is set, and decodes a JSON answer into out (if not nil).
func adminDo(t *testing.T, method, path, body string, auth bool, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, stack.lbURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth {
		req.SetBasicAuth(adminUser, adminPassword)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
	return resp.StatusCode
}

// requestLog returns the newest limit entries of the request log.
func requestLog(t *testing.T, limit int) []logEntry {
	t.Helper()
	var entries []logEntry
	if status := adminDo(t, "GET", fmt.Sprintf("/api/admin/requests?limit=%d", limit), "", false, &entries); status != 200 {
		t.Fatalf("GET /api/admin/requests = %d", status)
	}
	return entries
}

// replicaState is the state the admin status gives the replica.
func replicaState(t *testing.T, name string) string {
	t.Helper()
	var st adminStatus
	if status := adminDo(t, "GET", "/api/admin/status?mode=redis", "", false, &st); status != 200 {
		return fmt.Sprintf("status answered %d", status)
	}
	for _, r := range st.Replicas {
		if r.Name == name {
			return r.State
		}
	}
	return "missing"
}

// simClient is the HTTP client of the simulator runs here.
func simClient() *http.Client { return &http.Client{Timeout: 10 * time.Second} }

// replaceBetweenMarkers puts table between the <!-- name:begin --> and
// <!-- name:end --> markers of a file.
func replaceBetweenMarkers(path, name, table string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	markers := regexp.MustCompile(`(?s)<!-- ` + name + `:begin -->\n.*?<!-- ` + name + `:end -->`)
	if !markers.Match(b) {
		return fmt.Errorf("%s has no <!-- %s:begin --> ... <!-- %s:end --> section", path, name, name)
	}
	out := markers.ReplaceAllLiteral(b, []byte("<!-- "+name+":begin -->\n"+table+"<!-- "+name+":end -->"))
	return os.WriteFile(path, out, 0o644)
}

// shopLoad is shoppers that read their carts and add (every fourth
// request, with an idempotency key, so nginx may retry it) through lb
// until it ends, for at most 60 s and maxRequests requests each: the load
// under which a fault must cost no client an error.
type shopLoad struct {
	runs     []*loadRun
	answered atomic.Int64 // requests answered 200, all shoppers
	stop     chan struct{}
	done     sync.WaitGroup
	end      func()
}

// loadRun is one shopper's part of a shopLoad; read it after end.
type loadRun struct {
	mode    string
	shopper *shopper
	log     []timedRequest
	adds    int      // adds answered 200
	cart    cartBody // read once the load ended
	err     error    // of that read
}

// timedRequest is one request of a load.
type timedRequest struct {
	sent, answered time.Time
	status         int // 0: no answer (failure says why)
	failure        string
}

// startShopLoad starts one shopper per mode, each pausing pace between
// requests. The test must call end (a defer is enough): it stops the
// shoppers and waits until each has read its cart.
func startShopLoad(t *testing.T, modes []string, maxRequests int, pace time.Duration) *shopLoad {
	t.Helper()
	l := &shopLoad{stop: make(chan struct{})}
	stop := sync.OnceFunc(func() { close(l.stop) })
	l.end = func() { stop(); l.done.Wait() }
	for _, mode := range modes {
		r := &loadRun{mode: mode, shopper: newShopper(t, mode)}
		l.runs = append(l.runs, r)
		l.done.Go(func() {
			s := r.shopper
			deadline := time.After(60 * time.Second)
		loop:
			for n := 0; n < maxRequests; n++ {
				select {
				case <-l.stop:
					break loop
				case <-deadline:
					break loop
				default:
				}
				method, path, body := "GET", "/api/cart", ""
				if n%4 == 0 {
					// Rotate products: a line holds at most 99.
					method, path, body = "POST", "/api/cart/items", fmt.Sprintf(`{"product_id":"p%d"}`, 1+(n/4)%10)
				}
				q := timedRequest{sent: time.Now()}
				status, err := s.try(method, path, body, fmt.Sprintf("load-%p-%d", s, n))
				q.answered, q.status = time.Now(), status
				switch {
				case err != nil:
					q.status, q.failure = 0, err.Error()
				case status != 200:
					q.failure = fmt.Sprintf("%s %s answered %d", method, path, status)
				default:
					l.answered.Add(1)
					if method == "POST" {
						r.adds++
					}
				}
				r.log = append(r.log, q)
				if pace > 0 {
					time.Sleep(pace)
				}
			}
			_, r.cart, r.err = s.fetch("GET", "/api/cart", "")
		})
	}
	return l
}
