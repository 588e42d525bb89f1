package e2e

import (
	"fmt"
	"sync"
	"sync/atomic"
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

// TestReplicaGracefulStop: while shoppers in redis and jwt mode read and
// add (with idempotency keys), the second replica gets SIGTERM. It stops taking new
// requests and finishes those in flight: no client sees an error. Then it
// is started again and serves within seconds.
func TestReplicaGracefulStop(t *testing.T) {
	needStack(t)
	t.Cleanup(func() { waitStackHealthy(t) })
	type result struct {
		mode   string
		counts loadCounts
		adds   int
		cart   cartBody
		err    error // of the cart's read at the end
	}
	loadModes := []string{"redis", "jwt", "redis", "jwt"}
	results := make(chan result, len(loadModes))
	stop := make(chan struct{})
	endLoad := sync.OnceFunc(func() { close(stop) })
	var load sync.WaitGroup
	// However the test ends, the load ends with it, before the cleanup
	// looks at the stack.
	defer load.Wait()
	defer endLoad()
	var answered atomic.Int64
	for _, mode := range loadModes {
		s := newShopper(t, mode)
		load.Go(func() {
			r := result{mode: mode}
			// Until the fault is over, bounded in count and time.
			deadline := time.After(60 * time.Second)
		loop:
			for i := 0; i < 3600; i++ { // at most 900 adds: 90 per line
				select {
				case <-stop:
					break loop
				case <-deadline:
					break loop
				default:
				}
				method, path, body := "GET", "/api/cart", ""
				if i%4 == 0 {
					// Rotate products: a line holds at most 99.
					method, path, body = "POST", "/api/cart/items", fmt.Sprintf(`{"product_id":"p%d"}`, 1+(i/4)%10)
				}
				status, err := s.try(method, path, body, fmt.Sprintf("graceful-%p-%d", s, i))
				switch {
				case err != nil:
					r.counts.transport++
				case status >= 500:
					r.counts.errors5xx++
				case status == 200:
					r.counts.ok++
					answered.Add(1)
					if method == "POST" {
						r.adds++
					}
				default:
					r.counts.other++
				}
			}
			_, r.cart, r.err = s.fetch("GET", "/api/cart", "")
			results <- r
		})
	}
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

	// The fault comes while the load runs.
	waitFor(t, 30*time.Second, "the shoppers to be under way", func() bool { return answered.Load() >= 200 })
	stopped := time.Now()
	stopContainer(t, victim, 15*time.Second)
	t.Logf("%s stopped gracefully in %.1fs", victim, time.Since(stopped).Seconds())
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
	endLoad()
	for range loadModes {
		r := <-results
		if r.err != nil {
			t.Errorf("%s shopper, reading its cart at the end: %v", r.mode, r.err)
		}
		t.Logf("%s shopper: %s; %d adds answered, cart holds %d", r.mode, r.counts, r.adds, r.cart.Count)
		if r.counts.errors5xx+r.counts.transport+r.counts.other > 0 {
			t.Errorf("%s shopper saw errors during a graceful stop: %s", r.mode, r.counts)
		}
		if r.cart.Count != r.adds {
			t.Errorf("%s shopper: %d adds answered, cart holds %d", r.mode, r.adds, r.cart.Count)
		}
	}
}
