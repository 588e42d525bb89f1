package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// loadCounts is what a load run saw.
type loadCounts struct {
	ok, errors5xx, transport, other int
}

func (c loadCounts) String() string {
	return fmt.Sprintf("%d ok, %d 5xx, %d transport errors, %d other", c.ok, c.errors5xx, c.transport, c.other)
}

// TestReplicaGracefulStop: while shoppers in redis, jwt and memcached mode
// read and add (with idempotency keys), the second replica gets SIGTERM. It stops taking new
// requests and finishes those in flight: no client sees an error. Then it
// is started again and serves within seconds.
func TestReplicaGracefulStop(t *testing.T) {
	needStack(t)
	t.Cleanup(func() { waitStackHealthy(t) })
	load := startShopLoad(t, []string{"redis", "jwt", "memcached", "jwt"}, 3600, 0) // at most 900 adds: 90 per line
	// However the test ends, the load ends with it, before the cleanup
	// looks at the stack.
	defer load.end()
	// A sticky browser pinned to the second replica, with a cart there.
	victim := replicas(t)[1]
	var pinned *shopper
	for i := 0; i < 30 && pinned == nil; i++ {
		s := newShopper(t, "sticky")
		s.do("GET", "/api/cart", "")
		if s.replicas[0] == victim {
			pinned = s
		}
	}
	if pinned == nil {
		t.Fatalf("no sticky browser was pinned to %s in 30 tries", victim)
	}
	fillCart(t, pinned)

	// An admin page's live stream from the victim, open through the stop:
	// the stream ends when the shutdown begins, so it does not hold the
	// stop for the shutdown timeout.
	stream := openEventStream(t, victim)
	defer stream.Close()

	// The fault comes while the load runs.
	waitFor(t, 30*time.Second, "the shoppers to be under way", func() bool { return load.answered.Load() >= 200 })
	stopped := time.Now()
	stopContainer(t, victim, 15*time.Second)
	took := time.Since(stopped)
	t.Logf("%s stopped gracefully in %.1fs, with an admin stream open", victim, took.Seconds())
	if took > 2*time.Second {
		t.Errorf("docker stop of %s took %.1fs with an admin stream open; want under 2 s", victim, took.Seconds())
	}
	// The sticky browser lands on another replica with an empty cart. Once
	// in four full runs its first request got a 502 from nginx instead
	// (likely a retry of the sticky peer on a keepalive connection it had
	// just closed): sticky mode promises no error-free SIGTERM, so one
	// 502 is allowed and reported, then the next request must land.
	if first, err := pinned.try("GET", "/api/cart", "", ""); err != nil || first != 200 {
		t.Logf("the sticky browser's first request after %s's SIGTERM: %d %v; retrying once", victim, first, err)
	}
	status, c := pinned.do("GET", "/api/cart", "")
	if status != 200 || c.Count != 0 || pinned.lastReplica() == victim {
		t.Errorf("sticky browser after its replica stopped: %d, cart %s on %s; want another replica and an empty cart",
			status, describeCart(c), pinned.lastReplica())
	}
	startContainer(t, victim)
	back := waitServing(t, victim, 30*time.Second)
	t.Logf("%s started again and served after %.1fs", victim, back.Seconds())
	// A stop is not a crash: the new start does not wait RESTART_DELAY.
	since := stopped.UTC().Format(time.RFC3339)
	for _, line := range strings.Split(composeCLI(t, "logs", "--no-log-prefix", "--since", since, "app"), "\n") {
		if strings.Contains(line, "previous run crashed") && strings.Contains(line, `"`+victim+`"`) {
			t.Errorf("%s, stopped gracefully, started as after a crash: %s", victim, line)
		}
	}
	load.end()
	for _, r := range load.runs {
		var counts loadCounts
		for _, q := range r.log {
			switch {
			case q.status == 0:
				counts.transport++
			case q.status >= 500:
				counts.errors5xx++
			case q.status == 200:
				counts.ok++
			default:
				counts.other++
			}
		}
		if r.err != nil {
			t.Errorf("%s shopper, reading its cart at the end: %v", r.mode, r.err)
		}
		t.Logf("%s shopper: %s; %d adds answered, cart holds %d", r.mode, counts, r.adds, r.cart.Count)
		if counts.errors5xx+counts.transport+counts.other > 0 {
			t.Errorf("%s shopper saw errors during a graceful stop: %s", r.mode, counts)
		}
		if r.cart.Count != r.adds {
			t.Errorf("%s shopper: %d adds answered, cart holds %d", r.mode, r.adds, r.cart.Count)
		}
	}
}

// openEventStream opens the admin page's live stream (GET
// /api/admin/events) through nginx until one is served by replica, each
// try from another address, and returns its body, open and read in the
// background, for the caller to close. At most 20 tries.
func openEventStream(t *testing.T, replica string) io.ReadCloser {
	t.Helper()
	for i := range 20 {
		req, err := http.NewRequest("GET", stack.lbURL+"/api/admin/events", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.18.7.%d", i+1))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == 200 && resp.Header.Get("X-Replica") == replica {
			go io.Copy(io.Discard, resp.Body) // read as a page would, until it ends
			return resp.Body
		}
		resp.Body.Close()
	}
	t.Fatalf("no admin stream from %s in 20 tries", replica)
	return nil
}
