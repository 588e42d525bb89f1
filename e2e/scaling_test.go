package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/simulator"
)

// The scaling events, each while the simulator's long sessions run in
// sticky (cookie), redis and jwt mode at once, through lb: scale-out 3→6,
// scale-in 6→3, and a rolling deploy that replaces every replica. The
// tables they log are docs/scaling.md's.

// scalingModes are the three loads of a scaling event.
var scalingModes = []loadMode{
	{session.Sticky, session.AffinityCookie},
	{session.Redis, ""},
	{session.JWT, ""},
}

// startLoads starts one simulator run per scaling mode, each with clients
// long sessions (one per client, for the whole run) for d. They end by
// themselves; the test waits for them with waitLoads, and a test that
// stops early waits for them in its cleanup.
func startLoads(t *testing.T, clients int, d time.Duration) []*modeLoad {
	t.Helper()
	return startModeLoads(t, scalingModes, clients, d, keepAliveClient(clients*len(scalingModes)))
}

// loadOf returns the replica's numbers in a progress or result.
func loadOf(per []simulator.ReplicaLoad, replica string) simulator.ReplicaLoad {
	for _, rl := range per {
		if rl.Replica == replica {
			return rl
		}
	}
	return simulator.ReplicaLoad{Replica: replica}
}

// TestScaleOutAndIn scales the running stack 3→6 and 6→3 under long
// sessions, checks every technique at 6 and at 1 replica, and ends at 3.
//
// Scale-out: the new replicas get none of the running sticky sessions
// (each stays pinned to its old replica), while redis and jwt spread every
// request over all six at once; nobody loses anything. Scale-in: the
// sticky sessions that lived on the removed replicas are lost, exactly
// those; redis and jwt lose none, and under 1% of their requests fail.
func TestScaleOutAndIn(t *testing.T) {
	needStack(t)
	t.Cleanup(func() {
		if len(replicas(t)) != 3 {
			scaleTo(t, 3)
		}
		waitStackHealthy(t)
	})
	before := replicas(t)
	if len(before) != 3 {
		t.Fatalf("the stack runs %d replicas, want the default 3: %v", len(before), before)
	}

	// A person watches the admin page while it happens: the picture
	// follows without a reload.
	browser, base := newBrowser(t)
	page := startBrowser(t, browser, 1280, 900, 4*time.Minute)
	dir := screenshotDir(t)
	if err := chromedp.Do(page,
		chromedp.Navigate(base+"/admin"),
		chromedp.WaitReady(chromedp.CSS(`[data-testid="live-state"][data-state="live"]`)),
	); err != nil {
		t.Fatalf("open the admin page: %v", err)
	}
	drawn := func(selector string) int {
		n, err := chromedp.Run(page, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, selector)))
		if err != nil {
			t.Fatalf("read the topology: %v", err)
		}
		return n
	}

	// Scale-out 3→6 under long sessions.
	const window = 30 * time.Second
	loads := startLoads(t, 10, window+15*time.Second)
	took := scaleTo(t, 6)
	added := slices.DeleteFunc(replicas(t), func(r string) bool { return slices.Contains(before, r) })
	shown := waitFor(t, 20*time.Second, "the admin page to draw the new replicas, marked joined", func() bool {
		for _, r := range added {
			if drawn(fmt.Sprintf(`#topology .node-replica[data-node=%q][data-change="joined"]`, r)) != 1 {
				return false
			}
		}
		return drawn(`#topology .node-replica`) == 6
	})
	t.Logf("the admin page drew the three new replicas, marked joined, %.1f s after they all served", shown.Seconds())
	if err := chromedp.Do(page, screenshot(t, dir, "admin-scaled-out")); err != nil {
		t.Fatal(err)
	}
	at := make([]simulator.Progress, len(loads))
	for i, l := range loads {
		at[i] = l.progress()
	}
	end := time.Now().Add(window)
	results := waitLoads(t, loads)
	measured := window - time.Until(end)
	if measured < window/2 {
		t.Fatalf("the load ended %s after the scale-out, want about %s: scaling took %s", measured.Round(time.Second), window, took.Round(time.Second))
	}
	after := replicas(t)
	outTable := fmt.Sprintf("Scale-out 3→6 (%s until all six served), the %.0f s after it:\n\n", took.Round(time.Second), measured.Seconds()) +
		fmt.Sprintf("| mode | requests on the old replicas (%s) | on the new ones (%s) | requests max/mean | sessions max/mean | errors | sessions lost |\n|---|---|---|---|---|---|---|\n",
			strings.Join(before, ", "), strings.Join(added, ", "))
	for i, res := range results {
		var oldReqs, newReqs, reqs, live []int
		for _, r := range after {
			n := loadOf(res.PerReplica, r).Requests - loadOf(at[i].PerReplica, r).Requests
			reqs = append(reqs, n)
			live = append(live, loadOf(res.PerReplica, r).LiveSessions)
			if slices.Contains(before, r) {
				oldReqs = append(oldReqs, n)
			} else {
				newReqs = append(newReqs, n)
			}
		}
		outTable += fmt.Sprintf("| %s | %s | %s | %.2f | %.2f | %d | %d of %d |\n", res.Config.Mode, joinInts(oldReqs), joinInts(newReqs),
			simulator.MaxMean(reqs), simulator.MaxMean(live), res.Errors, res.Carts.Lost, res.Carts.Checked)
		if res.Errors != 0 || res.Carts.Lost != 0 || res.Carts.Checked == 0 {
			t.Errorf("%s: %d errors %v, %d of %d sessions lost; want none lost, no error", res.Config.Mode, res.Errors, res.ErrorSamples, res.Carts.Lost, res.Carts.Checked)
		}
		switch res.Config.Mode {
		case session.Sticky:
			if slices.Max(newReqs) != 0 {
				t.Errorf("sticky: the new replicas served %v requests of sessions that began before they existed, want 0", newReqs)
			}
		default:
			if slices.Min(newReqs) == 0 || simulator.MaxMean(reqs) > 1.5 {
				t.Errorf("%s: requests per replica %v after scale-out; want all six serving, max/mean at most 1.5", res.Config.Mode, reqs)
			}
		}
	}
	t.Log("\n" + outTable)
	checkTechniques(t, after)

	// Scale-in 6→3 under long sessions begun on six replicas.
	loads = startLoads(t, 12, 25*time.Second)
	at = make([]simulator.Progress, len(loads))
	for i, l := range loads {
		at[i] = l.progress()
	}
	took = scaleTo(t, 3)
	waitFor(t, 20*time.Second, "the admin page to mark the removed replicas left", func() bool {
		for _, r := range added {
			if drawn(fmt.Sprintf(`#topology .node-replica[data-node=%q][data-change="left"]`, r)) != 1 {
				return false
			}
		}
		return true
	})
	if err := chromedp.Do(page, screenshot(t, dir, "admin-scaled-in")); err != nil {
		t.Fatal(err)
	}
	results = waitLoads(t, loads)
	kept := replicas(t)
	inTable := fmt.Sprintf("Scale-in 6→3 (%s until only three served):\n\n", took.Round(time.Second)) +
		"| mode | sessions on the removed replicas | sessions lost | requests | errors | longest request |\n|---|---|---|---|---|---|\n"
	for i, res := range results {
		onRemoved := 0
		for _, rl := range at[i].PerReplica {
			if !slices.Contains(kept, rl.Replica) {
				onRemoved += rl.Sessions
			}
		}
		inTable += fmt.Sprintf("| %s | %d of %d | %d of %d | %d | %d | %s |\n", res.Config.Mode, onRemoved, res.Config.Clients,
			res.Carts.Lost, res.Carts.Checked, res.Requests, res.Errors, res.Slowest.Round(time.Millisecond))
		switch res.Config.Mode {
		case session.Sticky:
			// A session lives where it began: the ones that began on a
			// removed replica, and only those, are lost.
			if res.Carts.Lost != onRemoved || onRemoved == 0 {
				t.Errorf("sticky: %d sessions lost, %d began on the removed replicas; want those exactly (and some)", res.Carts.Lost, onRemoved)
			}
		default:
			// Three replicas stop at once under load: nginx retries what
			// they refuse, but a retry after the replicas left DNS finds
			// the pool's peer set changed and gives up (README, "Known
			// gaps"): in one run of six, 2 keyed writes of about 2,400 got
			// a 502. Nothing may be lost; failed requests stay rare.
			if res.Carts.Lost != 0 || res.Carts.Checked == 0 || res.Errors*100 > res.Requests {
				t.Errorf("%s: %d errors %v of %d requests, %d of %d sessions lost; want none lost and under 1%% failed", res.Config.Mode, res.Errors, res.ErrorSamples, res.Requests, res.Carts.Lost, res.Carts.Checked)
			}
		}
	}
	t.Log("\n" + inTable)
	checkTechniques(t, kept)
	// SCALE_README=1 puts this run's tables into docs/scaling.md.
	if os.Getenv("SCALE_README") == "1" && !t.Failed() {
		if err := replaceBetweenMarkers("../docs/scaling.md", "scale", outTable+"\n"+inTable); err != nil {
			t.Error(err)
		}
	}

	scaleTo(t, 1)
	checkTechniques(t, replicas(t))
	scaleTo(t, 3)
	checkTechniques(t, replicas(t))
}

// checkTechniques checks every affinity technique and round robin with
// the replicas given running: a cookie keeps a browser on one replica with
// its cart, a sid in the URL keeps a cookieless client on the replica that
// created its session, addresses stay where nginx's ip_hash puts them
// (one replica per hash bucket), and redis mode reaches every replica.
func checkTechniques(t *testing.T, names []string) {
	t.Helper()
	n := len(names)

	// cookie
	s := newShopper(t, "sticky")
	s.do("POST", "/api/cart/items", `{"product_id":"p1"}`)
	for range 5 {
		if _, c := s.do("GET", "/api/cart", ""); c.Count != 1 {
			t.Errorf("%d replicas, cookie affinity: cart %s, want the one add", n, describeCart(c))
		}
	}
	if got := s.distinctReplicas(); len(got) != 1 {
		t.Errorf("%d replicas, cookie affinity: served by %v, want one replica", n, got)
	}

	// url
	first := call(t, "POST", "/api/cart/items?mode=sticky&affinity=url", `{"product_id":"p2"}`, nil)
	if first.status != 200 || first.cart.SID == "" {
		t.Fatalf("%d replicas, url affinity: first add %d: %s", n, first.status, first.body)
	}
	q := "mode=sticky&affinity=url&sid=" + url.QueryEscape(first.cart.SID)
	urlSeq := []string{first.replica}
	for range 5 {
		a := call(t, "GET", "/api/cart?"+q, "", nil)
		urlSeq = append(urlSeq, a.replica)
		if a.status != 200 || a.cart.Count != 1 {
			t.Errorf("%d replicas, url affinity: %d, cart count %d on %s; want the one add on %s", n, a.status, a.cart.Count, a.replica, first.replica)
		}
	}

	// ip: one address per hash bucket, each stays on one replica, and
	// the buckets use every replica.
	ipSeen := map[string]bool{}
	var ipLines []string
	for bucket := range n {
		var addr string
		for x := 0; x < 256 && addr == ""; x++ {
			if a := netip.AddrFrom4([4]byte{198, 18, byte(x), 10}); ipHashIndex(a, n) == bucket {
				addr = a.String()
			}
		}
		got := map[string]bool{}
		for range 3 {
			r := call(t, "GET", "/api/cart?mode=sticky&affinity=ip", "", map[string]string{"X-Forwarded-For": addr})
			got[r.replica] = true
			ipSeen[r.replica] = true
		}
		ipLines = append(ipLines, fmt.Sprintf("%s→%v", addr, keys(got)))
		if len(got) != 1 {
			t.Errorf("%d replicas, ip affinity: %s was served by %v, want one replica", n, addr, keys(got))
		}
	}
	if len(ipSeen) != n {
		t.Errorf("%d replicas, ip affinity: one address per hash bucket reached %v, want all %d replicas", n, keys(ipSeen), n)
	}

	// round robin
	rr := map[string]bool{}
	for range 3 * n {
		if status, r, err := probe(stack.lbURL, "GET", "/api/cart?mode=redis", nil); err == nil && status == 200 {
			rr[r] = true
		}
	}
	if len(rr) != n {
		t.Errorf("%d replicas, redis round robin reached %v in %d requests, want every one of %v", n, keys(rr), 3*n, names)
	}
	t.Logf("%d replicas %v: cookie → %v; url → %v; ip → %s; round robin → %d replicas", n, names, s.distinctReplicas(), urlSeq, strings.Join(ipLines, " "), len(rr))
	for _, r := range urlSeq {
		if r != first.replica {
			t.Errorf("%d replicas, url affinity: requests went to %v, the session is on %s", n, urlSeq, first.replica)
			break
		}
	}
}

// keys returns a set's members, sorted.
func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestRollingDeploy runs compose/rolling-deploy (the README's command) on
// the running stack while long sessions shop in every mode: every replica
// is replaced by a new one, one at a time. redis and jwt see no failed
// request and lose no session; sticky loses every session, since each
// lived in a replica that stopped. The stack ends with three new replicas.
func TestRollingDeploy(t *testing.T) {
	needStack(t)
	before := replicas(t)
	t.Cleanup(func() {
		if len(replicas(t)) != len(before) {
			scaleTo(t, len(before))
		}
		waitStackHealthy(t)
	})
	loads := startLoads(t, 10, 60*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "../compose/rolling-deploy", "--no-build")
	cmd.Env = stackEnv()
	// On the timeout, end the script and the docker commands it started,
	// not only bash, and stop waiting for their output soon after.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	t.Logf("compose/rolling-deploy --no-build, %s:\n%s", took.Round(time.Second), out)
	if err != nil {
		t.Fatalf("rolling deploy: %v (before the loads ended? they run 60 s)", err)
	}
	results := waitLoads(t, loads)
	after := replicas(t)
	if len(after) != len(before) {
		t.Errorf("after the rolling deploy %d replicas run (%v), want %d", len(after), after, len(before))
	}
	for _, r := range after {
		if slices.Contains(before, r) {
			t.Errorf("%s still runs after the rolling deploy replaced %v", r, before)
		}
	}
	table := checkEveryReplicaReplaced(t, fmt.Sprintf("Rolling deploy of %s → %s (%s)", strings.Join(before, ", "), strings.Join(after, ", "), took.Round(time.Second)), results)
	if t.Failed() {
		// Why a replica answered 503, from the replicas still running
		// (the replaced ones are removed with their logs).
		var warnings []string
		for _, line := range strings.Split(composeCLI(t, "logs", "--since", "2m", "app"), "\n") {
			if strings.Contains(line, `"level":"WARN"`) || strings.Contains(line, `"level":"ERROR"`) {
				warnings = append(warnings, line)
			}
		}
		t.Logf("the new replicas' warnings and errors:\n%s", strings.Join(warnings, "\n"))
	}
	if os.Getenv("SCALE_README") == "1" && !t.Failed() {
		if err := replaceBetweenMarkers("../docs/scaling.md", "rolling", table); err != nil {
			t.Error(err)
		}
	}
}

// checkEveryReplicaReplaced checks the loads' results after every replica
// was replaced (a rolling deploy or update): sticky lost every session,
// since each lived in a replica that stopped; the other modes failed no
// request and lost no session. It logs and returns the results as a table
// under title.
func checkEveryReplicaReplaced(t *testing.T, title string, results []simulator.Result) string {
	t.Helper()
	table := title + ":\n\n| mode | sessions lost | requests | requests failed | longest request |\n|---|---|---|---|---|\n"
	for _, res := range results {
		table += fmt.Sprintf("| %s | %d of %d | %d | %d | %s |\n", res.Config.Mode, res.Carts.Lost, res.Carts.Checked, res.Requests, res.Errors, res.Slowest.Round(time.Millisecond))
		switch res.Config.Mode {
		case session.Sticky:
			if res.Carts.Checked == 0 || res.Carts.Lost != res.Carts.Checked {
				t.Errorf("sticky: %d of %d sessions lost; every sticky session lived in a replica that stopped", res.Carts.Lost, res.Carts.Checked)
			}
		default:
			if res.Errors != 0 || res.Carts.Lost != 0 || res.Carts.Checked == 0 {
				t.Errorf("%s: %d failed requests %v, %d of %d sessions lost; want none", res.Config.Mode, res.Errors, res.ErrorSamples, res.Carts.Lost, res.Carts.Checked)
			}
		}
	}
	t.Log("\n" + table)
	return table
}

// joinInts writes counts as "1, 2, 3".
func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}
