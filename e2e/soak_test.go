package e2e

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSoak is a soak in the manner of Jepsen (issue 31): shoppers add
// through the load balancer, each add with its own Idempotency-Key,
// retried with it on any error for up to 30 s, and read their carts after
// every add, while faults from outside the containers overlap: replicas
// killed, stopped, paused or cut off the network (at most two of three at
// a time), and the Redis primary killed, restarted or paused (one Redis
// node at a time, so the Sentinels keep their quorum). A new fault starts
// every 3 to 7 s and each is healed 2 to 9 s later, on a schedule drawn
// from a seed. After every fault is healed, each cart is compared with
// what was acknowledged.
//
// Per mode it counts the acknowledged adds, those lost (acknowledged, not
// in the cart), those applied twice (in the cart beyond every attempt),
// those never acknowledged (given up after 30 s: they may or may not have
// been applied), the error answers, the longest add (its first attempt to
// its acknowledgement) and the reads that went backwards (a cart showing
// fewer items than an earlier read of it). redis, jwt and memcached mode
// must lose nothing, apply nothing twice and never go backwards. Two more
// shoppers use redis mode with writes that wait for the minimum of Redis
// replicas only (X-Redis-Replication: min), the choice that may lose
// writes when faults overlap: their numbers are reported, not held to
// zero.
//
// SOAK sets how long the faults go on (a Go duration; default 60s, what
// CI runs; SOAK=5m for the soak). SOAK_SEED repeats a schedule:
// every run prints its seed. SOAK_README=1 writes the table of a run that
// passed into docs/faults.md.
func TestSoak(t *testing.T) {
	needStack(t)
	length := time.Minute
	if v := os.Getenv("SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Second || d > 2*time.Hour {
			t.Fatalf("SOAK=%q: want a duration from 10s to 2h, such as 5m", v)
		}
		length = d
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("SOAK_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("SOAK_SEED=%q: want a number", v)
		}
		seed = n
	}
	t.Logf("soak of %s, seed %d (SOAK=%s SOAK_SEED=%d repeats this schedule)", length, seed, length, seed)
	t.Cleanup(func() { waitStackHealthy(t) })
	waitRedisSettled(t)

	groups := []*soakGroup{
		{label: "redis", mode: "redis", strict: true},
		{label: "jwt", mode: "jwt", strict: true},
		{label: "memcached", mode: "memcached", strict: true},
		{label: "redis, wait for the minimum", mode: "redis", replication: "min"},
	}
	start := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, g := range groups {
		n := 4
		if g.replication != "" {
			n = 2
		}
		for range n {
			sh := &soakShopper{group: g, start: start}
			g.shoppers = append(g.shoppers, sh)
			wg.Go(func() { sh.run(t, stop) })
		}
	}

	f := newFaultSchedule(t, rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), start)
	f.run(length)
	close(stop)
	f.healAll()
	wg.Wait()
	t.Logf("faults (seconds from the start):\n%s", f.log())

	waitStackHealthy(t)
	waitMemcachedUp(t)
	var rows []string
	for _, g := range groups {
		res := g.check(t)
		rows = append(rows, res.row(g.label))
		for _, a := range res.anomalies {
			t.Logf("%s: %s; faults around it: %s", g.label, a.what, f.around(a.at))
		}
		if res.longest > 5*time.Second {
			t.Logf("%s: the longest add took %.1fs; faults around its start: %s", g.label, res.longest.Seconds(), f.around(res.longestAt))
		}
		if res.replication != nil {
			t.Logf("%s: acknowledged after %v", g.label, res.replication)
		}
		for _, gap := range res.gaps {
			t.Logf("%s: no add acknowledged for %.1fs, %.1f-%.1f s; faults around its end: %s", g.label, gap[1].Sub(gap[0]).Seconds(), gap[0].Sub(start).Seconds(), gap[1].Sub(start).Seconds(), f.around(gap[1]))
		}
		if g.strict && (res.lost != 0 || res.duplicated != 0 || res.backwards != 0) {
			t.Errorf("%s: %d acknowledged adds lost, %d applied twice, %d reads went backwards; want 0, 0, 0", g.label, res.lost, res.duplicated, res.backwards)
		}
	}
	table := fmt.Sprintf("Soak of %s, seed %d, %d faults:\n\n%s%s", length, seed, len(f.faults), soakHeader, strings.Join(rows, ""))
	t.Logf("%s", table)
	// SOAK_README=1 puts this run's table into docs/faults.md.
	if os.Getenv("SOAK_README") == "1" && !t.Failed() {
		if err := replaceBetweenMarkers("../docs/faults.md", "soak", table); err != nil {
			t.Error(err)
		}
	}
}

// soakHeader heads the soak's table (docs/faults.md).
const soakHeader = "| mode | adds acknowledged | lost | applied twice | never acknowledged | error answers | longest add | reads gone backwards |\n|---|---|---|---|---|---|---|---|\n"

// soakGroup is the shoppers of one mode (and Redis replication choice).
type soakGroup struct {
	label, mode string
	// replication is the X-Redis-Replication header its adds carry, or "".
	replication string
	// strict groups must lose nothing, double nothing, never go back.
	strict   bool
	shoppers []*soakShopper
}

// soakShopper adds and reads until the soak stops. It starts a new
// session (a new cookie jar) before a line could reach its limit of 99.
type soakShopper struct {
	group    *soakGroup
	start    time.Time
	sessions []*soakSession
	errors   int           // answers other than 200, and requests with none
	longest  time.Duration // from an add's first attempt to its 200
	// longestAt is when the longest add was first sent.
	longestAt time.Time
	// acks are the times of the acknowledgements, in order.
	acks []time.Time
	// replication counts the acknowledgements by the X-Redis-Replication
	// they answered with (redis mode: how many replicas each waited for).
	replication map[string]int
	// ackedCount is the adds acknowledged so far, for other goroutines.
	ackedCount atomic.Int64
}

// soakSession is one cart: what was acknowledged, what was tried and
// never acknowledged, per product, and what its reads showed.
type soakSession struct {
	shopper           *shopper
	acked, unacked    map[string]int
	adds              int
	maxRead           int
	backwards, stale  int
	firstAnomaly      time.Time
	firstAnomalyWhat  string
	lastRead, created time.Time
}

// soakAddsPerSession is how many adds a session gets: with ten products
// in turn, 90 per line, below the line's limit of 99.
const soakAddsPerSession = 900

// soakGiveUp is how long a shopper retries one add.
const soakGiveUp = 30 * time.Second

// run is the shopper's loop, in its own goroutine: it never stops the
// test, it records.
func (sh *soakShopper) run(t *testing.T, stop <-chan struct{}) {
	var sess *soakSession
	for n := 0; n < 100_000; n++ {
		select {
		case <-stop:
			return
		default:
		}
		if sess == nil || sess.adds >= soakAddsPerSession {
			sess = &soakSession{shopper: newShopper(t, sh.group.mode), acked: map[string]int{}, unacked: map[string]int{}, created: time.Now()}
			sh.sessions = append(sh.sessions, sess)
		}
		product := fmt.Sprintf("p%d", 1+sess.adds%10)
		sess.adds++
		if sh.add(sess, product, fmt.Sprintf("soak-%p-%d", sess, n)) {
			sess.acked[product]++
			sh.ackedCount.Add(1)
			sh.read(sess)
		} else {
			sess.unacked[product]++
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// acked is how many adds the group's shoppers have had acknowledged so
// far; safe while they run.
func (g *soakGroup) acked() int {
	n := 0
	for _, sh := range g.shoppers {
		n += int(sh.ackedCount.Load())
	}
	return n
}

// add sends one keyed add until it is answered 200 or soakGiveUp passes.
func (sh *soakShopper) add(sess *soakSession, product, key string) bool {
	first := time.Now()
	pause := 100 * time.Millisecond
	for {
		req, _ := http.NewRequest("POST", sess.shopper.base+"/api/cart/items", strings.NewReader(`{"product_id":"`+product+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		if sh.group.replication != "" {
			req.Header.Set("X-Redis-Replication", sh.group.replication)
		}
		resp, err := sess.shopper.http.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				if took := time.Since(first); took > sh.longest {
					sh.longest, sh.longestAt = took, first
				}
				sh.acks = append(sh.acks, time.Now())
				if v := resp.Header.Get("X-Redis-Replication"); v != "" {
					if sh.replication == nil {
						sh.replication = map[string]int{}
					}
					sh.replication[v]++
				}
				return true
			}
		}
		sh.errors++
		if time.Since(first) > soakGiveUp {
			return false
		}
		time.Sleep(pause)
		pause = min(2*pause, time.Second)
	}
}

// read reads the cart after an acknowledged add and notes a cart that
// shows fewer items than an earlier read (backwards) or than were
// acknowledged (stale). A read that fails is tried again a few times.
func (sh *soakShopper) read(sess *soakSession) {
	for try := 0; try < 5; try++ {
		status, c, err := sess.shopper.fetch("GET", "/api/cart", "")
		if err != nil || status != 200 {
			sh.errors++
			time.Sleep(200 * time.Millisecond)
			continue
		}
		acked, tried := 0, 0
		for p, n := range sess.acked {
			acked += n
			tried += n + sess.unacked[p]
		}
		now := time.Now()
		sess.lastRead = now
		var what string
		switch {
		case c.Count < sess.maxRead:
			sess.backwards++
			what = fmt.Sprintf("a read showed %d items after one showed %d", c.Count, sess.maxRead)
		case c.Count < acked:
			sess.stale++
			what = fmt.Sprintf("a read showed %d items, %d acknowledged", c.Count, acked)
		case c.Count > tried:
			what = fmt.Sprintf("a read showed %d items, more than the %d adds tried", c.Count, tried)
		}
		if what != "" && sess.firstAnomaly.IsZero() {
			sess.firstAnomaly, sess.firstAnomalyWhat = now, what
		}
		sess.maxRead = max(sess.maxRead, c.Count)
		return
	}
}

// soakResult is one group's numbers.
type soakResult struct {
	acked, lost, duplicated, unacked, errors, backwards, stale int
	longest                                                    time.Duration
	longestAt                                                  time.Time
	anomalies                                                  []soakAnomaly
	// gaps are the stretches of over soakGap in which no shopper of the
	// group had an add acknowledged: when its writes were out.
	gaps [][2]time.Time
	// replication counts the acknowledgements by X-Redis-Replication.
	replication map[string]int
}

// soakGap is the shortest stretch without an acknowledged add that the
// soak reports.
const soakGap = 2 * time.Second

// soakAnomaly is a session whose cart or reads went wrong, and when that
// was seen first.
type soakAnomaly struct {
	what string
	at   time.Time
}

// check reads every session's cart, once every fault is healed, and
// counts per product: lost, what was acknowledged and is not there;
// applied twice, what is there beyond every attempt.
func (g *soakGroup) check(t *testing.T) soakResult {
	t.Helper()
	var res soakResult
	var acks []time.Time
	for _, sh := range g.shoppers {
		res.errors += sh.errors
		if sh.longest > res.longest {
			res.longest, res.longestAt = sh.longest, sh.longestAt
		}
		acks = append(acks, sh.acks...)
		for k, n := range sh.replication {
			if res.replication == nil {
				res.replication = map[string]int{}
			}
			res.replication[k] += n
		}
		for i, sess := range sh.sessions {
			status, c := sess.shopper.do("GET", "/api/cart", "")
			if status != 200 {
				t.Errorf("%s: the final read of a cart answered %d %s", g.label, status, c.Error)
				continue
			}
			final := map[string]int{}
			for _, it := range c.Items {
				final[it.ProductID] = it.Qty
			}
			lost, dup := 0, 0
			for p := range 10 {
				id := fmt.Sprintf("p%d", p+1)
				res.acked += sess.acked[id]
				res.unacked += sess.unacked[id]
				lost += max(0, sess.acked[id]-final[id])
				dup += max(0, final[id]-sess.acked[id]-sess.unacked[id])
			}
			res.lost += lost
			res.duplicated += dup
			res.backwards += sess.backwards
			res.stale += sess.stale
			if lost+dup+sess.backwards+sess.stale > 0 {
				at := sess.firstAnomaly
				what := sess.firstAnomalyWhat
				if at.IsZero() {
					at, what = sess.lastRead, "the last read before the end was whole"
				}
				res.anomalies = append(res.anomalies, soakAnomaly{
					what: fmt.Sprintf("session %d of a shopper: %d lost, %d applied twice, %d backwards and %d stale reads; first seen: %s", i+1, lost, dup, sess.backwards, sess.stale, what),
					at:   at,
				})
			}
		}
	}
	slices.SortFunc(acks, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(acks); i++ {
		if acks[i].Sub(acks[i-1]) > soakGap {
			res.gaps = append(res.gaps, [2]time.Time{acks[i-1], acks[i]})
		}
	}
	return res
}

// row is the group's line of the soak's table.
func (r soakResult) row(label string) string {
	return fmt.Sprintf("| %s | %d | %d | %d | %d | %d | %.1f s | %d |\n", label, r.acked, r.lost, r.duplicated, r.unacked, r.errors, r.longest.Seconds(), r.backwards)
}
