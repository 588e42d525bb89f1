package e2e

// The Docker side of the shared helpers: the stack's containers by
// service or replica name, the faults injected through the Docker API,
// and the README's scaling commands run with the Compose CLI.

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// replicaName is a replica's name, app-<its compose container number>.
var replicaName = regexp.MustCompile(`^app-([0-9]+)$`)

// service returns the container of a compose service (lb, lb2, redis) or
// of a replica by its name (app-2).
func service(t testing.TB, name string) *testcontainers.DockerContainer {
	t.Helper()
	var cs []*testcontainers.DockerContainer
	if m := replicaName.FindStringSubmatch(name); m != nil {
		cs = containers(t, "app", "com.docker.compose.container-number="+m[1])
	} else {
		cs = containers(t, name)
	}
	if len(cs) == 0 {
		t.Fatalf("no container for %s in %s", name, stack.up.project)
	}
	return cs[0]
}

// containerList lists the containers of a service of the stack that
// carry every label given; all includes stopped ones.
func containerList(t testing.TB, all bool, svc string, labels ...string) []container.Summary {
	t.Helper()
	cli, err := testcontainers.NewDockerClientWithOpts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	f := make(client.Filters).Add("label", "com.docker.compose.project="+stack.up.project).Add("label", "com.docker.compose.service="+svc)
	for _, l := range labels {
		f = f.Add("label", l)
	}
	res, err := cli.ContainerList(context.Background(), client.ContainerListOptions{All: all, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	return res.Items
}

// containers returns the containers of a service of the stack (stopped
// ones too) that carry every label given.
func containers(t testing.TB, svc string, labels ...string) []*testcontainers.DockerContainer {
	t.Helper()
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		t.Fatal(err)
	}
	defer provider.Close()
	var out []*testcontainers.DockerContainer
	for _, item := range containerList(t, true, svc, labels...) {
		c, err := provider.ContainerFromType(context.Background(), item)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// replicas returns the names of the running replicas (app-1, app-2, ...),
// in the order of their numbers, from Docker: what compose runs now.
func replicas(t testing.TB) []string {
	t.Helper()
	var numbers []int
	for _, c := range containerList(t, false, "app") {
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
	out, err := stack.up.compose(ctx, args...)
	if err != nil {
		t.Fatalf("docker compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// stackEnv is the environment that reaches the shared stack with plain
// `docker compose` commands (and scripts that run them).
func stackEnv() []string { return stack.up.environ() }

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

// restartContainer restarts the service's container, as `docker restart`
// does: SIGTERM, up to grace for a graceful exit, then a start.
func restartContainer(t *testing.T, name string, grace time.Duration) {
	t.Helper()
	secs := int(grace.Seconds())
	dockerDo(t, "restart", name, func(ctx context.Context, cli *testcontainers.DockerClient, id string) error {
		_, err := cli.ContainerRestart(ctx, id, client.ContainerRestartOptions{Timeout: &secs})
		return err
	})
}

// adminUser is the compose file's admin user name.
const adminUser = "admin"

// adminPassword is the shared stack's admin password, generated on its
// first start: startStack reads it with the README's command.
var adminPassword string

// pauseContainer freezes the service's container (the cgroup freezer):
// its process runs no more, yet the kernel still accepts connections for
// it, which then get no answer.
func pauseContainer(t *testing.T, name string) {
	t.Helper()
	dockerDo(t, "pause", name, func(ctx context.Context, cli *testcontainers.DockerClient, id string) error {
		_, err := cli.ContainerPause(ctx, id, client.ContainerPauseOptions{})
		return err
	})
}

// unpauseContainer lets a paused container run again.
func unpauseContainer(t *testing.T, name string) {
	t.Helper()
	dockerDo(t, "unpause", name, func(ctx context.Context, cli *testcontainers.DockerClient, id string) error {
		_, err := cli.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{})
		return err
	})
}

// disconnectContainer takes the service's container off the stack's
// network (`docker network disconnect`, a partition) and returns what puts
// it back, with the DNS aliases compose gave it, so its service name
// resolves to it again.
func disconnectContainer(t *testing.T, name string) (reconnect func()) {
	t.Helper()
	c := service(t, name)
	ins, err := c.Inspect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	netName := stack.up.project + "_default"
	ep, ok := ins.NetworkSettings.Networks[netName]
	if !ok {
		t.Fatalf("%s is not on %s", name, netName)
	}
	aliases := slices.Clone(ep.Aliases)
	dockerDo(t, "disconnect", name, func(ctx context.Context, cli *testcontainers.DockerClient, id string) error {
		_, err := cli.NetworkDisconnect(ctx, netName, client.NetworkDisconnectOptions{Container: id, Force: true})
		return err
	})
	return func() {
		dockerDo(t, "connect", name, func(ctx context.Context, cli *testcontainers.DockerClient, id string) error {
			_, err := cli.NetworkConnect(ctx, netName, client.NetworkConnectOptions{Container: id, EndpointConfig: &network.EndpointSettings{Aliases: aliases}})
			return err
		})
	}
}
