package e2e

import (
	"context"
	"testing"
	"time"
)

// TestSessionTimeouts runs a stack of its own with short timeouts (idle 3 s,
// absolute 7 s, JWT leeway 1 s) and checks, in every mode, that an idle
// session ends and that an active one ends at the absolute limit. The
// waits are the timeouts under test, not stand-ins for readiness.
func TestSessionTimeouts(t *testing.T) {
	needStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	up, down, err := upStack(ctx, map[string]string{
		"SESSION_IDLE_TIMEOUT":     "3s",
		"SESSION_ABSOLUTE_TIMEOUT": "7s",
		"JWT_LEEWAY":               "1s",
	})
	t.Cleanup(down)
	if err != nil {
		t.Fatal(err)
	}
	// Memory and JWT know the session expired; Redis and Memcached only
	// that its key is gone (the TTL ran out), which the page explains.
	ended := func(c cartBody) bool { return c.Count == 0 && (c.Event == "expired" || c.Event == "lost") }
	for _, mode := range modes {
		t.Run(mode+"/idle", func(t *testing.T) {
			t.Parallel()
			s := newShopper(t, mode)
			s.base = up.urls[0]
			if status, c := s.do("POST", "/api/cart/items", `{"product_id":"p3"}`); status != 200 || c.Count != 1 {
				t.Fatalf("add: %d %s", status, describeCart(c))
			}
			time.Sleep(4500 * time.Millisecond) // idle 3 s, plus the JWT leeway and exp's whole seconds
			status, c := s.do("GET", "/api/cart", "")
			if status != 200 || !ended(c) || mode != "redis" && mode != "memcached" && c.Event != "expired" {
				t.Errorf("after 4.5 s idle: %d, event %q, cart %s; want an ended session", status, c.Event, describeCart(c))
			}
			t.Logf("%s: after 4.5 s idle the session is %s", mode, c.Event)
		})
		t.Run(mode+"/absolute", func(t *testing.T) {
			t.Parallel()
			s := newShopper(t, mode)
			s.base = up.urls[0]
			start := time.Now()
			if status, c := s.do("POST", "/api/cart/items", `{"product_id":"p3"}`); status != 200 || c.Count != 1 {
				t.Fatalf("add: %d %s", status, describeCart(c))
			}
			var events []string
			for i := 1; i <= 6; i++ {
				time.Sleep(time.Until(start.Add(time.Duration(i) * 1500 * time.Millisecond)))
				_, c := s.do("GET", "/api/cart", "")
				events = append(events, c.Event)
				at := time.Since(start)
				switch {
				case at < 6500*time.Millisecond && (c.Event != "found" || c.Count != 1):
					t.Errorf("at %.1f s, active every 1.5 s: event %q, cart %s; want the session kept", at.Seconds(), c.Event, describeCart(c))
				case at >= 7500*time.Millisecond && mode != "jwt" && !ended(c):
					t.Errorf("at %.1f s, past the absolute 7 s: event %q, cart %s; want it ended", at.Seconds(), c.Event, describeCart(c))
				case at >= 8500*time.Millisecond && !ended(c):
					// A token's exp is capped at the absolute end; the 1 s
					// leeway may accept it up to a second later.
					t.Errorf("at %.1f s, past the absolute 7 s and the leeway: event %q, cart %s; want it ended", at.Seconds(), c.Event, describeCart(c))
				}
			}
			t.Logf("%s: requests every 1.5 s saw %v (absolute timeout 7 s)", mode, events)
		})
	}
}
