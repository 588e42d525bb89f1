package e2e

// The browser side of the shared helpers: headless Chromium (local, or a
// container on the stack's network), the actions the browser tests
// share, and screenshots.

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

// newContainerBrowser starts a headless-shell container on the stack's
// network, for machines without a local Chromium.
func newContainerBrowser(t *testing.T) (context.Context, string) {
	t.Helper()
	image := os.Getenv("CHROME_IMAGE")
	if image == "" {
		image = "chromedp/headless-shell:latest"
	}
	ctx := context.Background()
	lb := service(t, "lb")
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

// newCookielessBrowser starts a local headless Chromium whose profile
// blocks every cookie (the content setting a person sets under "Block all
// cookies"), and returns a context that drives it.
func newCookielessBrowser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("E2E_REQUIRED") == "1" {
			t.Fatal("no local Chromium to start with cookies blocked (apt-get install chromium)")
		}
		t.Skip("no local Chromium to start with cookies blocked (apt-get install chromium)")
	}
	dir := t.TempDir()
	prefs := `{"profile":{"default_content_setting_values":{"cookies":2}}}`
	if err := os.MkdirAll(filepath.Join(dir, "Default"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Default", "Preferences"), []byte(prefs), 0o644); err != nil {
		t.Fatal(err)
	}
	return localBrowser(t, path, dir)
}

// startBrowser starts the browser behind ctx with a viewport of width x
// height and returns the context for the test's steps, which ends after
// timeout. The browser lives as long as the context of its first action,
// so that one has no deadline; the steps have one.
func startBrowser(t *testing.T, ctx context.Context, width, height int64, timeout time.Duration) context.Context {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height)); err != nil {
		t.Fatalf("start browser: %v", err)
	}
	step, cancel := context.WithTimeout(ctx, timeout)
	t.Cleanup(cancel)
	return step
}

// addToCart clicks the product's add button and waits for the "In cart"
// badge on it. Each add reloads the page: the badge is the new page's, not
// a flash the previous page may still show.
func addToCart(product string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		click(byTestID("add-"+product)),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`[data-product-id=%q] [data-testid="in-cart"]`, product))),
	)
}

// click clicks the first node sel matches, as chromedp.Click does, and
// queries again when that node was gone by the time of the click (the
// browser's "Could not find node with given id"): the document changed
// between the query and the click, as when a form post's page replaces
// the one before it while chromedp holds a node of the old one. Nothing
// was clicked then (the error comes from scrolling the node into view or
// measuring it, before any mouse event), so no click is sent twice. At
// most five tries.
func click[S chromedp.Selectable](sel S) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		var err error
		for range 5 {
			_, err = chromedp.Click(sel)(ctx, target)
			if err == nil || !strings.Contains(err.Error(), "Could not find node with given id") {
				return err
			}
		}
		return err
	})
}

// cartShows waits until the cart page shows a line for each product.
func cartShows(products ...string) chromedp.Action[chromedp.Void] {
	var steps []chromedp.Action[chromedp.Void]
	for _, p := range products {
		steps = append(steps, chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`[data-testid="cart-line"][data-product-id=%q]`, p))))
	}
	return chromedp.Steps(steps...)
}

// screenshot saves a full-page PNG under name (quality 100 means PNG).
func screenshot(t *testing.T, dir, name string) chromedp.Action[chromedp.Void] {
	return saveShot(t, dir, name, chromedp.FullScreenshot(100))
}

// viewportShot saves a PNG of what the viewport shows, for tall pages.
func viewportShot(t *testing.T, dir, name string) chromedp.Action[chromedp.Void] {
	return saveShot(t, dir, name, chromedp.CaptureScreenshot())
}

// saveShot saves what capture takes as dir/name.png.
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

// scrollTo scrolls the element to the top of the viewport, for a
// screenshot of what matters.
func scrollTo(selector string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](fmt.Sprintf(`(document.querySelector(%q).scrollIntoView(), true)`, selector))(ctx, target)
		return err
	})
}

// signInToAdmin opens the admin page and signs in with the stack's admin
// credentials, as a person does.
func signInToAdmin(base string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate(base+"/admin"),
		chromedp.WaitVisible(byTestID("admin-login")),
		chromedp.SendKeys(byTestID("admin-user"), adminUser),
		chromedp.SendKeys(byTestID("admin-password"), adminPassword),
		click(byTestID("admin-login-submit")),
	)
}
