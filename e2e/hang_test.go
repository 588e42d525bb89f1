package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestReplicaHang: a replica hung from the admin API holds requests until
// nginx's read timeout; nginx tries another replica, so every client gets
// its answer, and the request log shows both attempts under one request
// id: 499 on the hung one, 200 elsewhere.
func TestReplicaHang(t *testing.T) {
	needStack(t)
	t.Cleanup(func() { waitStackHealthy(t) })
	hung := replicas(t)[1]
	// The replica nginx hands the control to finds the others through
	// Docker's DNS, every 2 s: after a test that moved a replica to a new
	// address (a network disconnect), it may not list hung yet, and
	// answers 404 (no such replica) until it does.
	status := 0
	waitFor(t, 10*time.Second, "a replica to take the hang of "+hung, func() bool {
		status = adminDo(t, "POST", "/api/admin/replicas/"+hung+"/hang", `{"seconds":8}`, true, nil)
		return status != 404
	})
	if status != 202 {
		t.Fatalf("hang %s = %d, want 202", hung, status)
	}
	hungAt := time.Now()
	// Round robin sends one in three of these to the hung replica first.
	ids := map[string]string{}
	for range 6 {
		req, _ := http.NewRequest("GET", stack.lbURL+"/api/products?mode=redis", nil)
		start := time.Now()
		resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("GET while %s hangs: %v", hung, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET while %s hangs = %d, want 200 from another replica", hung, resp.StatusCode)
		}
		ids[resp.Header.Get("X-Request-Id")] = fmt.Sprintf("%s in %.1fs", resp.Header.Get("X-Replica"), time.Since(start).Seconds())
		if time.Since(hungAt) > 7*time.Second {
			break
		}
	}
	t.Logf("requests while %s hung: %v", hung, ids)
	var retried []string
	waitFor(t, 15*time.Second, "a request logged on "+hung+" (499) and on another replica (200)", func() bool {
		byID := map[string][]logEntry{}
		for _, e := range requestLog(t, 300) {
			if _, ok := ids[e.RequestID]; ok {
				byID[e.RequestID] = append(byID[e.RequestID], e)
			}
		}
		retried = nil
		for id, es := range byID {
			if len(es) == 2 && (es[0].Replica == hung) != (es[1].Replica == hung) {
				for _, e := range es {
					if e.Replica == hung && e.Status == 499 {
						retried = append(retried, fmt.Sprintf("%s: %s %d after %.0f ms, %s %d after %.0f ms", id[:8], es[0].Replica, es[0].Status, es[0].DurationMS, es[1].Replica, es[1].Status, es[1].DurationMS))
					}
				}
			}
		}
		return len(retried) > 0
	})
	t.Logf("logged twice: %v", retried)
}
