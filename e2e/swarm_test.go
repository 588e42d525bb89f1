package e2e

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessiondemo/shop/e2e/dockertest"
	"github.com/sessiondemo/shop/web/session"
)

// The same stack on Docker Swarm: compose/swarm-deploy deploys
// compose/swarm.yaml on a single-node swarm, and the test drives it
// through nginx with the helpers the compose tests use.
//
// It changes the engine's global state (a swarm), so it runs only with
// SWARM_E2E=1, and then alone: TestMain starts no compose stack, since
// leaving a swarm breaks the embedded DNS of a compose stack running at
// that moment. .ci/run runs it as a step of its own, after go test ./...

// swarmRequested is whether SWARM_E2E=1 asks for TestSwarm.
func swarmRequested() bool { return os.Getenv("SWARM_E2E") == "1" }

// swarmModes are the loads of the rolling update: every mode.
var swarmModes = []loadMode{
	{session.Sticky, session.AffinityCookie},
	{session.Redis, ""},
	{session.JWT, ""},
	{session.Memcached, ""},
}

// TestSwarm deploys the stack on Swarm with the README's command, then
// checks what the compose tests check, the Swarm way:
//   - every mode and technique through nginx, and the admin page finding
//     the replicas through tasks.app;
//   - `docker service scale` 3→5→3: the carts stay (sticky's too, unless
//     its replica was removed), and the new replicas serve;
//   - `docker service update --force` (rolling) under load in every
//     mode: redis, jwt and memcached fail and lose nothing, sticky loses
//     every session (each replica is replaced);
//   - a task killed from outside (`docker kill`) is replaced in its slot
//     by a new container, the admin page shows it leave and come back,
//     and the carts of the external stores are whole.
//
// It leaves the swarm only if it made it.
func TestSwarm(t *testing.T) {
	if !swarmRequested() {
		t.Skip("SWARM_E2E=1 runs it: it puts this Docker engine in a swarm, so never unasked")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := dockertest.Reachable(ctx); err != nil {
		t.Fatal(err)
	}
	var times []string
	timed := func(what string, d time.Duration) {
		times = append(times, fmt.Sprintf("| %s | %.1f s |", what, d.Seconds()))
	}
	t.Cleanup(func() { t.Logf("times on Swarm:\n\n| step | took |\n|---|---|\n%s", strings.Join(times, "\n")) })

	joinSwarm(t, timed)
	sw := deploySwarmStack(t, timed, 3)
	sw.useLoadBalancers(t, timed)

	// Every mode and technique, and the admin page's view.
	names := waitSwarmReplicas(t, 3, 90*time.Second)
	waitRedisSettled(t)
	// Swarm's DNS lists a Memcached task only once it is healthy, and
	// until then a replica cannot reach that server: in one CI run the
	// first memcached add got a 503, likely for that. Six new sessions in
	// a row, spread over the replicas and the two servers, must be added.
	waitFor(t, 60*time.Second, "every replica to reach Memcached", func() bool {
		for range 6 {
			if status, err := newShopper(t, "memcached").try("POST", "/api/cart/items", `{"product_id":"p1"}`, ""); err != nil || status != 200 {
				return false
			}
		}
		return true
	})
	checkTechniques(t, names)
	shoppers, carts := shopperPerMode(t)
	for _, mode := range modes {
		s := shoppers[mode]
		for range 6 {
			if status, c := s.do("GET", "/api/cart", ""); status != 200 || !sameCart(c, carts[mode]) {
				t.Errorf("%s: cart %d %s, want %s", mode, status, describeCart(c), describeCart(carts[mode]))
			}
		}
		spread := len(s.distinctReplicas())
		if (mode == "sticky") != (spread == 1) {
			t.Errorf("%s: served by %v; want one replica for sticky, several for the others", mode, s.distinctReplicas())
		}
	}
	checkCarts := func(when string, lostOK func(mode string, s *shopper) bool) {
		t.Helper()
		for _, mode := range modes {
			s := shoppers[mode]
			status, c := s.do("GET", "/api/cart", "")
			switch {
			case status == 200 && sameCart(c, carts[mode]):
			case lostOK(mode, s) && status == 200 && c.Count == 0 && c.Event == string(session.EventLost):
				t.Logf("%s %s: the cart's replica is gone; the page says the session was lost", when, mode)
				carts[mode] = c
			default:
				t.Errorf("%s %s: %d %s (event %q) on %s, want %s", when, mode, status, describeCart(c), c.Event, s.lastReplica(), describeCart(carts[mode]))
			}
		}
	}
	never := func(string, *shopper) bool { return false }

	// Scale out and in.
	stickyHome := shoppers["sticky"].lastReplica()
	start := time.Now()
	sw.service(t, "scale", "--detach=false", sw.name+"_app=5")
	names = waitSwarmReplicas(t, 5, 90*time.Second)
	for _, r := range names {
		waitServing(t, r, 30*time.Second)
	}
	timed("docker service scale app=5, until all five serve", time.Since(start))
	checkCarts("after scale-out", never)
	checkTechniques(t, names)
	took := sw.service(t, "scale", "--detach=false", sw.name+"_app=3")
	names = waitSwarmReplicas(t, 3, 90*time.Second)
	timed("docker service scale app=3", took)
	checkCarts("after scale-in", func(mode string, _ *shopper) bool {
		return mode == "sticky" && !slices.Contains(names, stickyHome)
	})
	checkTechniques(t, names)

	// A rolling update under load in every mode, the loads keeping their
	// connections to nginx open (keepAliveClient says why).
	loads := startModeLoads(t, swarmModes, 8, 90*time.Second, keepAliveClient(8*len(swarmModes)))
	took = sw.service(t, "update", "--force", "--detach=false", sw.name+"_app")
	timed("docker service update --force app (3 replicas, one at a time)", took)
	for _, l := range loads {
		select {
		case <-l.done:
			t.Errorf("the %s load ended before the update did: lengthen it", l.mode)
		default:
		}
	}
	table := checkEveryReplicaReplaced(t, fmt.Sprintf("Rolling update on Swarm (`docker service update --force`, %s)", took.Round(time.Second)), waitLoads(t, loads))
	names = waitSwarmReplicas(t, 3, 60*time.Second)
	checkCarts("after the rolling update", func(mode string, _ *shopper) bool { return mode == "sticky" })

	// A task killed from outside: Swarm replaces it in its slot.
	victim := names[len(names)-1]
	before := sw.taskContainer(t, victim)
	killed := time.Now()
	dockerCLI(t, nil, "kill", before)
	waitFor(t, 30*time.Second, "the admin page to show "+victim+" gone", func() bool {
		return replicaState(t, victim) != "up"
	})
	gone := time.Since(killed)
	waitFor(t, 90*time.Second, "Swarm to start "+victim+" again", func() bool {
		return replicaState(t, victim) == "up"
	})
	backUp := time.Since(killed)
	waitServing(t, victim, 30*time.Second)
	timed("docker kill of "+victim+", until its slot's new task serves", time.Since(killed))
	if after := sw.taskContainer(t, victim); after == before {
		t.Errorf("%s runs in the container that was killed (%s), want a new task", victim, before[:12])
	}
	t.Logf("the admin page showed %s not up %.1f s after the kill, up again after %.1f s", victim, gone.Seconds(), backUp.Seconds())
	checkCarts("after "+victim+" was killed", func(mode string, s *shopper) bool {
		return mode == "sticky" && s.lastReplica() == victim
	})
	// SWARM_README=1 puts this run's tables into docs/swarm.md.
	if os.Getenv("SWARM_README") == "1" && !t.Failed() {
		block := "| step | took |\n|---|---|\n" + strings.Join(times, "\n") + "\n\n" + table
		if err := replaceBetweenMarkers("../docs/swarm.md", "swarm", block); err != nil {
			t.Error(err)
		}
	}
}

// swarmStack is a stack compose/swarm-deploy deployed.
type swarmStack struct {
	name string
	// start is when its deploy began.
	start time.Time
	// newTag is the image tag the deploy made, removed with the stack.
	newTag string
	// env is this process's environment with the stack's settings.
	env []string
}

// joinSwarm puts the engine in a single-node swarm unless it is in one,
// and leaves it again after the test only if it made it.
func joinSwarm(t *testing.T, timed func(string, time.Duration)) {
	t.Helper()
	state := strings.TrimSpace(dockerCLI(t, nil, "info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}"))
	switch state {
	case "active true":
		t.Log("the engine is in a swarm already, as a manager: the test uses it and leaves it as it was")
		return
	case "inactive false":
	default:
		t.Fatalf("the engine's swarm state is %q: want inactive (the test makes one) or a manager", state)
	}
	start := time.Now()
	dockerCLI(t, nil, "swarm", "init", "--advertise-addr", "127.0.0.1")
	timed("docker swarm init", time.Since(start))
	t.Cleanup(func() {
		start := time.Now()
		if _, err := dockerTry(nil, "swarm", "leave", "--force"); err != nil {
			t.Errorf("cleaning up: %v", err)
			return
		}
		t.Logf("left the swarm the test made in %.1f s", time.Since(start).Seconds())
	})
}

// deploySwarmStack runs compose/swarm-deploy --no-publish under a new
// stack name with the replicas given, and removes the stack, its secrets,
// volumes and image tag after the test.
func deploySwarmStack(t *testing.T, timed func(string, time.Duration), replicas int) *swarmStack {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	sw := &swarmStack{name: "sdswarm" + hex.EncodeToString(b)}
	sw.env = append(os.Environ(), "STACK_NAME="+sw.name, fmt.Sprintf("APP_REPLICAS=%d", replicas), "ALLOWED_HOSTS="+e2eAllowedHost)
	t.Cleanup(func() { sw.remove(t, timed) })
	// The tag compose/swarm-deploy deploys the image under, if it makes it.
	if _, tag := swarmAppImage(t); exec.Command("docker", "image", "inspect", tag).Run() != nil {
		sw.newTag = tag
	}
	sw.start = time.Now()

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "../compose/swarm-deploy", "--no-publish")
	cmd.Env = sw.env
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	t.Logf("compose/swarm-deploy --no-publish (%s):\n%s", took.Round(time.Second), lastLines(out, 20))
	if err != nil {
		t.Fatalf("compose/swarm-deploy: %v", err)
	}
	timed("compose/swarm-deploy (build from the cache, secrets, deploy, converge)", took)
	return sw
}

// swarmAppImage builds the app's image (from the cache when nothing
// changed) and returns its name and the tag compose/swarm-deploy deploys
// it under: the name, "-", and the first 12 digits of its ID.
func swarmAppImage(t *testing.T) (image, deployTag string) {
	t.Helper()
	image = cmp.Or(os.Getenv("APP_IMAGE"), "sessiondemo-app:local")
	dockerCLI(t, nil, "compose", "-f", "../compose/compose.yaml", "build", "app")
	id := strings.TrimPrefix(strings.TrimSpace(dockerCLI(t, nil, "image", "inspect", "--format", "{{.Id}}", image)), "sha256:")
	return image, image + "-" + id[:12]
}

// useLoadBalancers points the shared helpers (stack.lbURL, adminPassword)
// at the stack's load balancers, running on this node, and waits until
// nginx answers.
func (sw *swarmStack) useLoadBalancers(t *testing.T, timed func(string, time.Duration)) {
	t.Helper()
	// Nothing is published (Swarm would open the port on every
	// interface): the load balancers are reached at their tasks' addresses
	// on docker_gwbridge, the bridge on this host every Swarm task has for
	// its traffic out, as the compose tests reach containers.
	var urls []string
	for _, lb := range []string{"lb", "lb2"} {
		id := strings.TrimSpace(dockerCLI(t, nil, "ps", "-q", "--no-trunc", "-f", "label=com.docker.swarm.service.name="+sw.name+"_"+lb, "-f", "status=running"))
		if strings.Contains(id, "\n") || id == "" {
			t.Fatalf("want one running task of %s, got %q", lb, id)
		}
		addr := strings.TrimSpace(dockerCLI(t, nil, "network", "inspect", "docker_gwbridge", "--format", fmt.Sprintf(`{{with index .Containers %q}}{{.IPv4Address}}{{end}}`, id)))
		addr, _, _ = strings.Cut(addr, "/")
		if addr == "" {
			t.Fatalf("%s's task %s has no address on docker_gwbridge", lb, id[:12])
		}
		urls = append(urls, "http://"+addr)
	}
	stack.lbURL, stack.lb2URL = urls[0], urls[1]
	adminPassword = strings.TrimSpace(dockerCLI(t, nil, "exec", sw.taskContainer(t, ""), "/app/server", "admin-password"))
	waitFor(t, 60*time.Second, "nginx to answer through the stack", func() bool {
		status, _, err := probe(stack.lbURL, "GET", "/api/products?mode=redis", nil)
		return err == nil && status == 200
	})
	timed("deployed until nginx served a request", time.Since(sw.start))
	t.Logf("stack %s: lb at %s, lb2 at %s", sw.name, stack.lbURL, stack.lb2URL)
}

// remove removes the stack and waits until its containers and network
// are gone, then its secrets, volumes and the image tag the deploy made.
func (sw *swarmStack) remove(t *testing.T, timed func(string, time.Duration)) {
	// Every step is tried, whatever the one before did: a cleanup that
	// stopped at the first error would leave the rest behind.
	try := func(args ...string) string {
		out, err := dockerTry(nil, args...)
		if err != nil {
			t.Errorf("cleaning up: %v", err)
		}
		return out
	}
	start := time.Now()
	try("stack", "rm", sw.name)
	ns := "label=com.docker.stack.namespace=" + sw.name
	ok := waitUntil(2*time.Minute, func() bool {
		return strings.TrimSpace(try("ps", "-aq", "-f", ns)) == "" &&
			strings.TrimSpace(try("network", "ls", "-q", "-f", ns)) == ""
	})
	if !ok {
		t.Errorf("stack %s: containers or its network still there 2 min after docker stack rm", sw.name)
	}
	timed("docker stack rm, until its containers and network were gone", time.Since(start))
	for _, kind := range []string{"secret", "volume"} {
		filter := ns
		if kind == "secret" {
			filter = "label=sessiondemo.stack=" + sw.name
		}
		if ids := strings.Fields(try(kind, "ls", "-q", "-f", filter)); len(ids) > 0 {
			try(append([]string{kind, "rm"}, ids...)...)
		}
	}
	// Only the tag, and only one this deploy made: the image stays under
	// its other name, and a stack of someone else's in the same swarm may
	// run the same tag.
	if sw.newTag != "" {
		try("image", "rm", "--no-prune", sw.newTag)
	}
}

// service runs `docker service ARGS...` and returns how long it took.
func (sw *swarmStack) service(t *testing.T, args ...string) time.Duration {
	t.Helper()
	start := time.Now()
	dockerCLI(t, sw.env, append([]string{"service"}, args...)...)
	took := time.Since(start)
	t.Logf("docker service %s: %s", strings.Join(args, " "), took.Round(100*time.Millisecond))
	return took
}

// taskContainer returns the ID of the running container of the replica
// named (app-2 is the task in slot 2), or of any replica for "".
func (sw *swarmStack) taskContainer(t *testing.T, replica string) string {
	t.Helper()
	filters := []string{"ps", "-q", "--no-trunc", "-f", "label=com.docker.swarm.service.name=" + sw.name + "_app", "-f", "status=running"}
	if replica != "" {
		slot, ok := strings.CutPrefix(replica, "app-")
		if !ok {
			t.Fatalf("%q is not a replica's name (app-N)", replica)
		}
		filters = append(filters, "-f", "name="+sw.name+"_app."+slot+".")
	}
	ids := strings.Fields(dockerCLI(t, nil, filters...))
	if len(ids) == 0 {
		t.Fatalf("no running container of %s in stack %s", cmp.Or(replica, "any replica"), sw.name)
	}
	return ids[0]
}

// waitSwarmReplicas waits until the admin page lists n replicas up (the
// ones that left stay listed for a minute, not up), and returns their
// names.
func waitSwarmReplicas(t *testing.T, n int, timeout time.Duration) []string {
	t.Helper()
	var names []string
	waitFor(t, timeout, fmt.Sprintf("the admin page to list %d replicas up", n), func() bool {
		var st adminStatus
		if adminDo(t, "GET", "/api/admin/status", "", false, &st) != 200 {
			return false
		}
		names = names[:0]
		for _, r := range st.Replicas {
			if r.State == "up" {
				names = append(names, r.Name)
			}
		}
		return len(names) == n
	})
	return names
}

// dockerCLI runs the docker CLI with env (nil: this process's) and returns
// its output; a failure fails the test.
func dockerCLI(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, err := dockerTry(env, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// dockerTry runs the docker CLI with env (nil: this process's), for at
// most 5 minutes, and returns its output, or an error with its last lines.
func dockerTry(env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %v\n%s", strings.Join(args, " "), err, lastLines(out, 20))
	}
	return string(out), nil
}

// waitUntil polls cond every 200 ms until it holds (true) or the timeout
// passes (false), for cleanups that report rather than stop.
func waitUntil(timeout time.Duration, cond func() bool) bool {
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}
