package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestAdminRequestLog: requests with known X-Request-Ids show up in the
// request log within seconds, each with the replica that served it, the
// load balancer it came through, its mode and status.
func TestAdminRequestLog(t *testing.T) {
	needStack(t)
	type sent struct{ id, replica, mode, path string }
	var want []sent
	for i := range 12 {
		mode := []string{"sticky", "redis", "jwt"}[i%3]
		path := "/api/cart?mode=" + mode
		req, _ := http.NewRequest("GET", stack.lbURL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		id := resp.Header.Get("X-Request-Id")
		if resp.StatusCode != 200 || id == "" {
			t.Fatalf("GET %s = %d with X-Request-Id %q", path, resp.StatusCode, id)
		}
		want = append(want, sent{id, resp.Header.Get("X-Replica"), mode, "/api/cart"})
	}
	var got map[string]logEntry
	took := waitFor(t, 10*time.Second, "the 12 requests to appear in the admin log", func() bool {
		got = map[string]logEntry{}
		for _, e := range requestLog(t, 200) {
			got[e.RequestID] = e
		}
		for _, w := range want {
			if _, ok := got[w.id]; !ok {
				return false
			}
		}
		return true
	})
	for _, w := range want {
		e := got[w.id]
		if e.Replica != w.replica || e.Mode != w.mode || e.Path != w.path || e.Status != 200 || e.LoadBalancer != "lb" || e.Method != "GET" {
			t.Errorf("log entry %+v, want %s on %s in %s mode through lb, 200", e, w.id, w.replica, w.mode)
		}
	}
	t.Logf("all 12 requests were in GET /api/admin/requests within %.0f ms of the last answer (polled every 100 ms)", float64(took.Milliseconds()))

	// Newest first.
	entries := requestLog(t, 50)
	for i := 1; i < len(entries); i++ {
		if entries[i].Time.After(entries[i-1].Time) {
			t.Fatalf("entry %d (%s) is newer than entry %d (%s)", i, entries[i].Time, i-1, entries[i-1].Time)
		}
	}
	// The replicas' own endpoints are not reachable through nginx.
	for _, path := range []string{"/internal/requests", "/internal/crash"} {
		status, _, err := probe(stack.lbURL, "POST", path, map[string]string{"X-Internal-Token": "guess"})
		if err != nil || status != 404 {
			t.Errorf("POST %s through nginx = %d, %v; want 404", path, status, err)
		}
	}
}

// TestAdminShowsACrashedReplica: the crash control (with the admin
// credentials) ends a replica's process; the admin status shows it down,
// then up again once its restart policy brought it back.
func TestAdminShowsACrashedReplica(t *testing.T) {
	needStack(t)
	t.Cleanup(func() { waitStackHealthy(t) })
	if status := adminDo(t, "POST", "/api/admin/replicas/app3/crash", "", false, nil); status != 401 {
		t.Fatalf("crash without credentials = %d, want 401", status)
	}
	if status := adminDo(t, "POST", "/api/admin/replicas/app3/crash", "", true, nil); status != 202 {
		t.Fatalf("crash app3 = %d, want 202", status)
	}
	down := waitFor(t, 10*time.Second, "the admin status to show app3 down", func() bool {
		s := replicaState(t, "app3")
		return s == "down"
	})
	up := waitFor(t, 60*time.Second, "the admin status to show app3 up again", func() bool {
		return replicaState(t, "app3") == "up"
	})
	t.Logf("app3 shown down %.1fs after the crash, up again %.1fs after that", down.Seconds(), up.Seconds())
	ins, err := service(t, "app3").Inspect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if ins.RestartCount < 1 {
		t.Errorf("app3 restart count %d: the crash should have been a process exit that Docker restarted", ins.RestartCount)
	}
}

// TestAdminHangShowsBothAttempts: a hung replica holds requests until
// nginx's read timeout; nginx tries another replica, and the log shows
// both attempts under one request id: 499 on the hung one, 200 elsewhere.
func TestAdminHangShowsBothAttempts(t *testing.T) {
	needStack(t)
	t.Cleanup(func() { waitStackHealthy(t) })
	if status := adminDo(t, "POST", "/api/admin/replicas/app2/hang", `{"seconds":8}`, true, nil); status != 202 {
		t.Fatalf("hang app2 = %d, want 202", status)
	}
	hungAt := time.Now()
	// Round robin sends one in three of these to app2 first.
	ids := map[string]string{}
	for range 6 {
		req, _ := http.NewRequest("GET", stack.lbURL+"/api/products?mode=redis", nil)
		start := time.Now()
		resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("GET while app2 hangs: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET while app2 hangs = %d, want 200 from another replica", resp.StatusCode)
		}
		ids[resp.Header.Get("X-Request-Id")] = fmt.Sprintf("%s in %.1fs", resp.Header.Get("X-Replica"), time.Since(start).Seconds())
		if time.Since(hungAt) > 7*time.Second {
			break
		}
	}
	t.Logf("requests while app2 hung: %v", ids)
	var retried []string
	waitFor(t, 15*time.Second, "a request logged on app2 (499) and on another replica (200)", func() bool {
		byID := map[string][]logEntry{}
		for _, e := range requestLog(t, 300) {
			if _, ok := ids[e.RequestID]; ok {
				byID[e.RequestID] = append(byID[e.RequestID], e)
			}
		}
		retried = nil
		for id, es := range byID {
			if len(es) == 2 && (es[0].Replica == "app2") != (es[1].Replica == "app2") {
				for _, e := range es {
					if e.Replica == "app2" && e.Status == 499 {
						retried = append(retried, fmt.Sprintf("%s: %s %d after %.0f ms, %s %d after %.0f ms", id[:8], es[0].Replica, es[0].Status, es[0].DurationMS, es[1].Replica, es[1].Status, es[1].DurationMS))
					}
				}
			}
		}
		return len(retried) > 0
	})
	t.Logf("logged twice: %v", retried)
}

// TestAdminRestartsRedis: the restart control makes Redis exit; its
// restart policy brings it back and redis mode keeps the cart.
func TestAdminRestartsRedis(t *testing.T) {
	needStack(t)
	t.Cleanup(func() { waitStackHealthy(t) })
	s := newShopper(t, "redis")
	before := fillCart(t, s)
	redis := service(t, "redis")
	ins, err := redis.Inspect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	restarts := ins.RestartCount
	if status := adminDo(t, "POST", "/api/admin/redis/restart", "", true, nil); status != 202 {
		t.Fatalf("restart Redis = %d, want 202", status)
	}
	waitFor(t, 20*time.Second, "Docker to restart Redis", func() bool {
		ins, err := redis.Inspect(t.Context())
		return err == nil && ins.RestartCount > restarts && ins.State.Running
	})
	waitFor(t, 30*time.Second, "redis mode to answer again", func() bool {
		status, _ := s.try("GET", "/api/cart", "", "")
		return status == 200
	})
	status, after := s.do("GET", "/api/cart", "")
	if status != 200 || !sameCart(before, after) {
		t.Errorf("after the admin's Redis restart: %d %s, before %s", status, describeCart(after), describeCart(before))
	}
}
