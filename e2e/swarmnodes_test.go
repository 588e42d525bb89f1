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
// serves, then kills the worker that runs the Redis primary, or else the
// busier one, with `docker kill` (the node's death): Swarm marks it down
// and starts its tasks on the two nodes left, the Sentinels promote a
// replica, and a redis-mode cart written before the kill is whole on
// every replica after it.
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
	checkAllServe := func(when string) {
		t.Helper()
		reads := sw.inside(t, "mode=redis; "+cookie, "", slices.Repeat([]string{"GET /api/cart?mode=redis"}, 12)...)
		seen := map[string]bool{}
		for _, r := range reads {
			seen[r.replica] = true
			var c cartBody
			if err := json.Unmarshal(r.body, &c); r.status != 200 || err != nil || c.Count != 2 {
				t.Errorf("%s: GET /api/cart on %s = %d %s, want the cart of 2", when, r.replica, r.status, r.body)
			}
		}
		if len(seen) != 6 {
			t.Errorf("%s: 12 reads reached %v, want all six replicas", when, keys(seen))
		}
	}
	checkAllServe("on three nodes")

	// A worker dies: the one with the Redis primary, else the busier.
	victim := workers[0]
	primaryNode := sw.taskNode(t, sw.redisPrimary(t))
	if slices.Contains(workers, primaryNode) {
		victim = primaryNode
	} else if perNode[workers[1]] > perNode[workers[0]] {
		victim = workers[1]
	}
	lost := perNode[victim]
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
	t.Logf("after the kill: tasks per node %v, Redis primary %s", sw.tasksPerNode(t, ""), sw.redisPrimary(t))
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
