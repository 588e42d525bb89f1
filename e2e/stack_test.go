// Package e2e starts the real compose stack (nginx, three replicas to begin
// with, Redis) with the README's `docker compose up` and drives it over
// HTTP through nginx and through a real headless browser, as a person
// would.
//
// The stack is started once for the package. Without Docker the tests skip
// with a message, unless E2E_REQUIRED=1 (CI), where that is a failure.
// Where no registry is reachable, run `.ci/setup` once first: it tags
// Debian stand-ins under the image names compose.yaml defaults to. What every test that needs
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
//     and jwt keep working; the primary killed under keyed adds.
//   - splitbrain_test.go: the Redis primary frozen through a failover,
//     which loses acknowledged writes unless they wait for every replica
//     up.
//   - stale_test.go: a replica frozen with a keyed add in its socket runs
//     it when unpaused, after 20 newer adds: it is not applied twice.
//   - soak_test.go: the soak, faults overlapping for a minute (SOAK sets
//     how long; soakfaults_test.go is its schedule of faults): no
//     acknowledged add lost, none applied twice, no read going backwards,
//     in redis, jwt and memcached mode.
//   - memcached_test.go: memcached mode's faults: a server restarted loses
//     its share of the sessions and nothing else, a server stopped, and
//     eviction when the admin page fills the servers.
//   - security_test.go: what is refused: DNS rebinding (421), the Redis
//     app user's commands, the values once published as secrets, admin
//     password guessing, sign-outs that end a session everywhere, and
//     Redis refusing writes rather than evicting sessions.
//   - scorecard_test.go: the scorecard: the admin's, started from the page
//     and read through the API, then the faults only Docker can cause
//     (kill, stop, pause, disconnect, scale-in, rolling deploy, lb killed),
//     measured by the same code; every mode × fault cell keeps its promise.
//   - loadbalancer_test.go: lb killed: lb2 serves every mode, and a sticky
//     browser keeps its replica.
//   - scaling_test.go: the stack scaled out 3→6 and in 6→3 under long
//     sessions in three modes at once (new replicas get only new sessions;
//     scale-in loses exactly the sticky sessions on the removed replicas),
//     every technique at 6, 3 and 1 replicas, the admin page following in
//     a browser, and compose/rolling-deploy under the same load (redis and
//     jwt fail nothing, sticky loses every session).
//   - admin_test.go: the admin page and its API: the request log, the
//     simulator's spread per mode and technique, and the page in a browser
//     (the live log, crashing a replica from it, the experiment and the
//     simulator).
//   - browser_test.go: the shop in a real browser: the mode toggle, adding
//     by clicking, the cart, the phone layout.
//   - bench_test.go: BenchmarkStack, requests per second and latency per
//     mode through nginx; benchref_test.go: the machine's reference it
//     measures beside the stack (a bare nginx, bare Go servers);
//     benchclient_test.go: its load generator; benchreport_test.go: the
//     tables and ratios it writes into docs/performance.md.
//   - swarm_test.go: the same stack on Docker Swarm (compose/swarm.yaml),
//     only with SWARM_E2E=1 and alone: modes, scale, a rolling update and
//     a killed task; swarmnodes_test.go: over three nodes (two of them
//     Docker-in-Docker workers), and a node's death.
//
// This file is the stack: TestMain starts it once for the package, upStack
// starts another with other settings, needStack skips a test without it.
// What the tests drive it with is in four files of shared helpers:
// helpers_test.go (the shopper and all its methods, probes and waits, the
// admin API client), helpers_docker_test.go (containers by name, the
// faults injected through the Docker API, scaling with the Compose CLI),
// helpers_browser_test.go (the browser plumbing) and loads_test.go (the
// simulator's loads during scaling and rolling updates). The stack's life
// and the clients change for different reasons, hence separate files.
//
// Only a test's own goroutine stops the test (t.Fatal, and the helpers
// that call it: shopper.do, waitFor, crashReplica...). A goroutine the
// test starts uses helpers that return errors (shopper.fetch, shopper.try,
// probe) and hands what it saw, errors included, to the test's goroutine,
// which reports it and decides; the test waits for its goroutines before
// it returns, however it ends.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sessiondemo/shop/e2e/dockertest"
)

// stack is the running compose stack, shared by the package's tests.
var stack struct {
	// lbURL is the load balancer's base URL on 127.0.0.1.
	lbURL string
	// lb2URL is the second load balancer's base URL.
	lb2URL string
	// up is the stack as upStack started it: composeCLI drives it.
	up *runningStack
	// err is why the stack is not running; skip or fail with it.
	err error
	// skip is true when Docker itself is missing (and E2E_REQUIRED is not set).
	skip bool
}

// imageVars are passed from the environment to the compose file, so the
// stand-in images of .ci/setup (or any others) are used.
var imageVars = []string{"NGINX_IMAGE", "REDIS_IMAGE", "MEMCACHED_IMAGE", "GO_IMAGE", "RUNTIME_IMAGE", "APP_IMAGE", "GOPROXY", "GOFLAGS"}

func TestMain(m *testing.M) {
	dockertest.Prepare()
	code := func() int {
		if swarmRequested() {
			// TestSwarm runs alone: leaving a swarm breaks the DNS of a
			// compose stack running at that moment (swarm_test.go).
			stack.err, stack.skip = errors.New("SWARM_E2E=1 runs TestSwarm alone, without the compose stack"), true
			return m.Run()
		}
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
	if out, err := exec.CommandContext(ctx, "docker", "compose", "version").CombinedOutput(); err != nil {
		stack.err = fmt.Errorf("docker compose (Compose v2) does not run: %v: %s (eval \"$(.ci/setup)\" installs it)", err, bytes.TrimSpace(out))
		stack.skip = !dockertest.Required()
		return func() {}
	}
	up, down, err := upStack(ctx, nil)
	if err != nil {
		stack.err = err
		return down
	}
	stack.lbURL, stack.lb2URL, stack.up = up.urls[0], up.urls[1], up
	start := time.Now()
	if err := waitRedisMode(ctx, stack.lbURL, 2*time.Minute); err != nil {
		stack.err = err
		return down
	}
	fmt.Fprintf(os.Stderr, "e2e: every replica answered in redis mode %s later\n", time.Since(start).Round(100*time.Millisecond))
	// The README's one command for the generated admin password.
	out, err := up.compose(ctx, "exec", "-T", "app", "/app/server", "admin-password")
	if err != nil {
		stack.err = fmt.Errorf("docker compose exec app /app/server admin-password: %w: %s", err, out)
		return down
	}
	adminPassword = strings.TrimSpace(string(out))
	return down
}

// waitRedisMode waits until redis-mode reads through the load balancer at
// base are answered by every replica: six in a row, which round robin
// spreads two to each. The containers' probes pass before each replica's
// Redis client has found the primary through the Sentinels: with the
// probes alone, the first test's redis-mode load once got 405 answers
// "cannot reach Redis" from app-1. The cookie names a session that does
// not exist, so each read asks Redis (as waitStackHealthy's does).
func waitRedisMode(ctx context.Context, base string, d time.Duration) error {
	header := map[string]string{"Cookie": "redis_sid=" + strings.Repeat("A", 103)}
	deadline := time.Now().Add(d)
	for {
		answered := 0
		for answered < 6 {
			status, _, err := probe(base, "GET", "/api/cart?mode=redis", header)
			if err != nil || status != 200 {
				break
			}
			answered++
		}
		if answered == 6 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis mode was not answered by every replica through %s within %s", base, d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// runningStack is a compose stack upStack started.
type runningStack struct {
	project string
	// env is what the compose file is read with.
	env map[string]string
	// urls are lb's and lb2's base URLs.
	urls []string
}

// compose runs `docker compose` on the stack: its project name, the
// compose file, and its variables on top of this process's environment.
func (rs *runningStack) compose(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "docker", append([]string{"compose", "-p", rs.project, "-f", "../compose/compose.yaml"}, args...)...)
	cmd.Env = rs.environ()
	return cmd.CombinedOutput()
}

// environ is this process's environment with the stack's compose
// variables and project name, for commands that drive it.
func (rs *runningStack) environ() []string {
	env := append(os.Environ(), "COMPOSE_PROJECT_NAME="+rs.project)
	for k, v := range rs.env {
		env = append(env, k+"="+v)
	}
	return env
}

// e2eAllowedHost is the name the e2e stacks add to their Host allowlist
// (ALLOWED_HOSTS), so a test can show an added name served.
const e2eAllowedHost = "shop.e2e.test"

// upStack starts the compose stack under a new project name, with env
// added to the compose file's variables, and returns it and the function
// that takes it down (also after an error). It runs the README's command,
// `docker compose up`, with the CLI: the scaling tests then scale the same
// stack with the same CLI. (testcontainers-go's compose module labels the
// network its own way, and the CLI then recreates the whole stack.)
func upStack(ctx context.Context, extra map[string]string) (*runningStack, func(), error) {
	b := make([]byte, 4)
	rand.Read(b)
	rs := &runningStack{project: "sessiondemo-e2e-" + hex.EncodeToString(b), env: map[string]string{"LB_PORT": "0", "LB2_PORT": "0", "APP_REPLICAS": "3", "ALLOWED_HOSTS": e2eAllowedHost, "PPROF_ADDR": ":6060"}}
	for _, name := range imageVars {
		if v := os.Getenv(name); v != "" {
			rs.env[name] = v
		}
	}
	for k, v := range extra {
		rs.env[k] = v
	}
	down := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if out, err := rs.compose(ctx, "down", "--volumes", "--remove-orphans", "--timeout", "5"); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: tearing down %s: %v\n%s\n", rs.project, err, out)
		}
	}
	start := time.Now()
	fmt.Fprintf(os.Stderr, "e2e: starting compose project %s (building the app image the first time takes a few minutes)\n", rs.project)
	// Not --wait: Docker probes every 30 s, and engines before 25 run the
	// first probe only 30 s after the start; waitProbes runs them now.
	if out, err := rs.compose(ctx, "up", "-d"); err != nil {
		return nil, down, fmt.Errorf("docker compose up: %w\n%s\n(%s)", err, lastLines(out, 30), dockertest.NoRegistryHint)
	}
	if err := rs.waitProbes(ctx); err != nil {
		return nil, down, err
	}
	for _, name := range []string{"lb", "lb2"} {
		out, err := rs.compose(ctx, "port", name, "80")
		if err != nil {
			return nil, down, fmt.Errorf("docker compose port %s 80: %w: %s", name, err, out)
		}
		rs.urls = append(rs.urls, "http://"+strings.TrimSpace(string(out)))
	}
	fmt.Fprintf(os.Stderr, "e2e: %s up in %s, nginx at %s and %s\n", rs.project, time.Since(start).Round(time.Second), rs.urls[0], rs.urls[1])
	return rs, down, nil
}

// waitProbes runs compose/wait-healthy on every container of the stack,
// stopped ones included: what `docker compose up --wait` checks, without
// waiting for Docker's next probe.
func (rs *runningStack) waitProbes(ctx context.Context) error {
	out, err := rs.compose(ctx, "ps", "-a", "-q")
	if err != nil {
		return fmt.Errorf("docker compose ps: %w: %s", err, out)
	}
	cmd := exec.CommandContext(ctx, "../compose/wait-healthy", append([]string{"--timeout", "120"}, strings.Fields(string(out))...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: compose/wait-healthy: %w: %s", rs.project, err, out)
	}
	return nil
}

// lastLines returns the last n lines of out.
func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// needStack skips or fails the test when the stack is not running.
func needStack(t testing.TB) {
	t.Helper()
	if stack.err == nil {
		return
	}
	if stack.skip && swarmRequested() {
		t.Skip(stack.err)
	}
	if stack.skip {
		t.Skipf("%v (E2E_REQUIRED=1 makes this a failure)", stack.err)
	}
	t.Fatal(stack.err)
}
