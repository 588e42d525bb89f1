package e2e

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSwarmNodes runs the stack over three nodes: this engine as the
// manager and two workers, each a container running Debian's Docker
// engine (e2e/swarmnode) on a private network of their own. It checks
// that the tasks spread over the three nodes and that every replica
// serves, then kills the worker that runs the Redis primary (moved there
// by a Sentinel failover if Swarm put it on the manager) with `docker
// kill` (the node's death): Swarm marks it down and starts its tasks on
// the two nodes left, the Sentinels promote a replica, the primary's new
// task, on a new and empty volume, joins as a replica rather than wipe
// the data (compose/redis-start), and a redis-mode cart written before
// the kill is whole on every replica after it.
//
// Like TestSwarm it runs only with SWARM_E2E=1 and alone, and it needs an
// engine in no swarm: it makes one, advertised on the private network's
// gateway so the workers reach it, and leaves it afterwards.
//
// The workers are not --privileged: on the machines this project's CI
// runs on, the container runtime cannot grant every capability
// ("unable to apply caps"). They get every capability but
// CAP_SYS_RESOURCE, no seccomp or AppArmor profile, and the host's cgroup
// tree, which is what their engine needs.
func TestSwarmNodes(t *testing.T) {
	if !swarmRequested() {
		t.Skip("SWARM_E2E=1 runs it: it puts this Docker engine in a swarm, so never unasked")
	}
	var times []string
	timed := func(what string, d time.Duration) {
		times = append(times, fmt.Sprintf("| %s | %.1f s |", what, d.Seconds()))
	}
	t.Cleanup(func() { t.Logf("times on three nodes:\n\n| step | took |\n|---|---|\n%s", strings.Join(times, "\n")) })
	if state := strings.TrimSpace(dockerCLI(t, nil, "info", "--format", "{{.Swarm.LocalNodeState}}")); state != "inactive" {
		t.Fatalf("the engine's swarm state is %q: the test adds workers only to a swarm it makes, so it needs an engine in none (docker swarm leave --force)", state)
	}

	start := time.Now()
	dockerCLI(t, nil, "build", "-q", "--build-arg", "BASE="+cmp.Or(os.Getenv("REDIS_IMAGE"), "redis:8"), "-t", "sessiondemo-swarm-node:e2e", "swarmnode")
	timed("build the worker image (Debian's docker.io)", time.Since(start))

	b := make([]byte, 4)
	rand.Read(b)
	network := "sdnodes" + hex.EncodeToString(b)
	dockerCLI(t, nil, "network", "create", network)
	t.Cleanup(func() {
		if _, err := dockerTry(nil, "network", "rm", network); err != nil {
			t.Errorf("cleaning up: %v", err)
		}
	})
	gateway := strings.TrimSpace(dockerCLI(t, nil, "network", "inspect", "--format", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", network))
	if gateway == "" {
		t.Fatalf("network %s has no gateway address", network)
	}
	dockerCLI(t, nil, "swarm", "init", "--advertise-addr", gateway)
	t.Cleanup(func() {
		if _, err := dockerTry(nil, "swarm", "leave", "--force"); err != nil {
			t.Errorf("cleaning up: %v", err)
		}
	})
	token := strings.TrimSpace(dockerCLI(t, nil, "swarm", "join-token", "-q", "worker"))

	// The images every node needs: the app's (under the tag
	// compose/swarm-deploy deploys it with) and the base images.
	appImage, deployTag := swarmAppImage(t)
	images := []string{appImage, cmp.Or(os.Getenv("NGINX_IMAGE"), "nginx:1.30"), cmp.Or(os.Getenv("REDIS_IMAGE"), "redis:8"), cmp.Or(os.Getenv("MEMCACHED_IMAGE"), "memcached:1.6")}
	var workers []string
	for _, n := range []string{"2", "3"} {
		name := network + "-node" + n
		workers = append(workers, name)
		start := time.Now()
		// Registered first: a container created but not started is
		// removed too.
		t.Cleanup(func() {
			if out, err := dockerTry(nil, "rm", "-f", "-v", name); err != nil && !strings.Contains(out, "No such container") {
				t.Errorf("cleaning up: %v", err)
			}
		})
		dockerCLI(t, nil, "run", "-d", "--name", name, "--hostname", name, "--network", network,
			"--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
			"--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined", "--security-opt", "systempaths=unconfined",
			"-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "sessiondemo-swarm-node:e2e")
		waitFor(t, 60*time.Second, name+"'s Docker engine to answer", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return exec.CommandContext(ctx, "docker", "exec", name, "docker", "info").Run() == nil
		})
		dockerCLI(t, nil, "exec", name, "docker", "swarm", "join", "--token", token, gateway+":2377")
		timed(name+": engine started and joined", time.Since(start))
		start = time.Now()
		loadImages(t, name, images)
		dockerCLI(t, nil, "exec", name, "docker", "tag", appImage, deployTag)
		timed(name+": the four images loaded (docker save, then docker load)", time.Since(start))
	}
	waitFor(t, 30*time.Second, "three nodes ready", func() bool {
		return strings.Count(dockerCLI(t, nil, "node", "ls", "--format", "{{.Status}}"), "Ready") == 3
	})

	sw := deploySwarmStack(t, timed, 6)
	// On a failure, what the session store said: run before the stack is
	// removed (cleanups run last first).
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, service := range []string{"sentinel1", "sentinel2", "sentinel3", "redis1", "redis2", "redis3"} {
			out, _ := dockerTry(nil, "service", "logs", "--raw", "--timestamps", "--tail", "60", sw.name+"_"+service)
			t.Logf("docker service logs %s:\n%s", service, out)
		}
		// What each Sentinel knows of the primary and the replicas: a
		// failover that never happens says why here (flags, the last
		// PING answered, the age of the last INFO).
		for _, sentinel := range []string{"sentinel1", "sentinel2", "sentinel3"} {
			out, _ := sw.redisShell("redis-cli -h " + sentinel + " -p 26379 SENTINEL master sessions | paste - - | tr '\\n' ' '; echo; redis-cli -h " + sentinel + " -p 26379 SENTINEL replicas sessions | paste - - | tr '\\n' ' '")
			t.Logf("%s knows:\n%s", sentinel, out)
		}
	})
	perNode := sw.tasksPerNode(t, "")
	t.Logf("tasks per node: %v", perNode)
	if len(perNode) != 3 {
		t.Errorf("the tasks run on %d nodes (%v), want all three", len(perNode), perNode)
	}
	if appNodes := sw.tasksPerNode(t, "app"); len(appNodes) < 2 {
		t.Errorf("the six replicas run on %v, want them spread over the nodes", appNodes)
	}

	// Every replica serves through lb, and a redis-mode cart.
	replies := sw.inside(t, "", `{"product_id":"p2","qty":2}`, "POST /api/cart/items?mode=redis")
	cookie := replies[0].cookie("redis_sid")
	if replies[0].status != 200 || cookie == "" {
		t.Fatalf("the first add through lb: %d, cookie %q", replies[0].status, cookie)
	}
	// checkAllServe reads the cart through lb until each of the six
	// replicas has served it. A read that fails (a replica or the session
	// store not ready yet) is tried again; a cart that comes back, but not
	// whole, is lost, and fails the test at once.
	checkAllServe := func(when string) {
		t.Helper()
		seen := map[string]bool{}
		failed := 0
		waitFor(t, 90*time.Second, when+": a redis-mode read of the cart on all six replicas", func() bool {
			for _, r := range sw.inside(t, "mode=redis; "+cookie, "", slices.Repeat([]string{"GET /api/cart?mode=redis"}, 12)...) {
				if r.status != 200 {
					failed++
					continue
				}
				var c cartBody
				if err := json.Unmarshal(r.body, &c); err != nil || c.Count != 2 {
					t.Fatalf("%s: GET /api/cart on %s = %d %s, want the cart of 2", when, r.replica, r.status, r.body)
				}
				seen[r.replica] = true
			}
			return len(seen) == 6
		})
		t.Logf("%s: the cart was whole on each of the six replicas, after %d failed reads", when, failed)
	}
	checkAllServe("on three nodes")

	// A worker dies: the one with the Redis primary, the harder death.
	// Swarm may have put the primary on the manager, which the test
	// cannot kill: then the Sentinels are asked to fail over, up to
	// three times, until a node on a worker is the primary. Only when no
	// Redis node runs on a worker does the busier worker die instead.
	primary := sw.redisPrimary(t)
	timed("after the checks, until every Sentinel knew both replicas and the other two Sentinels", sw.waitSentinelsSettled(t))
	for try := 0; try < 3 && !slices.Contains(workers, sw.taskNode(t, primary)); try++ {
		before := primary
		if out, err := sw.redisShell("redis-cli -h sentinel1 -p 26379 SENTINEL FAILOVER sessions"); err != nil || strings.TrimSpace(out) != "OK" {
			t.Fatalf("SENTINEL FAILOVER sessions: %v %s", err, out)
		}
		waitFor(t, 30*time.Second, "the Sentinels to promote another node than "+before, func() bool {
			primary = sw.redisPrimary(t)
			return primary != before
		})
		sw.waitSentinelsSettled(t)
	}
	victim := workers[0]
	primaryNode := sw.taskNode(t, primary)
	if slices.Contains(workers, primaryNode) {
		victim = primaryNode
	} else if perNode[workers[1]] > perNode[workers[0]] {
		victim = workers[1]
	}
	lost := perNode[victim]
	t.Logf("killing %s, which runs %v; the Redis primary is %s on %s", victim, sw.tasksOn(t, victim), primary, primaryNode)
	killed := time.Now()
	dockerCLI(t, nil, "kill", victim)
	down := waitFor(t, 60*time.Second, victim+" to be marked down", func() bool {
		return strings.Contains(dockerCLI(t, nil, "node", "ls", "--format", "{{.Hostname}} {{.Status}}"), victim+" Down")
	})
	timed(fmt.Sprintf("docker kill of %s (%d tasks, Redis primary there: %v), until Swarm marked it down", victim, lost, victim == primaryNode), down)
	waitFor(t, 90*time.Second, "every task to run on the nodes left", func() bool {
		left := sw.tasksPerNode(t, "")
		total := 0
		for node, n := range left {
			if node != victim {
				total += n
			}
		}
		return total == 16 && left[victim] == 0
	})
	timed("docker kill of "+victim+", until every task ran on the nodes left", time.Since(killed))
	waitFor(t, 60*time.Second, "the admin page to list six replicas up", func() bool {
		r := sw.inside(t, "", "", "GET /api/admin/status")[0]
		var st adminStatus
		if r.status != 200 || json.Unmarshal(r.body, &st) != nil {
			return false
		}
		up := 0
		for _, rep := range st.Replicas {
			if rep.State == "up" {
				up++
			}
		}
		return up == 6
	})
	timed("docker kill of "+victim+", until the admin page listed six replicas up", time.Since(killed))
	checkAllServe("after " + victim + " died")
	timed("docker kill of "+victim+", until the cart read whole on every replica", time.Since(killed))
	t.Logf("after the kill: tasks per node %v, Redis primary %s", sw.tasksPerNode(t, ""), sw.redisPrimary(t))
	// How the lost primary's new task started (compose/redis-start).
	// The log is incomplete (an error) when a task ran on the dead node.
	if out, _ := dockerTry(nil, "service", "logs", "--raw", sw.name+"_"+primary); out != "" {
		var started []string
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "redis-start:") {
				started = append(started, line)
			}
		}
		t.Logf("%s's tasks said:\n%s", primary, strings.Join(started, "\n"))
	}
}

// loadImages copies images from this engine to the worker's:
// docker save | docker exec -i worker docker load.
func loadImages(t *testing.T, worker string, images []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	save := exec.CommandContext(ctx, "docker", append([]string{"save"}, images...)...)
	load := exec.CommandContext(ctx, "docker", "exec", "-i", worker, "docker", "load", "-q")
	// The pipe's ends belong to the two commands alone: should load end
	// early, save gets EPIPE instead of blocking on a reader this process
	// still holds.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	save.Stdout, load.Stdin = w, r
	var saveErr, loadOut bytes.Buffer
	save.Stderr = &saveErr
	load.Stdout, load.Stderr = &loadOut, &loadOut
	startErr := errors.Join(save.Start(), load.Start())
	r.Close()
	w.Close()
	if startErr != nil {
		t.Fatal(startErr)
	}
	loadErr := load.Wait()
	if err := save.Wait(); err != nil || loadErr != nil {
		t.Fatalf("docker save %v | docker load on %s: %v %v\n%s%s", images, worker, err, loadErr, saveErr.String(), loadOut.String())
	}
}

// tasksPerNode counts the stack's running tasks per node, of the service
// named (app) or of all for "".
func (sw *swarmStack) tasksPerNode(t *testing.T, service string) map[string]int {
	t.Helper()
	args := []string{"stack", "ps", sw.name, "--filter", "desired-state=running", "--format", "{{.Name}} {{.Node}} {{.CurrentState}}"}
	counts := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(dockerCLI(t, nil, args...)), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[2] != "Running" || (service != "" && !strings.HasPrefix(f[0], sw.name+"_"+service+".")) {
			continue
		}
		counts[f[1]]++
	}
	return counts
}

// waitSentinelsSettled waits until each Sentinel knows the primary's two
// replicas and the two other Sentinels, and returns how long that took:
// only then can the Sentinels left after a node's death agree on a
// failover and find a replica to promote.
func (sw *swarmStack) waitSentinelsSettled(t *testing.T) time.Duration {
	t.Helper()
	script := `for s in sentinel1 sentinel2 sentinel3; do
	echo "== $s"
	redis-cli -h "$s" -p 26379 --raw SENTINEL master sessions
done`
	var last string
	took := waitFor(t, 60*time.Second, "every Sentinel to know 2 replicas and 2 other Sentinels", func() bool {
		out, err := sw.redisShell(script)
		if err != nil {
			return false
		}
		settled := 0
		var views []string
		for _, part := range strings.Split(out, "== ")[1:] {
			lines := strings.Split(strings.TrimSpace(part), "\n")
			fields := map[string]string{}
			for i := 1; i+1 < len(lines); i += 2 {
				fields[lines[i]] = lines[i+1]
			}
			views = append(views, fmt.Sprintf("%s: %s replicas, %s other Sentinels, %s", lines[0], fields["num-slaves"], fields["num-other-sentinels"], fields["flags"]))
			if fields["num-slaves"] == "2" && fields["num-other-sentinels"] == "2" && fields["flags"] == "master" {
				settled++
			}
		}
		last = strings.Join(views, "; ")
		return settled == 3
	})
	t.Logf("the Sentinels settled (%s)", last)
	return took
}

// redisShell runs a shell script in a short-lived container of the Redis
// image on the stack's overlay network, where the Sentinels' and nodes'
// names resolve wherever their tasks run, and returns its output.
func (sw *swarmStack) redisShell(script string) (string, error) {
	return dockerTry(nil, "run", "--rm", "--network", sw.name+"_default", cmp.Or(os.Getenv("REDIS_IMAGE"), "redis:8"), "sh", "-c", script)
}

// tasksOn lists the stack's running tasks on the node named.
func (sw *swarmStack) tasksOn(t *testing.T, node string) []string {
	t.Helper()
	var tasks []string
	out := dockerCLI(t, nil, "stack", "ps", sw.name, "--filter", "desired-state=running", "--format", "{{.Name}} {{.Node}}")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if name, on, _ := strings.Cut(line, " "); on == node {
			tasks = append(tasks, strings.TrimPrefix(name, sw.name+"_"))
		}
	}
	slices.Sort(tasks)
	return tasks
}

// taskNode returns the node that runs the service's task.
func (sw *swarmStack) taskNode(t *testing.T, service string) string {
	t.Helper()
	for node := range sw.tasksPerNode(t, service) {
		return node
	}
	t.Fatalf("no running task of %s", service)
	return ""
}

// redisPrimary is the Redis node the admin page names the primary.
func (sw *swarmStack) redisPrimary(t *testing.T) string {
	t.Helper()
	var primary string
	waitFor(t, 60*time.Second, "the admin page to name the Redis primary", func() bool {
		r := sw.inside(t, "", "", "GET /api/admin/status")[0]
		var st adminStatus
		if r.status == 200 && json.Unmarshal(r.body, &st) == nil {
			primary = st.RedisPrimary
		}
		return primary != ""
	})
	return primary
}

// insideReply is one answer lb gave a request from inside the overlay.
type insideReply struct {
	status  int
	replica string
	header  string
	body    []byte
}

// cookie returns the value the answer sets for the cookie named, as
// "name=value", or "".
func (r insideReply) cookie(name string) string {
	for _, line := range strings.Split(r.header, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Set-Cookie") {
			v = strings.TrimSpace(v)
			if strings.HasPrefix(v, name+"=") {
				pair, _, _ := strings.Cut(v, ";")
				return pair
			}
		}
	}
	return ""
}

// inside sends requests ("METHOD path") to lb from a container on the
// stack's overlay network, since lb may run on a worker whose addresses
// this host cannot reach: one short-lived container of the nginx image
// sends them all with bash's /dev/tcp, over HTTP/1.0, each with the
// cookie header and the JSON body given ("" for none).
func (sw *swarmStack) inside(t *testing.T, cookie, body string, reqs ...string) []insideReply {
	t.Helper()
	script := `for r in "$@"; do
	exec 3<>/dev/tcp/lb/80
	printf '%s HTTP/1.0\r\nHost: localhost\r\nCookie: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' "$r" "$COOKIE" "${#BODY}" "$BODY" >&3
	cat <&3
	exec 3<&-
	printf '\n=== end of reply\n'
done`
	args := append([]string{"run", "--rm", "--network", sw.name + "_default", "-e", "COOKIE=" + cookie, "-e", "BODY=" + body,
		cmp.Or(os.Getenv("NGINX_IMAGE"), "nginx:1.30"), "bash", "-c", script, "bash"}, reqs...)
	out := dockerCLI(t, nil, args...)
	var replies []insideReply
	for _, raw := range strings.Split(out, "\n=== end of reply\n") {
		head, rest, ok := strings.Cut(raw, "\r\n\r\n")
		if !ok {
			continue
		}
		r := insideReply{header: head, body: []byte(rest)}
		fmt.Sscanf(head, "HTTP/1.1 %d", &r.status)
		for _, line := range strings.Split(head, "\r\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "X-Replica") {
				r.replica = strings.TrimSpace(v)
			}
		}
		replies = append(replies, r)
	}
	if len(replies) != len(reqs) {
		t.Fatalf("%d answers to %d requests from inside the overlay network:\n%s", len(replies), len(reqs), lastLines([]byte(out), 20))
	}
	return replies
}
