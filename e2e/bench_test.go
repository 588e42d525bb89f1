package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkStack measures the running stack at 1, 8, 32 and 128
// concurrent connections: reads (GET /api/cart, a 3-line cart, one
// session per connection) in every mode, the no-session baseline
// (GET /api/ping) through nginx, through nginx to one replica only, and
// straight to one replica, and, at 32 connections, writes
// (POST /api/cart/items) and the machine's reference (benchref_test.go:
// a bare nginx and bare Go servers beside the stack, in rounds of their
// own in which the stack's two no-session cases run again). The load
// generator is this
// process, with a minimal HTTP/1.1 client (rawConn), aimed at the
// containers' addresses on the compose network (this host reaches them
// through Docker's bridge), so docker-proxy and the published ports are
// not in the path. At each level the cases run in rounds, each round in
// another order, so they compare as ratios and none gains from going
// first; req/s is the median round, p50 and p99 the worst round's. It
// prints where the machine's CPU went, then profiles one replica (pprof
// on its own port, never through nginx) under a mixed load and prints the
// top entries:
//
//	go test ./e2e -run '^$' -bench Stack -benchtime 1x -v
//
// PERF_SECONDS sets how long each case runs per round (default 2). With
// PERF_README=1 the tables in docs/performance.md between the perf* markers and the
// chart docs/performance.svg are rewritten from this run. It runs only
// with -bench: CI's `go test ./...` never starts it.
func BenchmarkStack(b *testing.B) {
	needStack(b)
	per := 2 * time.Second
	if s := os.Getenv("PERF_SECONDS"); s != "" {
		n, err := strconv.ParseFloat(s, 64)
		if err != nil || n <= 0 {
			b.Fatalf("PERF_SECONDS=%q: want a number of seconds", s)
		}
		per = time.Duration(n * float64(time.Second))
	}
	const rounds = 3
	g := newLoadGen(b)
	defer g.close()
	b.Logf("load generator aimed at nginx %s and replica %s (container addresses, no docker-proxy)", g.lbAddr, g.replicaAddr)

	sessions := map[string][]*perfSession{}
	for _, c := range append(slices.Clone(readCases), writeCases...) {
		sessions[c.name] = g.sessions(b, c.mode, slices.Max(perfLevels), !c.write)
		if c.pinned {
			pin(sessions[c.name])
		}
	}
	for _, c := range refCases {
		if c.target == toBareServer || c.target == toBareNginx {
			sessions[c.name] = noSessions(slices.Max(perfLevels))
		}
	}
	// Warm up every path: connections, caches, the replicas' heaps.
	for _, c := range append(append(slices.Clone(readCases), writeCases...), refCases...) {
		g.run(c, sessions[c.name], 32, per/4)
	}

	b.ResetTimer()
	curve := map[int]map[string]perfResult{}
	var cpu string
	var refResults map[string]perfResult
	for _, conns := range perfLevels {
		before := cpuNow()
		curve[conns] = runRounds(g, readCases, sessions, conns, rounds, per)
		if conns == 32 {
			for name, r := range runRounds(g, writeCases, sessions, conns, rounds, per) {
				curve[conns][name] = r
			}
			cpu = cpuShares(before, cpuNow())
			refResults = runRounds(g, refCases, sessions, conns, rounds, per)
		}
		b.Logf("%d connections done", conns)
	}
	// The same 32 connections at half of each case's rate at 32
	// connections: what a request waits when the stack is not at its limit.
	paced := map[string]perfResult{}
	for _, c := range readCases {
		paced[c.name] = g.runPaced(c, sessions[c.name], 32, 2*per, curve[32][c.name].rps/2)
	}
	b.StopTimer()
	for name, r := range paced {
		if r.errors > 0 {
			b.Errorf("%s paced: %d errors, e.g. %s", name, r.errors, r.sample)
		}
	}
	for name, r := range refResults {
		if r.errors > 0 {
			b.Errorf("%s in the reference's rounds: %d errors, e.g. %s", name, r.errors, r.sample)
		}
	}
	for conns, results := range curve {
		for name, r := range results {
			if r.errors > 0 {
				b.Errorf("%s at %d connections: %d errors, e.g. %s", name, conns, r.errors, r.sample)
			}
		}
	}
	at32 := curve[32]
	for _, c := range readCases {
		b.ReportMetric(at32[c.name].rps, c.name+"-req/s")
	}
	b.ReportMetric(0, "ns/op")
	table, curveTable, pacedTable, refTable := perfTable(at32), perfCurveTable(curve), perfPacedTable(paced, at32), perfRefTable(refResults)
	b.Logf("\nat 32 connections:\n%s\nthe curve:\n%s\nat half the rate, 32 connections:\n%s\nthe reference, 32 connections:\n%s\nwhere the CPU went at 32 connections (all processes on this machine): %s", table, curveTable, pacedTable, refTable, cpu)
	b.Logf("the replica's profile under a mixed load through nginx:\n%s", g.profile(b, sessions, per))
	if os.Getenv("PERF_README") == "1" {
		if err := replaceBetweenMarkers("../docs/performance.md", "perf", table); err != nil {
			b.Fatal(err)
		}
		if err := replaceBetweenMarkers("../docs/performance.md", "perfcurve", curveTable); err != nil {
			b.Fatal(err)
		}
		if err := replaceBetweenMarkers("../docs/performance.md", "perfpaced", pacedTable); err != nil {
			b.Fatal(err)
		}
		if err := replaceBetweenMarkers("../docs/performance.md", "perfref", refTable); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile("../docs/performance.svg", []byte(perfChart(curve)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// perfLevels are the numbers of concurrent connections measured.
var perfLevels = []int{1, 8, 32, 128}

// perfCase is one kind of request the benchmark sends.
type perfCase struct {
	name, mode   string
	method, path string
	// target is where it is sent: the stack's nginx unless it says
	// otherwise.
	target perfTarget
	// pinned sends it through nginx to one replica only: every session
	// carries the same lb_route cookie. Against toReplica it is the cost
	// of the hop through nginx; against the baseline, which nginx spreads
	// over the three replicas, the cost of the spreading.
	pinned bool
	// write adds an item (POST /api/cart/items) to a session whose cart
	// starts empty; the others read a 3-line cart.
	write bool
}

// perfTarget is the address a case's requests go to.
type perfTarget int

const (
	toNginx      perfTarget = iota // the stack's nginx (lb)
	toReplica                      // straight to one replica, without nginx
	toBareServer                   // the reference's first bare server (benchref_test.go)
	toBareNginx                    // the reference's bare nginx, round robin to its three servers
)

var readCases = []perfCase{
	{name: "replica", mode: "sticky", method: "GET", path: "/api/ping", target: toReplica},
	{name: "pinned", mode: "sticky", method: "GET", path: "/api/ping", pinned: true},
	{name: "baseline", mode: "sticky", method: "GET", path: "/api/ping"},
	{name: "sticky", mode: "sticky", method: "GET", path: "/api/cart"},
	{name: "redis", mode: "redis", method: "GET", path: "/api/cart"},
	{name: "jwt", mode: "jwt", method: "GET", path: "/api/cart"},
	{name: "memcached", mode: "memcached", method: "GET", path: "/api/cart"},
}

var writeCases = []perfCase{
	{name: "sticky write", mode: "sticky", method: "POST", path: "/api/cart/items", write: true},
	{name: "redis write", mode: "redis", method: "POST", path: "/api/cart/items", write: true},
	{name: "jwt write", mode: "jwt", method: "POST", path: "/api/cart/items", write: true},
	{name: "memcached write", mode: "memcached", method: "POST", path: "/api/cart/items", write: true},
}

// perfResult is one case's numbers at one level.
type perfResult struct {
	rps, p50, p99 float64
	errors        int64
	sample        string
}

// loadGen sends the benchmark's requests to container addresses.
type loadGen struct {
	lbAddr      string       // nginx (lb): host:port on the compose network
	replicaAddr string       // one replica (app-1): host:port
	pprof       string       // the replica's pprof base URL
	ref         *refStack    // the reference's bare containers
	client      *http.Client // for setting up the sessions; the load goes through rawConn
}

func newLoadGen(b *testing.B) *loadGen {
	b.Helper()
	ip := func(name string) string {
		addr, err := service(b, name).ContainerIP(context.Background())
		if err != nil || addr == "" {
			b.Fatalf("the address of %s on the compose network: %q %v", name, addr, err)
		}
		return addr
	}
	first := replicas(b)[0]
	replicaIP := ip(first)
	transport := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute, DisableCompression: true}
	return &loadGen{
		lbAddr:      ip("lb") + ":80",
		replicaAddr: replicaIP + ":8080",
		pprof:       "http://" + replicaIP + ":6060",
		ref:         startRefStack(b, stack.up.project+"_default"),
		client:      &http.Client{Transport: transport, Timeout: 10 * time.Second},
	}
}

func (g *loadGen) close() { g.client.CloseIdleConnections() }

// sessions starts n sessions of mode through nginx, each with a 3-line
// cart when filled.
func (g *loadGen) sessions(b *testing.B, mode string, n int, filled bool) []*perfSession {
	b.Helper()
	out := make([]*perfSession, n)
	for i := range out {
		s := &perfSession{cookies: map[string]string{"mode": mode}}
		jar, _ := cookiejar.New(nil)
		lb := "http://" + g.lbAddr
		u, _ := url.Parse(lb)
		jar.SetCookies(u, []*http.Cookie{{Name: "mode", Value: mode}})
		c := &http.Client{Jar: jar, Transport: g.client.Transport, Timeout: 10 * time.Second}
		var products []string
		if filled {
			products = []string{"p1", "p4", "p9"}
		}
		for _, p := range products {
			resp, err := c.Post(lb+"/api/cart/items", "application/json", strings.NewReader(`{"product_id":"`+p+`","qty":2}`))
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("%s: fill a cart: %v %v", mode, resp, err)
			}
			resp.Body.Close()
		}
		if len(products) == 0 { // a session all the same, with an empty cart
			resp, err := c.Get(lb + "/api/cart")
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("%s: start a session: %v %v", mode, resp, err)
			}
			resp.Body.Close()
		}
		for _, ck := range jar.Cookies(u) {
			s.cookies[ck.Name] = ck.Value
		}
		s.rebuild()
		out[i] = s
	}
	return out
}

// run sends requests of case c from conns connections, each with its own
// session, for d, and returns the numbers. Each connection sends its next
// request as soon as it has the answer to the last (a closed loop), so
// the stack runs at its limit and latency is mostly waiting in line.
func (g *loadGen) run(c perfCase, sessions []*perfSession, conns int, d time.Duration) perfResult {
	return g.load(c, sessions, conns, d, 0)
}

// runPaced is run at a fixed rate, rate requests a second from all conns
// connections together, each connection on its own schedule. A request's
// latency counts from when the schedule said to send it, so a stall
// delays the requests queued behind it and shows in their latency too
// (the numbers are not flattered by sending less while the stack is
// slow).
func (g *loadGen) runPaced(c perfCase, sessions []*perfSession, conns int, d time.Duration, rate float64) perfResult {
	if rate <= 0 {
		return perfResult{errors: 1, sample: "no rate to pace to: the case served nothing at 32 connections"}
	}
	return g.load(c, sessions, conns, d, time.Duration(float64(conns)/rate*float64(time.Second)))
}

// load is run (interval 0) or runPaced (each connection sends once per
// interval).
func (g *loadGen) load(c perfCase, sessions []*perfSession, conns int, d, interval time.Duration) perfResult {
	addr := map[perfTarget]string{
		toNginx:      g.lbAddr,
		toReplica:    g.replicaAddr,
		toBareServer: g.ref.serverAddr,
		toBareNginx:  g.ref.nginxAddr,
	}[c.target]
	var (
		wg       sync.WaitGroup
		errs     atomic.Int64
		sampleMu sync.Mutex
		sample   string
	)
	fail := func(what string) {
		if errs.Add(1) == 1 {
			sampleMu.Lock()
			sample = what
			sampleMu.Unlock()
		}
	}
	lat := make([][]time.Duration, conns)
	start := time.Now()
	deadline := start.Add(d)
	for i := range conns {
		s := sessions[i]
		// The connections' schedules are spread over one interval.
		due := start.Add(interval * time.Duration(i) / time.Duration(conns))
		wg.Go(func() {
			conn := &rawConn{addr: addr}
			defer conn.close()
			for {
				t0 := time.Now()
				if interval > 0 {
					if !due.Before(deadline) {
						break
					}
					time.Sleep(time.Until(due))
					t0, due = due, due.Add(interval)
				} else if !t0.Before(deadline) {
					break
				}
				method, path, body := c.next(s)
				a, err := conn.do(method, path, s.header, body)
				if err != nil {
					fail(err.Error())
					continue
				}
				lat[i] = append(lat[i], time.Since(t0))
				if a.status != 200 {
					fail(fmt.Sprintf("%s %s: %d %.200s", method, path, a.status, a.body))
					continue
				}
				if c.write {
					s.update(a.cookies)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	r := perfResult{rps: float64(len(all)) / elapsed.Seconds(), errors: errs.Load(), sample: sample}
	if len(all) > 0 {
		r.p50 = float64(all[len(all)/2].Microseconds()) / 1000
		r.p99 = float64(all[len(all)*99/100].Microseconds()) / 1000
	}
	return r
}

// next is the next request of case c for session s: for a write, an add
// of one item, cycling through the catalog, and a clear of the cart
// before any line could reach its limit of 99.
func (c perfCase) next(s *perfSession) (method, path, body string) {
	switch {
	case c.write && s.adds >= 900:
		s.adds = 0
		return "DELETE", "/api/cart", ""
	case c.write:
		s.adds++
		return c.method, c.path, `{"product_id":"p` + strconv.Itoa(s.adds%10+1) + `","qty":1}`
	default:
		return c.method, c.path, ""
	}
}

// runRounds runs every case rounds times at one level, each round in
// another order, and returns each case's median req/s, its worst round's
// p50 and p99, and its errors over all rounds.
func runRounds(g *loadGen, cases []perfCase, sessions map[string][]*perfSession, conns, rounds int, per time.Duration) map[string]perfResult {
	rps := map[string][]float64{}
	out := map[string]perfResult{}
	for round := range rounds {
		for k := range cases {
			c := cases[(k+round)%len(cases)]
			r := g.run(c, sessions[c.name], conns, per)
			rps[c.name] = append(rps[c.name], r.rps)
			sum := out[c.name]
			// The worst round's tail is kept rather than averaged away.
			sum.p50 = max(sum.p50, r.p50)
			sum.p99 = max(sum.p99, r.p99)
			sum.errors += r.errors
			if sum.sample == "" {
				sum.sample = r.sample
			}
			out[c.name] = sum
		}
	}
	for name, rs := range rps {
		sort.Float64s(rs)
		r := out[name]
		r.rps = rs[len(rs)/2]
		out[name] = r
	}
	return out
}

// profile takes a CPU profile of the replica for 5 s while every read
// case runs through nginx at once (32 connections in all), and returns
// pprof's top entries. The profile stays in $TMPDIR/sessiondemo-perf.
func (g *loadGen) profile(b *testing.B, sessions map[string][]*perfSession, per time.Duration) string {
	b.Helper()
	dir := filepath.Join(os.TempDir(), "sessiondemo-perf")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var spread []perfCase
		for _, c := range readCases {
			if c.target == toNginx && !c.pinned {
				spread = append(spread, c)
			}
		}
		var wg sync.WaitGroup
		for _, c := range spread {
			wg.Go(func() { g.run(c, sessions[c.name], 32/len(spread), 7*time.Second) })
		}
		wg.Wait()
	}()
	defer func() { <-done }()
	// The load runs 7 s, the profile samples 5 s of it.
	resp, err := http.Get(g.pprof + "/debug/pprof/profile?seconds=5")
	if err != nil {
		return fmt.Sprintf("no profile: %v (the stack's replicas serve pprof only with PPROF_ADDR set)", err)
	}
	defer resp.Body.Close()
	file := filepath.Join(dir, "replica-cpu.pprof")
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		return fmt.Sprintf("no profile: %d %v", resp.StatusCode, err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		b.Fatal(err)
	}
	out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=25", file).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("go tool pprof: %v\n%s", err, out)
	}
	return fmt.Sprintf("(%s; `go tool pprof -top %s`)\n%s", file, file, out)
}
