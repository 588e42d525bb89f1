package e2e

// The helpers every file shares, in one place: the shopper (a client of
// the shop that keeps cookies, with all its methods), plain probes, the
// waits, the Docker calls that inject faults, the admin API, the
// simulator's HTTP client and the browser plumbing. A helper that serves
// the claims of one test only stays beside that test.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/remote"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// modes are the session modes the suite drives, each a column of
// DESIGN.md's table. Written here rather than taken from session.Modes: a
// mode joins the suite on purpose, with the outcomes it promises.
var modes = []string{"sticky", "redis", "jwt"}

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
	Count    int    `json:"count"`
	User     string `json:"user"`
	Degraded string `json:"degraded"`
	Event    string `json:"session_event"`
	Error    string `json:"error"`
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
}

// replicaName is a replica's name, app-<its compose container number>.
var replicaName = regexp.MustCompile(`^app-([0-9]+)$`)

// service returns the container of a compose service (lb, lb2, redis) or
// of a replica by its name (app-2).
func service(t *testing.T, name string) *testcontainers.DockerContainer {
	t.Helper()
	var cs []*testcontainers.DockerContainer
	if m := replicaName.FindStringSubmatch(name); m != nil {
		cs = containers(t, "app", "com.docker.compose.container-number="+m[1])
	} else {
		cs = containers(t, name)
	}
	if len(cs) == 0 {
		t.Fatalf("no container for %s in %s", name, stack.project)
	}
	return cs[0]
}

// containers lists the containers of a service of the stack (stopped ones
// too) that carry every label given.
func containers(t *testing.T, svc string, labels ...string) []*testcontainers.DockerContainer {
	t.Helper()
	ctx := context.Background()
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		t.Fatal(err)
	}
	defer provider.Close()
	f := make(client.Filters).Add("label", "com.docker.compose.project="+stack.project).Add("label", "com.docker.compose.service="+svc)
	for _, l := range labels {
		f = f.Add("label", l)
	}
	res, err := provider.Client().ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	var out []*testcontainers.DockerContainer
	for _, item := range res.Items {
		c, err := provider.ContainerFromType(ctx, item)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// replicas returns the names of the running replicas (app-1, app-2, ...),
// in the order of their numbers, from Docker: what compose runs now.
func replicas(t *testing.T) []string {
	t.Helper()
	ctx := context.Background()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{Filters: make(client.Filters).
		Add("label", "com.docker.compose.project="+stack.project).Add("label", "com.docker.compose.service=app")})
	if err != nil {
		t.Fatal(err)
	}
	var numbers []int
	for _, c := range res.Items {
		n, err := strconv.Atoi(c.Labels["com.docker.compose.container-number"])
		if err != nil {
			t.Fatalf("container %s has no compose container number", c.ID)
		}
		numbers = append(numbers, n)
	}
	sort.Ints(numbers)
	names := make([]string, len(numbers))
	for i, n := range numbers {
		names[i] = "app-" + strconv.Itoa(n)
	}
	return names
}

// composeCLI runs `docker compose` on the shared stack, as a person
// would, and returns its output; a failure fails the test.
func composeCLI(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rs := runningStack{project: stack.project, env: stack.env}
	out, err := rs.compose(ctx, args...)
	if err != nil {
		t.Fatalf("docker compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// stackEnv is the environment that reaches the shared stack with plain
// `docker compose` commands (and scripts that run them).
func stackEnv() []string {
	rs := runningStack{project: stack.project, env: stack.env}
	return rs.environ()
}

// scaleTo runs the README's scaling command on the shared stack and waits
// until exactly n replicas run and nginx sends requests to each of them.
func scaleTo(t *testing.T, n int) time.Duration {
	t.Helper()
	start := time.Now()
	composeCLI(t, "up", "-d", "--no-recreate", "--no-build", "--scale", "app="+strconv.Itoa(n), "app")
	names := replicas(t)
	if len(names) != n {
		t.Fatalf("after scaling to %d, %d replicas run: %v", n, len(names), names)
	}
	for _, r := range names {
		waitServing(t, r, 60*time.Second)
	}
	// nginx re-resolves the replicas every second, each pool on its own;
	// until then it may still try a removed replica's address and wait out
	// its connect timeout. Settled: in every pool, a round of requests
	// that nginx spreads (no affinity cookie, no sid, a new address each)
	// all answered at once, by the replicas that run.
	paths := []string{"/api/products?mode=redis", "/api/products?mode=sticky", "/api/products?mode=sticky&affinity=url", "/api/products?mode=sticky&affinity=ip"}
	waitFor(t, 30*time.Second, "nginx to send nothing to a removed replica", func() bool {
		for i := range 3 * n {
			for _, path := range paths {
				began := time.Now()
				status, r, err := probe(stack.lbURL, "GET", path, map[string]string{"X-Forwarded-For": fmt.Sprintf("198.18.%d.10", i)})
				if err != nil || status != 200 || !slices.Contains(names, r) || time.Since(began) > 500*time.Millisecond {
					return false
				}
			}
		}
		return true
	})
	return time.Since(start)
}

// crashReplica SIGKILLs the replica process inside the service's container
// (through the Docker API's exec), as a crash would: unlike `docker kill`,
// this leaves Docker's restart policy free to bring the replica back.
func crashReplica(t *testing.T, name string) time.Time {
	t.Helper()
	c := service(t, name)
	before, err := c.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	// The exec dies with the container; its own result says nothing.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, _ = c.Exec(ctx, []string{"/app/server", "crash"})
	waitFor(t, 10*time.Second, name+" to be restarted after the crash", func() bool {
		ins, err := c.Inspect(context.Background())
		return err == nil && ins.RestartCount > 0 && ins.State.StartedAt != before.StartedAt
	})
	return at
}

// dockerDo runs op on the service's container through the Docker API;
// an error fails the test, naming what was done to which service.
func dockerDo(t *testing.T, what, name string, op func(ctx context.Context, cli *testcontainers.DockerClient, id string) error) {
	t.Helper()
	cli, err := testcontainers.NewDockerClientWithOpts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if err := op(context.Background(), cli, service(t, name).GetContainerID()); err != nil {
		t.Fatalf("%s %s: %v", what, name, err)
	}
}

// killContainer sends SIGKILL through the Docker API: a manual stop, after
// which Docker does not restart the container.
func killContainer(t *testing.T, name string) {
	t.Helper()
	dockerDo(t, "kill", name, func(ctx context.Context, cli *testcontainers.DockerClient, id string) error {
		_, err := cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: "KILL"})
		return err
	})
}

// startContainer starts a stopped service again and waits until it runs.
func startContainer(t *testing.T, name string) {
	t.Helper()
	dockerDo(t, "start", name, func(ctx context.Context, cli *testcontainers.DockerClient, id string) error {
		_, err := cli.ContainerStart(ctx, id, client.ContainerStartOptions{})
		return err
	})
}

// stopContainer sends SIGTERM and waits up to grace for a graceful exit.
func stopContainer(t *testing.T, name string, grace time.Duration) {
	t.Helper()
	secs := int(grace.Seconds())
	dockerDo(t, "stop", name, func(ctx context.Context, cli *testcontainers.DockerClient, id string) error {
		_, err := cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs})
		return err
	})
}

// The compose file's default admin credentials (README).
const (
	adminUser     = "admin"
	adminPassword = "ZuFP0qsAVgUO-aXm"
)

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
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
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

// screenshotDir is where the browser tests save their screenshots:
// e2e/screenshots (the README's pictures) with UPDATE_SCREENSHOTS=1,
// SCREENSHOT_DIR if set, a folder under the system temp dir otherwise.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("SCREENSHOT_DIR")
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		dir = "screenshots"
	}
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "sessiondemo-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// newBrowser starts a headless Chromium and returns a context that drives
// it, and the shop's base URL as that browser reaches it. A local Chromium
// is used when there is one; otherwise a headless-shell container
// (CHROME_IMAGE, default chromedp/headless-shell) on the stack's network.
func newBrowser(t *testing.T) (context.Context, string) {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		path, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		return localBrowser(t, path, t.TempDir()), stack.lbURL
	}
	return newContainerBrowser(t)
}

// localBrowser starts the headless Chromium at path with the project's
// flags and the given (fresh) user-data dir.
func localBrowser(t *testing.T, path, userDataDir string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(userDataDir),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return ctx
}

// newContainerBrowser starts a headless-shell container on the stack's
// network, for machines without a local Chromium.
func newContainerBrowser(t *testing.T) (context.Context, string) {
	t.Helper()
	image := os.Getenv("CHROME_IMAGE")
	if image == "" {
		image = "chromedp/headless-shell:latest"
	}
	ctx := context.Background()
	lb := service(t, "lb")
	networks, err := lb.Networks(ctx)
	if err != nil || len(networks) == 0 {
		t.Fatalf("stack network: %v", err)
	}
	ctr, err := testcontainers.Run(ctx, image,
		testcontainers.WithExposedPorts("9222/tcp"),
		testcontainers.WithWaitStrategy(wait.ForListeningPort("9222/tcp").WithStartupTimeout(time.Minute)),
		tcnetwork.WithNetworkName(nil, networks[0]),
	)
	testcontainers.CleanupContainer(t, ctr)
	if err != nil {
		t.Fatalf("no local Chromium (apt-get install chromium) and the %s container did not start: %v", image, err)
	}
	endpoint, err := ctr.PortEndpoint(ctx, "9222/tcp", "ws")
	if err != nil {
		t.Fatal(err)
	}
	allocCtx, cancelAlloc := remote.NewAllocator(context.Background(), endpoint)
	bctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return bctx, "http://lb"
}

// newCookielessBrowser starts a local headless Chromium whose profile
// blocks every cookie (the content setting a person sets under "Block all
// cookies"), and returns a context that drives it.
func newCookielessBrowser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("E2E_REQUIRED") == "1" {
			t.Fatal("no local Chromium to start with cookies blocked (apt-get install chromium)")
		}
		t.Skip("no local Chromium to start with cookies blocked (apt-get install chromium)")
	}
	dir := t.TempDir()
	prefs := `{"profile":{"default_content_setting_values":{"cookies":2}}}`
	if err := os.MkdirAll(filepath.Join(dir, "Default"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Default", "Preferences"), []byte(prefs), 0o644); err != nil {
		t.Fatal(err)
	}
	return localBrowser(t, path, dir)
}

// startBrowser starts the browser behind ctx with a viewport of width x
// height and returns the context for the test's steps, which ends after
// timeout. The browser lives as long as the context of its first action,
// so that one has no deadline; the steps have one.
func startBrowser(t *testing.T, ctx context.Context, width, height int64, timeout time.Duration) context.Context {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height)); err != nil {
		t.Fatalf("start browser: %v", err)
	}
	step, cancel := context.WithTimeout(ctx, timeout)
	t.Cleanup(cancel)
	return step
}

// addToCart clicks the product's add button and waits for the "In cart"
// badge on it. Each add reloads the page: the badge is the new page's, not
// a flash the previous page may still show.
func addToCart(product string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Click(byTestID("add-"+product)),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`[data-product-id=%q] [data-testid="in-cart"]`, product))),
	)
}

// cartShows waits until the cart page shows a line for each product.
func cartShows(products ...string) chromedp.Action[chromedp.Void] {
	var steps []chromedp.Action[chromedp.Void]
	for _, p := range products {
		steps = append(steps, chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`[data-testid="cart-line"][data-product-id=%q]`, p))))
	}
	return chromedp.Steps(steps...)
}

// screenshot saves a full-page PNG under name (quality 100 means PNG).
func screenshot(t *testing.T, dir, name string) chromedp.Action[chromedp.Void] {
	return saveShot(t, dir, name, chromedp.FullScreenshot(100))
}

// viewportShot saves a PNG of what the viewport shows, for tall pages.
func viewportShot(t *testing.T, dir, name string) chromedp.Action[chromedp.Void] {
	return saveShot(t, dir, name, chromedp.CaptureScreenshot())
}

// saveShot saves what capture takes as dir/name.png.
func saveShot(t *testing.T, dir, name string, capture chromedp.Action[[]byte]) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		png, err := capture(ctx, target)
		if err != nil {
			return err
		}
		path := filepath.Join(dir, name+".png")
		t.Logf("screenshot %s", path)
		return os.WriteFile(path, png, 0o644)
	})
}

// byTestID selects the first element with the data-testid.
func byTestID(id string) chromedp.CSS { return chromedp.CSS(fmt.Sprintf(`[data-testid=%q]`, id)) }

// scrollTo scrolls the element to the top of the viewport, for a
// screenshot of what matters.
func scrollTo(selector string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](fmt.Sprintf(`(document.querySelector(%q).scrollIntoView(), true)`, selector))(ctx, target)
		return err
	})
}

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
