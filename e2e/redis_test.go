package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestRedisRestart: carts in redis mode survive a Redis restart (append-only
// file on a named volume); sticky and jwt do not notice.
func TestRedisRestart(t *testing.T) {
	needStack(t)
	t.Cleanup(func() { waitStackHealthy(t) })
	shoppers, before := shopperPerMode(t)
	// AOF is fsynced once a second: let the last write reach the disk, as
	// a graceful restart also does (Redis rewrites on SIGTERM).
	stopContainer(t, "redis", 10*time.Second)
	startContainer(t, "redis")
	took := waitFor(t, 60*time.Second, "redis mode to answer again", func() bool {
		status, _ := shoppers["redis"].try("GET", "/api/cart", "", "")
		return status == 200
	})
	for mode, s := range shoppers {
		status, after := s.do("GET", "/api/cart", "")
		if status != 200 || !sameCart(before[mode], after) {
			t.Errorf("%s after a Redis restart: %d %s, before %s", mode, status, describeCart(after), describeCart(before[mode]))
		}
		t.Logf("%s: cart %s before the Redis restart, %s after", mode, describeCart(before[mode]), describeCart(after))
	}
	t.Logf("redis mode answered again %.1fs after Redis started", took.Seconds())
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

// TestRedisOutage: with Redis down, redis mode answers a clear 503 (page
// and JSON), writes nothing, and recovers by itself; sticky and jwt keep
// working.
func TestRedisOutage(t *testing.T) {
	needStack(t)
	t.Cleanup(func() { waitStackHealthy(t) })
	shoppers, before := shopperPerMode(t)
	stopContainer(t, "redis", 10*time.Second)
	down := time.Now()

	rs := shoppers["redis"]
	if status, c := rs.do("GET", "/api/cart", ""); status != 503 || !strings.Contains(c.Error, "Redis") {
		t.Errorf("redis-mode read with Redis down: %d %q, want 503 naming Redis", status, c.Error)
	}
	if status, c := rs.do("POST", "/api/cart/items", `{"product_id":"p1"}`); status != 503 {
		t.Errorf("redis-mode add with Redis down: %d %q, want 503", status, c.Error)
	}
	page := rs.page("/cart")
	if !strings.Contains(page, `data-testid="error-title"`) || !strings.Contains(page, "Session store unavailable") {
		t.Errorf("redis-mode cart page with Redis down is not the 503 page")
	}
	// A signed-in jwt browser keeps working; the revocation check, which
	// needs Redis, is reported as degraded.
	if status, c := shoppers["jwt"].do("GET", "/api/cart", ""); status != 200 || c.Degraded != "" {
		t.Errorf("anonymous jwt cart with Redis down: %d, degraded %q; anonymous tokens need no revocation check", status, c.Degraded)
	}
	signedIn := newShopper(t, "jwt")
	if status, _ := signedIn.try("POST", "/api/login", `{"user":"dora"}`, ""); status != 200 {
		t.Errorf("jwt sign-in with Redis down: %d", status)
	}
	if status, c := signedIn.do("GET", "/api/cart", ""); status != 200 || !strings.Contains(c.Degraded, "revocation") {
		t.Errorf("signed-in jwt cart with Redis down: %d, degraded %q; want 200 and revocation named as degraded", status, c.Degraded)
	}
	if page := signedIn.page("/"); !strings.Contains(page, "Running degraded") {
		t.Error("the shop page of a signed-in jwt browser does not say it runs degraded")
	}
	for _, mode := range []string{"sticky", "jwt"} {
		status, c := shoppers[mode].do("GET", "/api/cart", "")
		if status != 200 || !sameCart(before[mode], c) {
			t.Errorf("%s with Redis down: %d %s, want the cart %s", mode, status, describeCart(c), describeCart(before[mode]))
		}
		if status, _ := shoppers[mode].do("POST", "/api/cart/items", `{"product_id":"p10"}`); status != 200 {
			t.Errorf("%s add with Redis down: %d", mode, status)
		}
	}
	t.Logf("Redis down: redis mode 503 within %.1fs; sticky and jwt served", time.Since(down).Seconds())

	startContainer(t, "redis")
	took := waitFor(t, 60*time.Second, "redis mode to recover by itself", func() bool {
		status, _ := rs.try("GET", "/api/cart", "", "")
		return status == 200
	})
	status, after := rs.do("GET", "/api/cart", "")
	if status != 200 || !sameCart(before["redis"], after) {
		t.Errorf("redis cart after the outage: %d %s, before %s (the add during the outage must not be there)", status, describeCart(after), describeCart(before["redis"]))
	}
	t.Logf("redis mode recovered %.1fs after Redis started; cart %s before, %s after", took.Seconds(), describeCart(before["redis"]), describeCart(after))
}
