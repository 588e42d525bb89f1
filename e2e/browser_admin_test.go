package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserAdmin: a person signs in to the admin page, watches the live
// log grow while someone else shops in another browser, then crashes a
// replica from the page and watches it go down and come back.
func TestBrowserAdmin(t *testing.T) {
	needStack(t)
	t.Cleanup(func() { waitStackHealthy(t) })
	dir := screenshotDir(t)
	admin, base := newBrowser(t)
	shopper, _ := newBrowser(t)
	for _, ctx := range []context.Context{admin, shopper} {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 1000)); err != nil {
			t.Fatalf("start browser: %v", err)
		}
	}
	step, cancel := context.WithTimeout(admin, 3*time.Minute)
	defer cancel()
	shop, cancelShop := context.WithTimeout(shopper, 2*time.Minute)
	defer cancelShop()

	err := chromedp.Do(step,
		chromedp.Navigate(base+"/admin"),
		chromedp.WaitVisible(byTestID("admin-login")),
		chromedp.SendKeys(byTestID("admin-user"), adminUser),
		chromedp.SendKeys(byTestID("admin-password"), adminPassword),
		chromedp.Click(byTestID("admin-login-submit")),
		chromedp.WaitVisible(byTestID("sim-form")),
		chromedp.WaitReady(chromedp.CSS(`[data-testid="live-state"][data-state="live"]`)),
	)
	if err != nil {
		t.Fatalf("sign in to the admin page: %v", err)
	}
	servedBy, err := chromedp.Run(step, chromedp.Evaluate[string](`document.body.dataset.replica`))
	if err != nil {
		t.Fatal(err)
	}

	// Someone shops in redis mode in another browser; each add must show
	// up in the admin's live log without a reload.
	rowsFor := func(path string) int {
		n, err := chromedp.Run(step, chromedp.Evaluate[int](fmt.Sprintf(
			`[...document.querySelectorAll('[data-testid="log-row"]')].filter(r => r.textContent.includes(%q)).length`, path)))
		if err != nil {
			t.Fatalf("read the live log: %v", err)
		}
		return n
	}
	before := rowsFor("POST /cart/add")
	err = chromedp.Do(shop,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(byTestID("product-card")),
		chromedp.Click(byTestID("mode-redis")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="mode-redis"][aria-pressed="true"]`)),
	)
	if err != nil {
		t.Fatalf("open the shop in redis mode: %v", err)
	}
	var delays []time.Duration
	for _, p := range []string{"p2", "p5", "p7"} {
		err := chromedp.Do(shop,
			chromedp.Click(byTestID("add-"+p)),
			chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`[data-product-id=%q] [data-testid="in-cart"]`, p))),
		)
		if err != nil {
			t.Fatalf("add %s: %v", p, err)
		}
		added := time.Now()
		want := before + len(delays) + 1
		waitFor(t, 5*time.Second, "the add to appear in the live log", func() bool { return rowsFor("POST /cart/add") >= want })
		delays = append(delays, time.Since(added).Round(10*time.Millisecond))
	}
	t.Logf("each add appeared in the admin's live log (served by %s) %v after the shopper's page showed it (the stream polls every 500 ms)", servedBy, delays)
	if err := chromedp.Do(step, screenshot(t, dir, "admin-live")); err != nil {
		t.Fatal(err)
	}

	// Crash a replica other than the one streaming to this page.
	victim := "app1"
	if servedBy == victim {
		victim = "app2"
	}
	crashed := time.Now()
	err = chromedp.Do(step,
		chromedp.Click(byTestID("crash-"+victim)),
		chromedp.WaitReady(chromedp.CSS(fmt.Sprintf(`[data-testid="node-%s"][data-state="down"]`, victim))),
	)
	if err != nil {
		t.Fatalf("crash %s from the page and see it down: %v", victim, err)
	}
	downAfter := time.Since(crashed)
	message, _ := chromedp.Run(step, chromedp.Text(byTestID("control-result")))
	showTopology := scrollTo(".topology-panel")
	if err := chromedp.Do(step, showTopology, viewportShot(t, dir, "admin-crash-down")); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(step,
		chromedp.WaitReady(chromedp.CSS(fmt.Sprintf(`[data-testid="node-%s"][data-state="up"]`, victim))),
		showTopology,
		viewportShot(t, dir, "admin-crash-back"),
	)
	if err != nil {
		t.Fatalf("see %s come back: %v", victim, err)
	}
	t.Logf("crashed %s from the page (%q): shown down after %.1fs, up again after %.1fs", victim, message, downAfter.Seconds(), time.Since(crashed).Seconds())

	// The concurrency experiment with naive writes, then the simulator.
	err = chromedp.Do(step,
		chromedp.SetValue(chromedp.CSS(`#conc-form select[name="mode"]`), "redis"),
		chromedp.Click(chromedp.CSS(`#conc-form input[name="naive"]`)),
		chromedp.Click(byTestID("conc-run")),
		chromedp.WaitVisible(byTestID("conc-summary")),
		chromedp.SetValue(byTestID("sim-mode"), "redis"),
		chromedp.SetValue(chromedp.CSS(`#sim-form input[name="seconds"]`), "4"),
		chromedp.Click(byTestID("sim-run")),
		chromedp.WaitReady(chromedp.CSS(`[data-testid="sim-view"][data-done="true"]`)),
		scrollTo(".controls-panel"),
		viewportShot(t, dir, "admin-simulator"),
	)
	if err != nil {
		t.Fatalf("run the experiment and the simulator from the page: %v", err)
	}
	summary, _ := chromedp.Run(step, chromedp.Text(byTestID("conc-summary")))
	ratio, _ := chromedp.Run(step, chromedp.Evaluate[string](`document.querySelector('[data-testid="sim-view"]').dataset.requestsMaxMean`))
	lost, _ := chromedp.Run(step, chromedp.Evaluate[string](`document.querySelector('[data-testid="sim-view"]').dataset.cartsLost`))
	t.Logf("from the page: %q; simulator in redis mode: requests max/mean %s, %s carts lost", summary, ratio, lost)
	if ratio == "" || lost != "0" {
		t.Errorf("simulator result: max/mean %q, carts lost %q; want a ratio and no lost carts", ratio, lost)
	}
}
