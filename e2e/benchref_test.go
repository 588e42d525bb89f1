package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiondemo/shop/e2e/dockertest"
)

// The reference: what this machine allows any Go server behind any nginx.
// BenchmarkStack starts, on the stack's own compose network, three bare
// net/http servers (e2e/perfref, GOMAXPROCS=1 as a replica) and a bare
// nginx in front of them (e2e/perfref/nginx.conf: a keep-alive upstream
// and nothing else), and measures them at 32 connections in rounds of
// their own, in which the stack's two no-session cases run again, so
// the four compare as ratios. The bare pair's ratio (through nginx against
// straight to one server) is the machine's: Docker's bridge, two cores
// shared by everything. The stack's baseline against the bare nginx is
// what the stack's own plumbing costs (its nginx.conf, middleware,
// request log).

// refCases are the cases of the reference table: the stack's two
// no-session cases and the bare ones, measured in the same rounds.
var refCases = []perfCase{
	readCase("replica"),  // the stack's ping, straight to one replica
	readCase("baseline"), // the stack's ping, through the stack's nginx
	{name: "bare server", method: "GET", path: "/api/ping", target: toBareServer},
	{name: "bare nginx", method: "GET", path: "/api/ping", target: toBareNginx},
}

// readCase is the read case of that name.
func readCase(name string) perfCase {
	for _, c := range readCases {
		if c.name == name {
			return c
		}
	}
	panic("no read case " + name)
}

// refStack is the reference's containers and their addresses.
type refStack struct {
	serverAddr, nginxAddr string   // host:port on the compose network
	ids                   []string // every container it started
}

// startRefStack builds e2e/perfref for Linux on this machine's
// architecture, starts three bare servers and the bare nginx on network,
// waits until each answers and the nginx has reached all three, and
// returns them. They are removed when the benchmark ends.
func startRefStack(b *testing.B, network string) *refStack {
	b.Helper()
	dir := b.TempDir()
	bin := filepath.Join(dir, "perfref")
	build := exec.Command("go", "build", "-o", bin, "./perfref")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build ./perfref: %v\n%s", err, out)
	}
	rs := &refStack{}
	b.Cleanup(func() {
		if err := rs.stop(); err != nil {
			b.Logf("removing the reference's containers: %v", err)
		}
	})
	// create, copy the file in, start: no bind mount, so the files need
	// not be where the engine can see them.
	start := func(image, file, dest string, args ...string) string {
		cmd := exec.Command("docker", append([]string{"create", "--network", network}, append(args, image)...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output() // the ID alone: pull progress and warnings go to stderr
		if err != nil {
			b.Fatalf("docker create %s for the reference: %v\n%s(%s)", image, err, stderr.String(), dockertest.NoRegistryHint)
		}
		id := strings.TrimSpace(string(out))
		rs.ids = append(rs.ids, id)
		if _, err := dockerTry(nil, "cp", file, id+":"+dest); err != nil {
			b.Fatal(err)
		}
		if _, err := dockerTry(nil, "start", id); err != nil {
			b.Fatal(err)
		}
		return id
	}
	ip := func(id string) string {
		out, err := dockerTry(nil, "inspect", "-f", `{{(index .NetworkSettings.Networks "`+network+`").IPAddress}}`, id)
		addr := strings.TrimSpace(out)
		if err != nil || addr == "" {
			b.Fatalf("the address of the reference's container %.12s on %s: %q %v", id, network, addr, err)
		}
		return addr
	}
	runtimeImage := dockertest.Image("RUNTIME_IMAGE", "gcr.io/distroless/static-debian12:nonroot")
	var servers []string
	for range 3 {
		id := start(runtimeImage, bin, "/perfref", "--network-alias", "perfref-server", "-e", "GOMAXPROCS=1", "--entrypoint", "/perfref")
		servers = append(servers, ip(id)+":8080")
	}
	for _, s := range servers {
		waitServedBy(b, "http://"+s+"/api/ping", 1)
	}
	nginxID := start(dockertest.Image("NGINX_IMAGE", "nginx:1.30"), "perfref/nginx.conf", "/etc/nginx/nginx.conf")
	rs.serverAddr, rs.nginxAddr = servers[0], ip(nginxID)+":80"
	// Round robin over all three: Docker's DNS gave nginx every address.
	waitServedBy(b, "http://"+rs.nginxAddr+"/api/ping", len(servers))
	return rs
}

// waitServedBy polls url until it has answered 200 from n different
// bare servers (the "replica" in their answers), for at most 30 s.
func waitServedBy(b *testing.B, url string, n int) {
	b.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	seen := map[string]bool{}
	for {
		var answer struct{ Replica string }
		resp, err := client.Get(url)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&answer)
			resp.Body.Close()
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		if err == nil {
			seen[answer.Replica] = true
			if len(seen) >= n {
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("the reference's %s, after 30 s: answered by %d servers of %d, last error %v", url, len(seen), n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop removes the reference's containers.
func (rs *refStack) stop() error {
	if len(rs.ids) == 0 {
		return nil
	}
	_, err := dockerTry(nil, append([]string{"rm", "-f"}, rs.ids...)...)
	rs.ids = nil
	return err
}

// perfRefTable is the reference table: the four cases of refCases at 32
// connections, from the same rounds, and the three ratios it is for.
func perfRefTable(r map[string]perfResult) string {
	var sb strings.Builder
	sb.WriteString("| case | req/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|\n")
	for _, row := range []struct{ name, label string }{
		{"bare server", "bare Go server, straight"},
		{"bare nginx", "bare nginx, round robin to three bare Go servers"},
		{"replica", "the stack: no session, straight to one replica"},
		{"baseline", "the stack: no session (baseline), through nginx"},
	} {
		x := r[row.name]
		fmt.Fprintf(&sb, "| %s | %.0f | %.2f | %.2f | %d |\n", row.label, x.rps, x.p50, x.p99, x.errors)
	}
	fmt.Fprintf(&sb, "\nThrough nginx against straight: bare %.2f, the stack %.2f.\nThe stack's baseline against the bare nginx: %.2f.\n",
		r["bare nginx"].rps/r["bare server"].rps, r["baseline"].rps/r["replica"].rps, r["baseline"].rps/r["bare nginx"].rps)
	return sb.String()
}

// noSessions are n sessions without cookies, for the bare servers.
func noSessions(n int) []*perfSession {
	out := make([]*perfSession, n)
	for i := range out {
		out[i] = &perfSession{cookies: map[string]string{}}
	}
	return out
}
