package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestReplicaCrash: SIGKILL the replica that serves a shopper. redis and
// jwt: the next requests are served by others with the cart whole and no
// error. sticky: the browser is re-pinned, its cart is gone, and the page
// says where the session was and why. Then the replica comes back by
// itself and serves again.
func TestReplicaCrash(t *testing.T) {
	needStack(t)
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Cleanup(func() { waitStackHealthy(t) })
			s := newShopper(t, mode)
			before := fillCart(t, s)
			victim := s.lastReplica()
			crashedAt := crashReplica(t, victim)

			status, after := s.do("GET", "/api/cart", "")
			served := s.lastReplica()
			if status != 200 {
				t.Fatalf("first read after %s crashed: %d %q", victim, status, after.Error)
			}
			if served == victim {
				t.Fatalf("first read after the crash was served by %s, the crashed replica", victim)
			}
			switch mode {
			case "sticky":
				if after.Count != 0 {
					t.Errorf("sticky cart after its replica crashed: %s; its memory is gone, so must the cart be", describeCart(after))
				}
				page := s.page("/cart")
				for _, want := range []string{"Your session was on " + victim, "is gone", "Redis or JWT mode would have kept it"} {
					if !strings.Contains(page, want) {
						t.Errorf("the cart page after the crash does not say %q", want)
					}
				}
				// The browser is pinned again: the next requests stay on one replica.
				first := ""
				for i := 0; i < 5; i++ {
					s.do("GET", "/api/cart", "")
					r := s.lastReplica()
					if first == "" {
						first = r
					} else if r != first {
						t.Errorf("after the crash the sticky browser moves between %s and %s", first, r)
					}
				}
			default:
				if !sameCart(before, after) {
					t.Errorf("cart after %s crashed: %s, before: %s", victim, describeCart(after), describeCart(before))
				}
				for i := 0; i < 6; i++ {
					if status, c := s.do("GET", "/api/cart", ""); status != 200 || !sameCart(before, c) {
						t.Errorf("read %d after the crash: %d %s", i, status, describeCart(c))
					}
				}
			}
			waitServing(t, victim, 60*time.Second)
			t.Logf("%s: crashed %s, which served cart %s; the next read was served by %s with cart %s; %s served again %.1fs after the crash",
				mode, victim, describeCart(before), served, describeCart(after), victim, time.Since(crashedAt).Seconds())
		})
	}
}

// TestBrowserStickyCrash: a person in sticky mode fills the cart, the
// replica holding it crashes, and the cart page explains what happened.
func TestBrowserStickyCrash(t *testing.T) {
	needStack(t)
	t.Cleanup(func() { waitStackHealthy(t) })
	ctx, base := newBrowser(t)
	dir := screenshotDir(t)
	step := startBrowser(t, ctx, 1280, 900, 2*time.Minute)
	err := chromedp.Do(step,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(byTestID("product-card")),
		// Sticky is the default, so the old page already shows it pressed:
		// wait for the new page's flash before clicking on it.
		click(byTestID("mode-sticky")),
		chromedp.WaitVisible(byTestID("flash")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="mode-sticky"][aria-pressed="true"]`)),
		addToCart("p1"),
		addToCart("p10"),
	)
	if err != nil {
		t.Fatalf("fill the sticky cart: %v", err)
	}
	victim, err := chromedp.Run(step, chromedp.Text(byTestID("replica")))
	if err != nil {
		t.Fatal(err)
	}
	crashReplica(t, victim)
	err = chromedp.Do(step,
		chromedp.Navigate(base+"/cart"),
		chromedp.WaitVisible(byTestID("notice")),
		chromedp.WaitVisible(byTestID("cart-empty")),
		screenshot(t, dir, "sticky-crash"),
	)
	if err != nil {
		t.Fatalf("cart page after %s crashed: %v", victim, err)
	}
	notice, _ := chromedp.Run(step, chromedp.Text(byTestID("notice")))
	served, _ := chromedp.Run(step, chromedp.Text(byTestID("replica")))
	for _, want := range []string{"Your session was on " + victim, "is gone", "Redis or JWT mode would have kept it"} {
		if !strings.Contains(notice, want) {
			t.Errorf("the notice %q does not say %q", notice, want)
		}
	}
	if served == victim {
		t.Errorf("the page after the crash was served by %s, the crashed replica", victim)
	}
	t.Logf("sticky cart on %s; after the crash %s served the page: %q", victim, served, notice)
}

// TestAdminShowsACrashedReplica: the crash control (with the admin
// credentials) ends a replica's process; the admin status shows it down,
// then up again once its restart policy brought it back.
func TestAdminShowsACrashedReplica(t *testing.T) {
	needStack(t)
	t.Cleanup(func() { waitStackHealthy(t) })
	victim := replicas(t)[2]
	if status := adminDo(t, "POST", "/api/admin/replicas/"+victim+"/crash", "", false, nil); status != 404 {
		t.Fatalf("crash without credentials = %d, want 404 (the answer to a wrong password and to an unknown replica)", status)
	}
	if status := adminDo(t, "POST", "/api/admin/replicas/"+victim+"/crash", "", true, nil); status != 202 {
		t.Fatalf("crash %s = %d, want 202", victim, status)
	}
	down := waitFor(t, 10*time.Second, "the admin status to show "+victim+" down", func() bool {
		s := replicaState(t, victim)
		return s == "down"
	})
	up := waitFor(t, 60*time.Second, "the admin status to show "+victim+" up again", func() bool {
		return replicaState(t, victim) == "up"
	})
	t.Logf("%s shown down %.1fs after the crash, up again %.1fs after that", victim, down.Seconds(), up.Seconds())
	ins, err := service(t, victim).Inspect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if ins.RestartCount < 1 {
		t.Errorf("%s restart count %d: the crash should have been a process exit that Docker restarted", victim, ins.RestartCount)
	}
}

// killTally is what a kill-under-load run counts, Jepsen-style: an add is
// acknowledged when a client got a 2xx for it; after the run each client's
// cart is read once and compared with its acknowledged adds.
type killTally struct {
	acked, lost, duplicated, unanswered, seen5xx, transport int
}

// TestReplicaCrashUnderLoad: 8 clients x 25 adds in each mode, each add
// retried with the same Idempotency-Key until it is answered, while a replica
// crashes (its process SIGKILLed) and comes back by itself. redis, jwt and memcached:
// nothing lost, nothing applied twice, nothing unanswered. sticky: the
// carts that lived on it are lost, by design; the numbers are reported.
func TestReplicaCrashUnderLoad(t *testing.T) {
	needStack(t)
	const clients, adds = 8, 25
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Cleanup(func() { waitStackHealthy(t) })
			type outcome struct {
				tally    killTally
				expected map[string]int
				cart     cartBody
				err      error // of the cart's read at the end
			}
			out := make(chan outcome, clients)
			progress := make(chan struct{}, clients*adds)
			stop := make(chan struct{})
			stopped := func() bool {
				select {
				case <-stop:
					return true
				default:
					return false
				}
			}
			var load sync.WaitGroup
			// Should the test stop early, its clients stop with it.
			defer load.Wait()
			defer close(stop)
			for c := 0; c < clients; c++ {
				s := newShopper(t, mode)
				load.Go(func() {
					o := outcome{expected: map[string]int{}}
					deadline := time.Now().Add(90 * time.Second)
					for i := 0; i < adds && !stopped(); i++ {
						product := fmt.Sprintf("p%d", 1+(c+i)%10)
						key := fmt.Sprintf("kill-%s-%d-%d-%d", mode, c, i, time.Now().UnixNano())
						answered := false
						for attempt := 0; attempt < 40 && !answered && time.Now().Before(deadline) && !stopped(); attempt++ {
							status, err := s.try("POST", "/api/cart/items", `{"product_id":"`+product+`"}`, key)
							switch {
							case err != nil:
								o.tally.transport++
							case status >= 500:
								o.tally.seen5xx++
							case status == 200:
								answered = true
							}
							if !answered {
								time.Sleep(250 * time.Millisecond)
							}
						}
						if answered {
							o.tally.acked++
							o.expected[product]++
						} else {
							o.tally.unanswered++
						}
						progress <- struct{}{}
						// Paced, so the run (about 4 s) spans the crash.
						time.Sleep(150 * time.Millisecond)
					}
					_, o.cart, o.err = s.fetch("GET", "/api/cart", "")
					out <- o
				})
			}
			// Crash the second replica a third of the way in; it restarts
			// by itself.
			for i := 0; i < clients*adds/3; i++ {
				<-progress
			}
			victim := replicas(t)[1]
			crashedAt := crashReplica(t, victim)
			waitServing(t, victim, 60*time.Second)
			back := time.Since(crashedAt)

			var total killTally
			for c := 0; c < clients; c++ {
				o := <-out
				if o.err != nil {
					t.Errorf("a client's read of its cart at the end: %v", o.err)
				}
				got := map[string]int{}
				for _, it := range o.cart.Items {
					got[it.ProductID] = it.Qty
				}
				for p := 1; p <= 10; p++ {
					id := fmt.Sprintf("p%d", p)
					if d := o.expected[id] - got[id]; d > 0 {
						o.tally.lost += d
					} else {
						o.tally.duplicated -= d
					}
				}
				total.acked += o.tally.acked
				total.lost += o.tally.lost
				total.duplicated += o.tally.duplicated
				total.unanswered += o.tally.unanswered
				total.seen5xx += o.tally.seen5xx
				total.transport += o.tally.transport
			}
			t.Logf("%s: %d clients x %d adds with %s SIGKILLed (back serving after %.1fs): %d acknowledged, %d lost, %d applied twice, %d never answered; clients saw %d 5xx and %d transport errors (each retried)",
				mode, clients, adds, victim, back.Seconds(), total.acked, total.lost, total.duplicated, total.unanswered, total.seen5xx, total.transport)
			if mode != "sticky" {
				if total.lost != 0 || total.duplicated != 0 || total.unanswered != 0 {
					t.Errorf("%s: %d lost, %d duplicated, %d unanswered; want 0, 0, 0", mode, total.lost, total.duplicated, total.unanswered)
				}
			} else if total.duplicated != 0 || total.unanswered != 0 {
				t.Errorf("sticky: %d duplicated, %d unanswered; want 0 (only carts on %s may be lost)", total.duplicated, total.unanswered, victim)
			}
		})
	}
}
