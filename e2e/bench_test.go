package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// readResult is one mode's numbers in a load run.
type readResult struct {
	rps, p50, p99 float64
	errors        int64
}

// BenchmarkReadThroughNginx: GET /api/cart with a 3-line cart, 32
// concurrent clients each with its own session, through nginx, in every
// mode, plus a no-session baseline (GET /api/ping, the same middleware and
// request log, through the same sticky pool). The cases run in five
// rounds, each round in another order, b.N requests per case and round,
// so they compare as ratios and no case gains from going first; req/s is
// the median round, p50 and p99 are over all rounds:
//
//	go test ./e2e -run '^$' -bench ReadThroughNginx -benchtime 6000x
//
// With PERF_README=1 the table in README.md between the perf markers is
// rewritten from this run.
func BenchmarkReadThroughNginx(b *testing.B) {
	needStack(b)
	const clients, rounds = 32, 5
	transport := &http.Transport{MaxIdleConns: 2 * clients, MaxIdleConnsPerHost: 2 * clients, IdleConnTimeout: time.Minute}
	defer transport.CloseIdleConnections()
	hc := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	cases := []struct{ name, mode, path string }{
		{"baseline", "sticky", "/api/ping"},
		{"sticky", "sticky", "/api/cart"},
		{"redis", "redis", "/api/cart"},
		{"jwt", "jwt", "/api/cart"},
		{"memcached", "memcached", "/api/cart"},
	}
	// Each client of each case: its own session with a 3-line cart, and
	// the cookies (nginx's lb_route too) it got while filling it.
	headers := map[string][]string{}
	for _, c := range cases {
		for i := 0; i < clients; i++ {
			jar, _ := cookiejar.New(nil)
			u, _ := url.Parse(stack.lbURL)
			jar.SetCookies(u, []*http.Cookie{{Name: "mode", Value: c.mode}})
			fill := &http.Client{Jar: jar, Transport: transport, Timeout: 10 * time.Second}
			for _, p := range []string{"p1", "p4", "p9"} {
				resp, err := fill.Post(stack.lbURL+"/api/cart/items", "application/json", strings.NewReader(`{"product_id":"`+p+`","qty":2}`))
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("fill cart: %v %v", resp, err)
				}
				resp.Body.Close()
			}
			var parts []string
			for _, ck := range jar.Cookies(u) {
				parts = append(parts, ck.Name+"="+ck.Value)
			}
			headers[c.name] = append(headers[c.name], strings.Join(parts, "; "))
		}
	}
	// run sends n requests of one case from all clients and returns the
	// elapsed time, the latencies and the errors.
	run := func(name, path string, n int) (time.Duration, []time.Duration, int64) {
		var next, errs atomic.Int64
		lat := make([][]time.Duration, clients)
		var wg sync.WaitGroup
		start := time.Now()
		for i := 0; i < clients; i++ {
			wg.Go(func() {
				req, _ := http.NewRequest("GET", stack.lbURL+path, nil)
				req.Header.Set("Cookie", headers[name][i])
				for next.Add(1) <= int64(n) {
					t0 := time.Now()
					resp, err := hc.Do(req)
					if err != nil {
						errs.Add(1)
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						errs.Add(1)
					}
					lat[i] = append(lat[i], time.Since(t0))
				}
			})
		}
		wg.Wait()
		var all []time.Duration
		for _, l := range lat {
			all = append(all, l...)
		}
		return time.Since(start), all, errs.Load()
	}
	// Warm up every path: connections, caches, the replicas' heaps.
	for _, c := range cases {
		run(c.name, c.path, 20*clients)
	}

	rps := map[string][]float64{}
	lat := map[string][]time.Duration{}
	errs := map[string]int64{}
	cpuBefore := cpuByCommand()
	b.ResetTimer()
	for round := 0; round < rounds; round++ {
		for k := range cases {
			c := cases[(k+round)%len(cases)]
			elapsed, l, e := run(c.name, c.path, b.N)
			rps[c.name] = append(rps[c.name], float64(b.N)/elapsed.Seconds())
			lat[c.name] = append(lat[c.name], l...)
			errs[c.name] += e
		}
	}
	b.StopTimer()
	cpu := cpuShares(cpuBefore, cpuByCommand())
	results := map[string]readResult{}
	for _, c := range cases {
		r := readResult{errors: errs[c.name]}
		sort.Float64s(rps[c.name])
		r.rps = rps[c.name][len(rps[c.name])/2]
		all := lat[c.name]
		sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
		if len(all) > 0 {
			r.p50 = float64(all[len(all)/2].Microseconds()) / 1000
			r.p99 = float64(all[len(all)*99/100].Microseconds()) / 1000
		}
		results[c.name] = r
		b.ReportMetric(r.rps, c.name+"-req/s")
		b.ReportMetric(r.p99, c.name+"-p99-ms")
		if r.errors > 0 {
			b.Errorf("%s: %d errors", c.name, r.errors)
		}
	}
	b.ReportMetric(0, "ns/op")
	if b.N < 100 {
		return // the framework's probe run; too short to report
	}
	table := perfTable(results)
	b.Logf("\n%s\nwhere the CPU went during the run (all processes on this machine): %s", table, cpu)
	if os.Getenv("PERF_README") == "1" {
		if err := replaceBetweenMarkers("../README.md", "perf", table); err != nil {
			b.Fatal(err)
		}
	}
}

func perfTable(r map[string]readResult) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "| case | req/s | p50 ms | p99 ms | errors | ratio to sticky | ratio to baseline |\n|---|---|---|---|---|---|---|\n")
	for _, name := range []string{"baseline", "sticky", "redis", "jwt", "memcached"} {
		x := r[name]
		fmt.Fprintf(&sb, "| %s | %.0f | %.2f | %.2f | %d | %.2f | %.2f |\n", name, x.rps, x.p50, x.p99, x.errors, x.rps/r["sticky"].rps, x.rps/r["baseline"].rps)
	}
	return sb.String()
}

// cpuByCommand sums user+system CPU ticks of every process on this
// machine by command name (Linux /proc; empty elsewhere). Containers'
// processes are visible from the host, so this shows how the load splits
// between the client, docker-proxy, nginx, the replicas, Redis and Docker.
func cpuByCommand() map[string]float64 {
	out := map[string]float64{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open {
			continue
		}
		fields := strings.Fields(s[closing+1:])
		if len(fields) < 13 {
			continue
		}
		utime, _ := strconv.ParseFloat(fields[11], 64)
		stime, _ := strconv.ParseFloat(fields[12], 64)
		out[s[open+1:closing]] += utime + stime
	}
	return out
}

// cpuShares describes the CPU used between two snapshots, biggest first.
func cpuShares(before, after map[string]float64) string {
	type use struct {
		name  string
		ticks float64
	}
	var uses []use
	total := 0.0
	for name, t := range after {
		if d := t - before[name]; d > 0 {
			uses = append(uses, use{name, d})
			total += d
		}
	}
	if total == 0 {
		return "not measured"
	}
	sort.Slice(uses, func(i, j int) bool { return uses[i].ticks > uses[j].ticks })
	var parts []string
	for i, u := range uses {
		if i == 8 {
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.0f%%", u.name, 100*u.ticks/total))
	}
	return strings.Join(parts, ", ")
}
