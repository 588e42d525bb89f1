package e2e

import (
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
