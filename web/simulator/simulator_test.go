package simulator_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiondemo/shop/web/admin"
	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/simulator"
	"github.com/sessiondemo/shop/web/webtest"
)

// fakeLB stands in for nginx in front of three real replicas
// (webtest.Replica: a memory store and a JWT store each, one signing key):
// round robin, except in sticky mode, where it pins a browser to a replica
// with the lb_route cookie (cookie and url affinity) or by the first three
// octets of X-Forwarded-For (ip affinity). pin false turns the pinning off,
// to lose sticky sessions on purpose.
type fakeLB struct {
	names    []string
	replicas []http.Handler
	pin      bool
	next     atomic.Uint64

	mu        sync.Mutex
	forwarded map[string]int // X-Forwarded-For values seen
}

func newFakeLB(t *testing.T, pin bool) (*fakeLB, *httptest.Server) {
	t.Helper()
	lb := &fakeLB{pin: pin, forwarded: map[string]int{}}
	for _, name := range []string{"app1", "app2", "app3"} {
		h := webtest.Replica(t, name, admin.Options{})
		lb.names = append(lb.names, name)
		lb.replicas = append(lb.replicas, h)
	}
	srv := httptest.NewServer(lb)
	t.Cleanup(srv.Close)
	return lb, srv
}

func (lb *fakeLB) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	xff := r.Header.Get("X-Forwarded-For")
	lb.mu.Lock()
	lb.forwarded[xff]++
	lb.mu.Unlock()
	q := r.URL.Query()
	i := int(lb.next.Add(1) % uint64(len(lb.replicas)))
	if lb.pin && q.Get("mode") == "sticky" {
		if q.Get("affinity") == "ip" {
			h := fnv.New32a()
			parts := strings.Split(xff, ".")
			h.Write([]byte(strings.Join(parts[:min(3, len(parts))], ".")))
			i = int(h.Sum32() % uint32(len(lb.replicas)))
		} else if c, err := r.Cookie("lb_route"); err == nil {
			for j, name := range lb.names {
				if name == c.Value {
					i = j
				}
			}
		} else {
			http.SetCookie(w, &http.Cookie{Name: "lb_route", Value: lb.names[i], Path: "/"})
		}
	}
	lb.replicas[i].ServeHTTP(w, r)
}

func (lb *fakeLB) forwardedValues() map[string]int {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	out := map[string]int{}
	for k, v := range lb.forwarded {
		out[k] = v
	}
	return out
}

func TestValidate(t *testing.T) {
	good := simulator.Config{Target: "http://lb"}
	if err := good.Validate(); err != nil {
		t.Fatalf("a config with only a target: %v", err)
	}
	d := good.WithDefaults()
	if d.Clients != simulator.DefaultClients || d.Mode != "redis" || d.Sessions != simulator.ProfileShort || d.Duration != simulator.DefaultDuration || d.MaxRequests != simulator.DefaultMaxRequests || d.Affinity != "" {
		t.Errorf("defaults: %+v", d)
	}
	if d := (simulator.Config{Target: "http://lb/", Mode: "sticky"}).WithDefaults(); d.Affinity != "cookie" || d.Target != "http://lb" {
		t.Errorf("sticky defaults: affinity %q, target %q", d.Affinity, d.Target)
	}
	for _, tc := range []struct {
		name string
		cfg  simulator.Config
		want string
	}{
		{"no target", simulator.Config{}, "target is missing"},
		{"not a URL", simulator.Config{Target: "lb:80"}, "not an http:// or https:// URL"},
		{"a path", simulator.Config{Target: "http://lb/api"}, "base URL only"},
		{"too many clients", simulator.Config{Target: "http://lb", Clients: 201}, "from 1 to 200, not 201"},
		{"negative clients", simulator.Config{Target: "http://lb", Clients: -1}, "from 1 to 200, not -1"},
		{"mode", simulator.Config{Target: "http://lb", Mode: "cassandra"}, `no session mode "cassandra"`},
		{"affinity", simulator.Config{Target: "http://lb", Mode: "sticky", Affinity: "dns"}, `no affinity technique "dns"`},
		{"profile", simulator.Config{Target: "http://lb", Sessions: "endless"}, `no session profile "endless"`},
		{"too long", simulator.Config{Target: "http://lb", Duration: 3 * time.Minute}, "at most 2m0s, not 3m0s"},
		{"too many requests", simulator.Config{Target: "http://lb", MaxRequests: 50001}, "from 1 to 50000, not 50001"},
		{"naive jwt", simulator.Config{Target: "http://lb", Mode: "jwt", Naive: true}, "only in redis mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error saying %q", err, tc.want)
			}
			if !strings.HasSuffix(err.Error(), ".") || strings.ToUpper(err.Error()[:1]) != err.Error()[:1] {
				t.Errorf("%q is not a sentence", err)
			}
			if _, err := simulator.Run(context.Background(), tc.cfg, nil); err == nil {
				t.Error("Run accepted the config")
			}
		})
	}
	// Two problems are both told.
	err := simulator.Config{Target: "http://lb", Clients: 500, Mode: "x"}.Validate()
	if err == nil || !strings.Contains(err.Error(), "clients") || !strings.Contains(err.Error(), "mode") {
		t.Errorf("two problems: %v", err)
	}
}

// sumRequests checks that the per-replica requests add up to the total
// (every answer of the fake replicas names its replica).
func sumRequests(t *testing.T, res simulator.Result) {
	t.Helper()
	sum, sessions := 0, 0
	for _, rl := range res.PerReplica {
		sum += rl.Requests
		sessions += rl.Sessions
	}
	if sum != res.Requests {
		t.Errorf("per-replica requests add up to %d, total %d: %+v", sum, res.Requests, res.PerReplica)
	}
	if sessions < res.Carts.Checked {
		t.Errorf("%d sessions began, but %d carts were checked", sessions, res.Carts.Checked)
	}
}

func TestRunRespectsMaxRequests(t *testing.T) {
	_, srv := newFakeLB(t, true)
	for _, profile := range []string{simulator.ProfileShort, simulator.ProfileMixed, simulator.ProfileLong} {
		t.Run(profile, func(t *testing.T) {
			res, err := simulator.Run(context.Background(), simulator.Config{Target: srv.URL, Clients: 20, Mode: "jwt", Sessions: profile, MaxRequests: 150, Duration: 20 * time.Second}, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d requests in %s, %+v, carts %+v, ratio %.2f", profile, res.Requests, res.Elapsed.Round(time.Millisecond), res.PerReplica, res.Carts, res.RequestsMaxMean)
			if res.Requests > 150 || res.Requests < 100 {
				t.Errorf("%d requests, want at most the budget of 150 (and most of it used)", res.Requests)
			}
			if res.Elapsed > 10*time.Second {
				t.Errorf("the run took %s although its budget was spent long before", res.Elapsed)
			}
			if res.Errors != 0 {
				t.Errorf("%d errors: %v", res.Errors, res.ErrorSamples)
			}
			sumRequests(t, res)
			if res.Carts.Checked == 0 || res.Carts.Kept != res.Carts.Checked || res.LostAdds != 0 {
				t.Errorf("carts %+v, %d lost adds: jwt keeps every cart when one request runs at a time", res.Carts, res.LostAdds)
			}
			if profile == simulator.ProfileLong && res.Carts.Checked != 20 {
				t.Errorf("long profile: %d carts checked, want one per client (20)", res.Carts.Checked)
			}
			if res.RequestsMaxMean < 1 || res.RequestsMaxMean > 1.3 {
				t.Errorf("round robin spread with ratio %.2f, want about 1", res.RequestsMaxMean)
			}
		})
	}
}

func TestRunRespectsDuration(t *testing.T) {
	_, srv := newFakeLB(t, true)
	var (
		calls    []simulator.Progress
		mu       sync.Mutex
		inflight atomic.Int32
	)
	progress := func(p simulator.Progress) {
		if inflight.Add(1) > 1 {
			t.Error("progress called concurrently")
		}
		defer inflight.Add(-1)
		mu.Lock()
		calls = append(calls, p)
		mu.Unlock()
	}
	// Sessions stop adding d/10 before the end, so that their final check
	// fits: 300 ms here. With 1.5 s (150 ms), two of the 30 final checks
	// were cut off by the end of the run once in CI, while the e2e
	// package loaded the two cores.
	const d = 3 * time.Second
	start := time.Now()
	res, err := simulator.Run(context.Background(), simulator.Config{Target: srv.URL, Clients: 30, Mode: "sticky", Sessions: simulator.ProfileLong, MaxRequests: 50000, Duration: d, Replicas: []string{"app1", "app2", "app3", "app4"}}, progress)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("%d requests in %s; %+v; requests max/mean %.2f, sessions max/mean %.2f; carts %+v", res.Requests, took.Round(time.Millisecond), res.PerReplica, res.RequestsMaxMean, res.SessionsMaxMean, res.Carts)
	if took > d+500*time.Millisecond {
		t.Errorf("the run took %s, want at most its duration %s (and a little)", took, d)
	}
	if res.Requests == 0 || res.Errors != 0 {
		t.Errorf("%d requests, %d errors %v", res.Requests, res.Errors, res.ErrorSamples)
	}
	sumRequests(t, res)
	// app4 never answered, yet counts: the ratios are over four replicas.
	if len(res.PerReplica) != 4 || res.PerReplica[3].Replica != "app4" || res.PerReplica[3].Requests != 0 {
		t.Errorf("per replica %+v, want app1..app4 with app4 at zero", res.PerReplica)
	}
	if res.RequestsMaxMean < 4.0/3 {
		t.Errorf("requests max/mean %.2f over four replicas of which one is idle, want at least 4/3", res.RequestsMaxMean)
	}
	// Sticky, long sessions: one session per client, all live at the end,
	// every cart kept.
	live, began := 0, 0
	for _, rl := range res.PerReplica {
		live += rl.LiveSessions
		began += rl.Sessions
	}
	if began != 30 || live != 30 || res.Carts.Checked != 30 || res.Carts.Kept != 30 {
		t.Errorf("long sticky sessions: %d began, %d live, carts %+v; want 30, 30, all kept", began, live, res.Carts)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := len(calls); n == 0 || n > int(d/simulator.ProgressEvery)+2 {
		t.Errorf("progress called %d times in %s, want at most %d", n, d, int(d/simulator.ProgressEvery)+2)
	}
	last := calls[len(calls)-1]
	if !last.Done || last.Requests != res.Requests {
		t.Errorf("last progress %+v, want Done with %d requests", last, res.Requests)
	}
	for _, p := range calls[:len(calls)-1] {
		if p.Done {
			t.Error("a progress report before the last says Done")
		}
	}
}

func TestRunStopsWithContext(t *testing.T) {
	_, srv := newFakeLB(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := simulator.Run(ctx, simulator.Config{Target: srv.URL, Clients: 5, Mode: "jwt", Sessions: simulator.ProfileLong, Duration: time.Minute}, nil); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Run went on for %s after its context ended at 300ms", took)
	}
}

func TestCartsLostWithoutAffinity(t *testing.T) {
	_, srv := newFakeLB(t, false) // sticky mode, but the balancer pins nobody
	res, err := simulator.Run(context.Background(), simulator.Config{Target: srv.URL, Clients: 10, Mode: "sticky", Sessions: simulator.ProfileShort, MaxRequests: 200, Duration: 20 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("carts %+v, %d adds lost, sessions %+v", res.Carts, res.LostAdds, res.PerReplica)
	if res.Carts.Checked == 0 || res.Carts.Kept+res.Carts.Lost != res.Carts.Checked {
		t.Errorf("carts %+v: kept and lost must add up to checked", res.Carts)
	}
	if res.Carts.Lost == 0 || res.LostAdds < res.Carts.Lost {
		t.Errorf("carts %+v with %d lost adds: round robin over memory stores must lose carts", res.Carts, res.LostAdds)
	}
}

func TestForwardedFor(t *testing.T) {
	for _, one := range []bool{true, false} {
		t.Run(fmt.Sprintf("one address %v", one), func(t *testing.T) {
			lb, srv := newFakeLB(t, true)
			res, err := simulator.Run(context.Background(), simulator.Config{Target: srv.URL, Clients: 12, Mode: "sticky", Affinity: "ip", OneAddress: one, Sessions: simulator.ProfileLong, MaxRequests: 240, Duration: 20 * time.Second}, nil)
			if err != nil {
				t.Fatal(err)
			}
			seen := lb.forwardedValues()
			t.Logf("X-Forwarded-For values %v; per replica %+v", seen, res.PerReplica)
			if one {
				if len(seen) != 1 {
					t.Errorf("one address: %d X-Forwarded-For values, want 1", len(seen))
				}
				if len(res.PerReplica) != 1 || res.SessionsMaxMean != 1 {
					t.Errorf("one address: served by %+v, want one replica", res.PerReplica)
				}
				return
			}
			prefixes := map[string]bool{}
			for v := range seen {
				parts := strings.Split(v, ".")
				if len(parts) != 4 {
					t.Fatalf("X-Forwarded-For %q is not an IPv4 address", v)
				}
				prefixes[strings.Join(parts[:3], ".")] = true
			}
			if len(seen) != 12 || len(prefixes) != 12 {
				t.Errorf("%d X-Forwarded-For values with %d distinct first three octets, want 12 and 12", len(seen), len(prefixes))
			}
			if res.Carts.Kept != res.Carts.Checked || res.Carts.Checked != 12 {
				t.Errorf("carts %+v: ip affinity keeps every long session on its replica", res.Carts)
			}
		})
	}
	// Without ip affinity, no X-Forwarded-For at all.
	lb, srv := newFakeLB(t, true)
	if _, err := simulator.Run(context.Background(), simulator.Config{Target: srv.URL, Clients: 3, Mode: "jwt", MaxRequests: 20}, nil); err != nil {
		t.Fatal(err)
	}
	if seen := lb.forwardedValues(); len(seen) != 1 || seen[""] == 0 {
		t.Errorf("jwt mode sent X-Forwarded-For values %v", seen)
	}
}

// TestURLAffinityCarriesSID: without cookies, the sid of the first answer
// travels in the query of every later request of the session.
func TestURLAffinityCarriesSID(t *testing.T) {
	var (
		mu      sync.Mutex
		next    int
		queries []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sid := r.URL.Query().Get("sid")
		if len(r.Cookies()) > 0 {
			t.Errorf("url affinity sent cookies %v", r.Cookies())
		}
		if sid == "" {
			next++
			sid = fmt.Sprintf("S%d", next)
		}
		queries = append(queries, r.Method+" "+r.URL.RawQuery)
		mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "sticky_sid", Value: sid}) // ignored without a jar
		w.Header().Set("X-Replica", "app1")
		fmt.Fprintf(w, `{"sid":%q,"items":[]}`, sid)
	}))
	defer srv.Close()
	res, err := simulator.Run(context.Background(), simulator.Config{Target: srv.URL, Clients: 1, Mode: "sticky", Affinity: "url", Sessions: simulator.ProfileShort, MaxRequests: 6, Duration: 10 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("requests: %v", queries)
	if len(queries) < 3 || res.Errors != 0 {
		t.Fatalf("%d requests, errors %v", len(queries), res.ErrorSamples)
	}
	if strings.Contains(queries[0], "sid=") {
		t.Errorf("the first request of a session carried a sid: %s", queries[0])
	}
	if !strings.Contains(queries[0], "mode=sticky") || !strings.Contains(queries[0], "affinity=url") {
		t.Errorf("the first request lacks mode or affinity: %s", queries[0])
	}
	if !strings.Contains(queries[1], "sid=S1") {
		t.Errorf("the second request did not carry the first answer's sid: %s", queries[1])
	}
}

// TestURLAffinityWithoutSID: replicas that do not yet answer with a sid
// are reported once per session, and the run goes on.
func TestURLAffinityWithoutSID(t *testing.T) {
	_, srv := newFakeLB(t, true)
	res, err := simulator.Run(context.Background(), simulator.Config{Target: srv.URL, Clients: 2, Mode: "sticky", Affinity: "url", MaxRequests: 40, Duration: 10 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d requests, %d errors, samples %v, carts %+v", res.Requests, res.Errors, res.ErrorSamples, res.Carts)
	if res.Errors == 0 || len(res.ErrorSamples) == 0 || !strings.Contains(res.ErrorSamples[0], `no "sid" field`) {
		t.Errorf("errors %d, samples %v; want the missing sid reported", res.Errors, res.ErrorSamples)
	}
	if res.Requests < 30 {
		t.Errorf("only %d requests: a missing sid must not stop the run", res.Requests)
	}
}

func TestErrorsAreCountedNotFatal(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Replica", "app1")
		if n.Add(1)%2 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":"The session store is unavailable."}`)
			return
		}
		io.WriteString(w, `{"items":[]}`)
	}))
	defer srv.Close()
	res, err := simulator.Run(context.Background(), simulator.Config{Target: srv.URL, Clients: 4, Mode: "redis", MaxRequests: 100, Duration: 10 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests < 90 || res.Errors < res.Requests/3 {
		t.Errorf("%d requests, %d errors; want every other one failed and the run to go on", res.Requests, res.Errors)
	}
	// Samples are different errors: here one per method.
	if len(res.ErrorSamples) != 2 || !strings.Contains(res.ErrorSamples[0], ": 503 from app1: {\"error\":\"The session store is unavailable.\"}") {
		t.Errorf("samples %q, want the two different errors", res.ErrorSamples)
	}
}

// TestSlowestRequest: the result names the longest a request took; here
// one answer in twenty takes 150 ms and the others none.
func TestSlowestRequest(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Replica", "app1")
		if n.Add(1)%20 == 0 {
			time.Sleep(150 * time.Millisecond)
		}
		io.WriteString(w, `{"items":[]}`)
	}))
	defer srv.Close()
	res, err := simulator.Run(context.Background(), simulator.Config{Target: srv.URL, Clients: 2, Mode: "redis", MaxRequests: 60, Duration: 10 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Slowest < 150*time.Millisecond || res.Slowest > 2*time.Second {
		t.Errorf("slowest request %s over %d requests, want the 150 ms one", res.Slowest, res.Requests)
	}
}

func TestConcurrentAdds(t *testing.T) {
	_, srv := newFakeLB(t, true)
	for _, mode := range []session.Mode{session.Sticky, session.JWT} {
		res, err := simulator.ConcurrentAdds(context.Background(), srv.URL, mode, 20, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %+v, lost %d", mode, res, res.Lost())
		if res.Sent != 20 || res.Acknowledged != 20 {
			t.Errorf("%s: %+v, want 20 sent and acknowledged", mode, res)
		}
		switch mode {
		case "sticky":
			if res.InCart != 21 || len(res.Replicas) != 1 || res.Lost() != 0 {
				t.Errorf("sticky: %+v, want all 21 in the cart, on one replica", res)
			}
		case "jwt":
			if res.InCart < 2 || res.InCart > 21 {
				t.Errorf("jwt: %d in the cart, want the first add and at least one concurrent one", res.InCart)
			}
		}
	}
	if _, err := simulator.ConcurrentAdds(context.Background(), srv.URL, "jwt", 0, false, nil); err == nil {
		t.Error("0 adds accepted")
	}
	if _, err := simulator.ConcurrentAdds(context.Background(), srv.URL, "jwt", 5, true, nil); err == nil {
		t.Error("naive jwt accepted")
	}
}
