package web

import (
	"strings"
	"testing"

	"github.com/sessiondemo/shop/web/session"
)

// TestWriteStrategyHeader: X-Write-Strategy is safe or naive, anything
// else is a 400 with a sentence; redis-mode answers say which strategy was
// used, other modes (which have no naive write) say nothing.
func TestWriteStrategyHeader(t *testing.T) {
	srv := newTestServer(t)
	c := newClient(t, srv, session.JWT)
	for _, tc := range []struct {
		path, value string
		status      int
		reported    string
	}{
		// Redis is unreachable in this server, but a read without a
		// session cookie needs no Redis.
		{"/api/cart?mode=redis", "", 200, "safe"},
		{"/api/cart?mode=redis", "safe", 200, "safe"},
		{"/api/cart?mode=redis", "naive", 200, "naive"},
		{"/api/cart?mode=redis", "reckless", 400, ""},
		{"/api/cart?mode=jwt", "naive", 200, ""},
		{"/api/cart?mode=sticky", "Naive", 400, ""},
	} {
		var header []string
		if tc.value != "" {
			header = []string{"X-Write-Strategy", tc.value}
		}
		r := c.do("GET", tc.path, "", header...)
		if r.status != tc.status {
			t.Errorf("%s with %q: status %d, want %d: %s", tc.path, tc.value, r.status, tc.status, r.body)
		}
		if got := r.header.Get("X-Write-Strategy"); got != tc.reported {
			t.Errorf("%s with %q: X-Write-Strategy %q, want %q", tc.path, tc.value, got, tc.reported)
		}
		if tc.status == 400 && !strings.Contains(r.body, `header is \"safe\" or \"naive\"`) {
			t.Errorf("%s with %q: error body %s does not say what is allowed", tc.path, tc.value, r.body)
		}
	}
	// A naive add in jwt mode is an ordinary add.
	if r := c.do("POST", "/api/cart/items?mode=jwt", `{"product_id":"p1"}`, "X-Write-Strategy", "naive"); r.status != 200 {
		t.Errorf("naive add in jwt mode = %d %s", r.status, r.body)
	}
}
