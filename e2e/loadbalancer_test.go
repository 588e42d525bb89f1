package e2e

import (
	"context"
	"testing"
	"time"
)

// TestSecondLoadBalancer: kill lb; lb2 serves every mode, and a sticky
// browser that moves to lb2 stays on its replica with its cart.
func TestSecondLoadBalancer(t *testing.T) {
	needStack(t)
	t.Cleanup(func() { startLB(t) })
	shoppers, before := shopperPerMode(t)
	pinned := shoppers["sticky"].lastReplica()
	killContainer(t, "lb")
	if _, _, err := probe(stack.lbURL, "GET", "/api/products", nil); err == nil {
		t.Error("lb still answers after it was killed")
	}
	for mode, s := range shoppers {
		s.base = stack.lb2URL
		for i := 0; i < 4; i++ {
			status, c := s.do("GET", "/api/cart", "")
			if status != 200 || !sameCart(before[mode], c) {
				t.Errorf("%s through lb2: %d %s, want %s", mode, status, describeCart(c), describeCart(before[mode]))
			}
		}
	}
	s := shoppers["sticky"]
	for _, r := range s.replicas[len(s.replicas)-4:] {
		if r != pinned {
			t.Errorf("sticky browser pinned to %s was served by %s through lb2", pinned, r)
		}
	}
	t.Logf("lb killed; through lb2 the sticky browser stayed on %s (%v) with its cart %s", pinned, s.replicas[len(s.replicas)-4:], describeCart(before["sticky"]))
}

// startLB starts the killed lb again and waits until it serves. A
// restarted container gets a new random host port: stack.lbURL follows.
func startLB(t *testing.T) {
	t.Helper()
	startContainer(t, "lb")
	endpoint, err := service(t, "lb").PortEndpoint(context.Background(), "80/tcp", "http")
	if err != nil {
		t.Fatal(err)
	}
	stack.lbURL = endpoint
	waitFor(t, 30*time.Second, "lb to serve again", func() bool {
		status, _, err := probe(stack.lbURL, "GET", "/healthz", nil)
		return err == nil && status == 200
	})
}
