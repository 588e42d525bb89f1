package e2e

import (
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
	step := startBrowser(t, ctx, 1280, 900, 2*time.Minute)

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
		click(byTestID("mode-redis")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="mode-redis"][aria-pressed="true"]`)),
		addToCart("p3"),
		addToCart("p8"),
		click(byTestID("cart-link")),
		cartShows("p3", "p8"),
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
