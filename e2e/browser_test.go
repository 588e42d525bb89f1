package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserShopping is a person using the shop: open it, switch this
// browser to redis mode with the toggle, add products by clicking, and
// find them in the cart.
func TestBrowserShopping(t *testing.T) {
	needStack(t)
	ctx, base := newBrowser(t)
	dir := screenshotDir(t)
	// The first action starts the browser, which lives as long as that
	// call's context: start it without a deadline, then bound each step.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start browser: %v", err)
	}
	step, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	err := chromedp.Do(step,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(byTestID("product-card")),
		screenshot(t, dir, "shop-sticky"),
	)
	if err != nil {
		t.Fatalf("open the shop: %v", err)
	}
	replica, err := chromedp.Run(step, chromedp.Text(byTestID("replica")))
	if err != nil || !strings.HasPrefix(replica, "app") {
		t.Errorf("the shop page names replica %q (%v)", replica, err)
	}

	err = chromedp.Do(step,
		chromedp.Click(byTestID("mode-redis")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="mode-redis"][aria-pressed="true"]`)),
		// Each add reloads the page; wait for the new page's "In cart"
		// badge, not for a flash the previous page may still show.
		chromedp.Click(byTestID("add-p3")),
		chromedp.WaitVisible(chromedp.CSS(`[data-product-id="p3"] [data-testid="in-cart"]`)),
		chromedp.Click(byTestID("add-p8")),
		chromedp.WaitVisible(chromedp.CSS(`[data-product-id="p8"] [data-testid="in-cart"]`)),
		chromedp.Click(byTestID("cart-link")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="cart-line"][data-product-id="p3"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="cart-line"][data-product-id="p8"]`)),
		screenshot(t, dir, "cart-redis"),
	)
	if err != nil {
		t.Fatalf("switch to redis and add by clicking: %v", err)
	}
	mode, _ := chromedp.Run(step, chromedp.Text(byTestID("mode")))
	if !strings.EqualFold(strings.TrimSpace(mode), "redis") {
		t.Errorf("after the toggle the page says mode %q, want redis", mode)
	}
	count, _ := chromedp.Run(step, chromedp.Text(byTestID("cart-count")))
	qty, _ := chromedp.Run(step, chromedp.Value(chromedp.CSS(`[data-testid="cart-line"][data-product-id="p3"] [data-testid="line-qty"]`)))
	if strings.TrimSpace(count) != "2" || qty != "1" {
		t.Errorf("cart count %q and p3 quantity %q, want 2 and 1", count, qty)
	}

	// The same shop at phone width, with the trail of replicas grown.
	err = chromedp.Do(step,
		chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile),
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(byTestID("product-card")),
		viewportShot(t, dir, "shop-phone"),
	)
	if err != nil {
		t.Fatalf("shop at phone width: %v", err)
	}
	trail, err := chromedp.Run(step, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="trail-item"]').length`))
	if err != nil || trail < 5 {
		t.Errorf("trail shows %d requests (%v), want at least 5 after this walk", trail, err)
	}
}
