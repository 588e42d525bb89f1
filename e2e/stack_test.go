// Package e2e starts the real compose stack (nginx, three replicas, Redis)
// with testcontainers-go and drives it over HTTP through nginx and through
// a real headless browser, as a person would.
//
// The stack is started once for the package. Without Docker the tests skip
// with a message, unless E2E_REQUIRED=1 (CI), where that is a failure.
// Where no registry is reachable, run `eval "$(.ci/setup)"` first so the
// image variables name the Debian stand-ins. What every test that needs
// Docker shares (this package and the Redis store's tests) is in
// e2e/dockertest.
//
// One file per fault or capability, whichever way a test drives the stack
// (HTTP, the admin API or a browser), so that "where is X tested?" has one
// answer:
//
//   - modes_test.go: each mode while nothing fails: sticky keeps a browser
//     on one replica, redis and jwt spread its requests with the cart whole
//     (one shopper, then the simulator's 30 clients); the HTTP contract
//     through nginx; a signed-out JWT is refused on every replica.
//   - affinity_test.go: the sticky techniques besides the cookie: url (a
//     client without cookies, and a browser that blocks them) and ip; the
//     technique toggle in a browser.
//   - concurrency_test.go: many adds at once from one browser: none lost in
//     sticky and redis, the last writer wins in jwt; the safe Redis write
//     against the naive one, through nginx and as the admin experiment.
//   - timeouts_test.go: idle and absolute session timeouts, on a stack of
//     their own with short settings.
//   - crash_test.go: a replica crashes (its process SIGKILLed) and comes
//     back by itself: over HTTP, in a browser (the sticky cart page says
//     what was lost), on the admin status, and under load (nothing lost in
//     redis and jwt).
//   - stop_test.go: a replica stopped gracefully (SIGTERM) under load: no
//     error in redis and jwt; the sticky browser moves on.
//   - hang_test.go: a hung replica: nginx tries another, and the request
//     log shows both attempts.
//   - redis_test.go: Redis restarted (by Docker, or from the admin page)
//     keeps redis carts; Redis down: redis mode answers a clear 503 and
//     overwrites nothing, jwt reports its revocation check degraded, sticky
//     and jwt keep working.
//   - loadbalancer_test.go: lb killed: lb2 serves every mode, and a sticky
//     browser keeps its replica.
//   - admin_test.go: the admin page and its API: the request log, the
//     simulator's spread per mode and technique, and the page in a browser
//     (the live log, crashing a replica from it, the experiment and the
//     simulator).
//   - browser_test.go: the shop in a real browser: the mode toggle, adding
//     by clicking, the cart, the phone layout.
//   - bench_test.go: BenchmarkReadThroughNginx, requests per second and
//     latency per mode through nginx.
//
// This file is the stack: TestMain starts it once for the package, upStack
// starts another with other settings, needStack skips a test without it.
// helpers_test.go holds what the tests drive it with: the shopper and all
// its methods, probes and waits, the Docker calls that inject faults, the
// admin API client and the browser plumbing. The stack's life and the
// clients change for different reasons, hence two files.
//
// Only a test's own goroutine stops the test (t.Fatal, and the helpers
// that call it: shopper.do, waitFor, crashReplica...). A goroutine the
// test starts uses helpers that return errors (shopper.fetch, shopper.try,
// probe) and hands what it saw, errors included, to the test's goroutine,
// which reports it and decides; the test waits for its goroutines before
// it returns, however it ends.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go/modules/compose"

	"github.com/sessiondemo/shop/e2e/dockertest"
)

// stack is the running compose stack, shared by the package's tests.
var stack struct {
	// lbURL is the load balancer's base URL on 127.0.0.1.
	lbURL string
	// lb2URL is the second load balancer's base URL.
	lb2URL string
	// compose controls the stack.
	compose *compose.DockerCompose
	// err is why the stack is not running; skip or fail with it.
	err error
	// skip is true when Docker itself is missing (and E2E_REQUIRED is not set).
	skip bool
}

// imageVars are passed from the environment to the compose file, so the
// stand-in images of .ci/setup (or any others) are used.
var imageVars = []string{"NGINX_IMAGE", "REDIS_IMAGE", "GO_IMAGE", "RUNTIME_IMAGE", "APP_IMAGE", "GOPROXY", "GOFLAGS"}

func TestMain(m *testing.M) {
	dockertest.Prepare()
	code := func() int {
		down := startStack()
		defer down()
		return m.Run()
	}()
	os.Exit(code)
}

// startStack brings the shared stack up and returns the function that
// takes it down again, volumes included.
func startStack() (down func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if err := dockertest.Reachable(ctx); err != nil {
		stack.err, stack.skip = err, !dockertest.Required()
		return func() {}
	}
	dc, urls, down, err := upStack(ctx, nil)
	if err != nil {
		stack.err = err
		return down
	}
	stack.lbURL, stack.lb2URL, stack.compose = urls[0], urls[1], dc
	return down
}

// upStack starts the compose stack under a new project name, with env
// added to the compose file's variables, and returns it with the URLs of
// lb and lb2 and the function that takes it down (also after an error).
func upStack(ctx context.Context, extra map[string]string) (*compose.DockerCompose, []string, func(), error) {
	down := func() {}
	b := make([]byte, 4)
	rand.Read(b)
	project := "sessiondemo-e2e-" + hex.EncodeToString(b)
	dc, err := compose.NewDockerComposeWith(compose.WithStackFiles("../compose/compose.yaml"), compose.StackIdentifier(project))
	if err != nil {
		return nil, nil, down, fmt.Errorf("load compose file: %w", err)
	}
	env := map[string]string{"LB_PORT": "0", "LB2_PORT": "0"}
	for _, name := range imageVars {
		if v := os.Getenv(name); v != "" {
			env[name] = v
		}
	}
	for k, v := range extra {
		env[k] = v
	}
	dc.WithEnv(env)
	down = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := dc.Down(ctx, compose.RemoveOrphans(true), compose.RemoveVolumes(true)); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: tearing down %s: %v\n", project, err)
		}
	}
	start := time.Now()
	fmt.Fprintf(os.Stderr, "e2e: starting compose project %s (building the app image the first time takes a few minutes)\n", project)
	// Wait(true) waits for every service's health check: the replicas
	// answer /healthz and nginx answers through them.
	if err := dc.Up(ctx, compose.Wait(true)); err != nil {
		return nil, nil, down, fmt.Errorf("compose up: %w (%s)", err, dockertest.NoRegistryHint)
	}
	var urls []string
	for _, name := range []string{"lb", "lb2"} {
		lb, err := dc.ServiceContainer(ctx, name)
		if err != nil {
			return nil, nil, down, err
		}
		endpoint, err := lb.PortEndpoint(ctx, "80/tcp", "http")
		if err != nil {
			return nil, nil, down, err
		}
		urls = append(urls, endpoint)
	}
	fmt.Fprintf(os.Stderr, "e2e: %s up in %s, nginx at %s and %s\n", project, time.Since(start).Round(time.Second), urls[0], urls[1])
	return dc, urls, down, nil
}

// needStack skips or fails the test when the stack is not running.
func needStack(t testing.TB) {
	t.Helper()
	if stack.err == nil {
		return
	}
	if stack.skip {
		t.Skipf("%v (E2E_REQUIRED=1 makes this a failure)", stack.err)
	}
	t.Fatal(stack.err)
}
