package e2e

import (
	"strings"
	"testing"
	"time"
)

// memcachedServers are memcached mode's servers (compose services).
var memcachedServers = []string{"memcached1", "memcached2"}

// memcachedStatus is the admin status's view of the Memcached servers.
type memcachedStatus struct {
	Memcached []struct {
		Name      string `json:"name"`
		State     string `json:"state"`
		Items     int64  `json:"items"`
		Evictions int64  `json:"evictions"`
		Uptime    int64  `json:"uptime_s"`
	} `json:"memcached"`
}

// waitMemcachedUp waits until the admin status shows both servers up.
func waitMemcachedUp(t *testing.T) {
	t.Helper()
	waitFor(t, 30*time.Second, "both Memcached servers to answer", func() bool {
		var st memcachedStatus
		adminDo(t, "GET", "/api/admin/status", "", false, &st)
		up := 0
		for _, m := range st.Memcached {
			if m.State == "up" {
				up++
			}
		}
		return up == len(memcachedServers)
	})
}

// memcachedShoppers returns n shoppers in memcached mode, each with a
// filled cart.
func memcachedShoppers(t *testing.T, n int) []*shopper {
	t.Helper()
	var out []*shopper
	for range n {
		s := newShopper(t, "memcached")
		fillCart(t, s)
		out = append(out, s)
	}
	return out
}

// TestMemcachedRestartLosesItsShare: 16 browsers in memcached mode, then
// one of the two servers restarts (`docker stop`, `docker start`). The
// sessions it held are gone, the others are whole, nobody gets an error,
// and the page of a lost one says Memcached forgot it and which server.
func TestMemcachedRestartLosesItsShare(t *testing.T) {
	needStack(t)
	waitMemcachedUp(t)
	shoppers := memcachedShoppers(t, 16)
	stopContainer(t, "memcached1", 5*time.Second)
	startContainer(t, "memcached1")
	waitMemcachedUp(t)
	kept, lost := 0, 0
	var lostOne *shopper
	for i, s := range shoppers {
		status, c := s.do("GET", "/api/cart", "")
		switch {
		case status != 200:
			t.Errorf("shopper %d after memcached1 restarted: %d %q, want 200", i, status, c.Error)
		case c.Count == 6 && c.Event == "found":
			kept++
		case c.Count == 0 && c.Event == "lost":
			lost++
			lostOne = s
		default:
			t.Errorf("shopper %d after the restart: event %q, cart %s; want the whole cart or a lost session", i, c.Event, describeCart(c))
		}
	}
	t.Logf("memcached1 restarted: %d of 16 sessions lost, %d kept", lost, kept)
	// Each key hashes to one of two servers: all 16 on one server happens
	// once in 30,000 runs.
	if lost == 0 || kept == 0 {
		t.Errorf("%d lost, %d kept: want the restarted server's share lost and the other's kept", lost, kept)
	}
	// A read does not replace the lost session, so its page still finds
	// it lost, and says what happened and where.
	if lostOne != nil {
		page := lostOne.page("/cart")
		for _, want := range []string{"Memcached no longer holds your session", "not on memcached1 any more", "a server that restarts loses everything it held"} {
			if !strings.Contains(page, want) {
				t.Errorf("the cart page of a session lost to the restart does not say %q", want)
			}
		}
	}
}

// TestMemcachedServerStopped: with memcached2 stopped, the sessions on
// memcached1 work, those on memcached2 get a 503 that names it (never a
// 500, never a silently empty cart), and new browsers start sessions.
func TestMemcachedServerStopped(t *testing.T) {
	needStack(t)
	waitMemcachedUp(t)
	shoppers := memcachedShoppers(t, 12)
	stopContainer(t, "memcached2", 5*time.Second)
	t.Cleanup(func() {
		startContainer(t, "memcached2")
		waitMemcachedUp(t)
	})
	kept, refused := 0, 0
	for i, s := range shoppers {
		status, c := s.do("GET", "/api/cart", "")
		switch {
		case status == 200 && c.Count == 6:
			kept++
		case status == 503 && strings.Contains(c.Error, "memcached2"):
			refused++
		default:
			t.Errorf("shopper %d with memcached2 stopped: %d %q %s; want the cart or a 503 naming memcached2", i, status, c.Error, describeCart(c))
		}
	}
	t.Logf("memcached2 stopped: %d of 12 carts served, %d refused with a 503 naming it", kept, refused)
	if kept == 0 || refused == 0 {
		t.Errorf("%d kept, %d refused: want memcached1's share served and memcached2's refused", kept, refused)
	}
	started, failed := 0, 0
	for range 8 {
		s := newShopper(t, "memcached")
		switch status, c := s.do("POST", "/api/cart/items", `{"product_id":"p1"}`); status {
		case 200:
			started++
		case 503:
			failed++
		default:
			t.Errorf("a new browser's add with memcached2 stopped: %d %q", status, c.Error)
		}
	}
	t.Logf("8 new browsers: %d started a session, %d got a 503", started, failed)
	if started != 8 {
		t.Errorf("%d of 8 new browsers started a session: new sessions should go to the live server", started)
	}
}

// TestMemcachedEvictionFromTheAdminPage: the admin's fill control writes
// filler items until the servers evict; both stay up, and a session not
// used meanwhile is gone, with the page saying why.
func TestMemcachedEvictionFromTheAdminPage(t *testing.T) {
	needStack(t)
	waitMemcachedUp(t)
	shoppers := memcachedShoppers(t, 4)
	var before memcachedStatus
	adminDo(t, "GET", "/api/admin/status", "", false, &before)
	var ans struct {
		Message string `json:"message"`
	}
	start := time.Now()
	if status := adminDo(t, "POST", "/api/admin/memcached/fill", "", true, &ans); status != 202 || !strings.Contains(ans.Message, "Evictions") {
		t.Fatalf("fill = %d %q", status, ans.Message)
	}
	t.Logf("fill took %.1f s: %s", time.Since(start).Seconds(), ans.Message)
	var after memcachedStatus
	adminDo(t, "GET", "/api/admin/status", "", false, &after)
	for i, m := range after.Memcached {
		if m.State != "up" || m.Evictions <= before.Memcached[i].Evictions || m.Uptime < before.Memcached[i].Uptime {
			t.Errorf("%s after the fill: %+v (before %+v); want up, not restarted, and evicting", m.Name, m, before.Memcached[i])
		}
	}
	for i, s := range shoppers {
		page := s.page("/cart")
		if !strings.Contains(page, "Memcached no longer holds your session") || !strings.Contains(page, "evicts the least recently used") {
			t.Errorf("shopper %d's cart page after the fill does not explain the eviction", i)
		}
		if _, c := s.do("GET", "/api/cart", ""); c.Count != 0 {
			t.Errorf("shopper %d's cart survived the fill: %s", i, describeCart(c))
		}
	}
}
