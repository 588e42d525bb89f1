package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/remote"
	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// screenshotDir is where the browser tests save their screenshots:
// e2e/screenshots (the README's pictures) with UPDATE_SCREENSHOTS=1,
// SCREENSHOT_DIR if set, a folder under the system temp dir otherwise.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("SCREENSHOT_DIR")
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		dir = "screenshots"
	}
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "sessiondemo-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// newBrowser starts a headless Chromium and returns a context that drives
// it, and the shop's base URL as that browser reaches it. A local Chromium
// is used when there is one; otherwise a headless-shell container
// (CHROME_IMAGE, default chromedp/headless-shell) on the stack's network.
func newBrowser(t *testing.T) (context.Context, string) {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		path, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		return localBrowser(t, path, t.TempDir()), stack.lbURL
	}
	return newContainerBrowser(t)
}

// localBrowser starts the headless Chromium at path with the project's
// flags and the given (fresh) user-data dir.
func localBrowser(t *testing.T, path, userDataDir string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(userDataDir),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return ctx
}

func newContainerBrowser(t *testing.T) (context.Context, string) {
	t.Helper()
	image := os.Getenv("CHROME_IMAGE")
	if image == "" {
		image = "chromedp/headless-shell:latest"
	}
	ctx := context.Background()
	lb, err := stack.compose.ServiceContainer(ctx, "lb")
	if err != nil {
		t.Fatal(err)
	}
	networks, err := lb.Networks(ctx)
	if err != nil || len(networks) == 0 {
		t.Fatalf("stack network: %v", err)
	}
	ctr, err := testcontainers.Run(ctx, image,
		testcontainers.WithExposedPorts("9222/tcp"),
		testcontainers.WithWaitStrategy(wait.ForListeningPort("9222/tcp").WithStartupTimeout(time.Minute)),
		tcnetwork.WithNetworkName(nil, networks[0]),
	)
	testcontainers.CleanupContainer(t, ctr)
	if err != nil {
		t.Fatalf("no local Chromium (apt-get install chromium) and the %s container did not start: %v", image, err)
	}
	endpoint, err := ctr.PortEndpoint(ctx, "9222/tcp", "ws")
	if err != nil {
		t.Fatal(err)
	}
	allocCtx, cancelAlloc := remote.NewAllocator(context.Background(), endpoint)
	bctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return bctx, "http://lb"
}

// screenshot saves a full-page PNG under name (quality 100 means PNG).
func screenshot(t *testing.T, dir, name string) chromedp.Action[chromedp.Void] {
	return saveShot(t, dir, name, chromedp.FullScreenshot(100))
}

// viewportShot saves a PNG of what the viewport shows, for tall pages.
func viewportShot(t *testing.T, dir, name string) chromedp.Action[chromedp.Void] {
	return saveShot(t, dir, name, chromedp.CaptureScreenshot())
}

func saveShot(t *testing.T, dir, name string, capture chromedp.Action[[]byte]) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		png, err := capture(ctx, target)
		if err != nil {
			return err
		}
		path := filepath.Join(dir, name+".png")
		t.Logf("screenshot %s", path)
		return os.WriteFile(path, png, 0o644)
	})
}

// byTestID selects the first element with the data-testid.
func byTestID(id string) chromedp.CSS { return chromedp.CSS(fmt.Sprintf(`[data-testid=%q]`, id)) }

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

// TestBrowserStickyCrash: a person in sticky mode fills the cart, the
// replica holding it crashes, and the cart page explains what happened.
func TestBrowserStickyCrash(t *testing.T) {
	needStack(t)
	t.Cleanup(func() { waitStackHealthy(t) })
	ctx, base := newBrowser(t)
	dir := screenshotDir(t)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start browser: %v", err)
	}
	step, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err := chromedp.Do(step,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(byTestID("product-card")),
		// Sticky is the default, so the old page already shows it pressed:
		// wait for the new page's flash before clicking on it.
		chromedp.Click(byTestID("mode-sticky")),
		chromedp.WaitVisible(byTestID("flash")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="mode-sticky"][aria-pressed="true"]`)),
		chromedp.Click(byTestID("add-p1")),
		chromedp.WaitVisible(chromedp.CSS(`[data-product-id="p1"] [data-testid="in-cart"]`)),
		chromedp.Click(byTestID("add-p10")),
		chromedp.WaitVisible(chromedp.CSS(`[data-product-id="p10"] [data-testid="in-cart"]`)),
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
