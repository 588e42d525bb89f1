package e2e

import (
	"fmt"
	"sort"
	"testing"
	"time"
)

// faultBudget is the longest a shop request may wait because of a fault
// (issue 11): nginx's 1.5 s read timeout for a replica that hangs, then
// another replica's answer.
const faultBudget = 2 * time.Second

// outsideFault is a way a person breaks a replica from outside its
// container, and how the test mends it afterwards.
type outsideFault struct {
	name    string
	command string // what a person types (README)
	apply   func(t *testing.T, victim string) (mend func())
}

var outsideFaults = []outsideFault{
	{"kill", "docker kill", func(t *testing.T, v string) func() {
		killContainer(t, v)
		return func() { startContainer(t, v) }
	}},
	{"stop", "docker stop", func(t *testing.T, v string) func() {
		stopContainer(t, v, 15*time.Second)
		return func() { startContainer(t, v) }
	}},
	{"pause", "docker pause", func(t *testing.T, v string) func() {
		pauseContainer(t, v)
		return func() { unpauseContainer(t, v) }
	}},
	{"disconnect", "docker network disconnect", func(t *testing.T, v string) func() {
		return disconnectContainer(t, v)
	}},
}

// TestReplicaOutsideFaults: shoppers in redis, jwt and memcached mode read
// and add (with idempotency keys) through nginx while the replica that
// served one of them is broken from outside its container, each way a
// person can: killed, stopped, frozen, cut off the network. No client sees
// an error, no request waits more than faultBudget, and the wait is paid
// by a few requests, not by every one while the replica stays broken. A
// sticky browser pinned to that replica is re-pinned with an empty cart,
// as documented. Reports the time from the fault to each client's first
// answer.
func TestReplicaOutsideFaults(t *testing.T) {
	needStack(t)
	for _, f := range outsideFaults {
		t.Run(f.name, func(t *testing.T) {
			t.Cleanup(func() { waitStackHealthy(t) })
			// About 25 requests a second per shopper; at most 500 adds: 50
			// per line.
			load := startShopLoad(t, []string{"redis", "jwt", "memcached", "jwt"}, 2000, 40*time.Millisecond)
			defer load.end()
			waitFor(t, 30*time.Second, "the shoppers to be under way", func() bool { return load.answered.Load() >= 100 })
			// The victim serves the first shopper: the replica of its
			// latest answer.
			victim := load.runs[0].shopper.lastReplica()
			pinned := pinnedShopper(t, victim)
			fillCart(t, pinned)

			faultAt := time.Now()
			mend := f.apply(t, victim)
			applied := time.Since(faultAt)
			// Long enough for nginx to have tried the broken replica again
			// after max_fails' fail_timeout (5 s).
			time.Sleep(8 * time.Second)
			status, c := pinned.do("GET", "/api/cart", "")
			if status != 200 || c.Count != 0 || pinned.lastReplica() == victim || c.Event != "lost" {
				t.Errorf("sticky browser pinned to %s after %s: %d, cart %s on %s, session %q; want 200, an empty cart on another replica, session lost",
					victim, f.command, status, describeCart(c), pinned.lastReplica(), c.Event)
			}
			load.end()
			mend()

			var failures []string
			var slow []string
			var longest time.Duration
			var firstAnswers []string
			requests := 0
			for i, r := range load.runs {
				if r.err != nil {
					t.Errorf("%s shopper %d, reading its cart at the end: %v", r.mode, i, r.err)
				}
				if r.cart.Count != r.adds {
					t.Errorf("%s shopper %d: %d adds answered, cart holds %d", r.mode, i, r.adds, r.cart.Count)
				}
				requests += len(r.log)
				first := time.Duration(-1)
				for _, q := range r.log {
					took := q.answered.Sub(q.sent)
					if q.failure != "" {
						failures = append(failures, fmt.Sprintf("%s +%.2fs: %s", r.mode, q.sent.Sub(faultAt).Seconds(), q.failure))
					}
					if q.answered.Before(faultAt) {
						continue
					}
					longest = max(longest, took)
					if took > time.Second {
						slow = append(slow, fmt.Sprintf("+%.1fs %.2fs", q.sent.Sub(faultAt).Seconds(), took.Seconds()))
					}
					if first < 0 && q.status == 200 {
						first = q.answered.Sub(faultAt)
					}
				}
				firstAnswers = append(firstAnswers, fmt.Sprintf("%.2fs", first.Seconds()))
			}
			sort.Strings(slow)
			t.Logf("%s of %s (took %.1fs): %d requests in all, %d failed; longest wait after the fault %.2fs; %d waited over 1 s %v; first answer after the fault, per shopper: %v",
				f.command, victim, applied.Seconds(), requests, len(failures), longest.Seconds(), len(slow), slow, firstAnswers)
			if len(failures) > 0 {
				t.Errorf("%d requests failed after %s of %s: %v", len(failures), f.command, victim, failures[:min(len(failures), 10)])
			}
			if longest > faultBudget {
				t.Errorf("a request waited %.2fs after %s of %s; want at most %v", longest.Seconds(), f.command, victim, faultBudget)
			}
			// The wait is paid once per connection nginx had open to the
			// replica and once per pool each fail_timeout, not by every
			// request: with 4 shoppers in 8 s, a handful.
			if len(slow) > 12 {
				t.Errorf("%d requests waited over 1 s after %s of %s; nginx keeps trying the broken replica", len(slow), f.command, victim)
			}
		})
	}
}

// pinnedShopper returns a sticky browser that nginx pinned to replica.
func pinnedShopper(t *testing.T, replica string) *shopper {
	t.Helper()
	for range 30 {
		s := newShopper(t, "sticky")
		s.do("GET", "/api/cart", "")
		if s.lastReplica() == replica {
			return s
		}
	}
	t.Fatalf("no sticky browser was pinned to %s in 30 tries", replica)
	return nil
}
