// Package dockertest is what every test that needs Docker shares: the
// e2e suite, which starts the whole stack, and the Redis store's tests,
// which start one Redis. It points testcontainers-go at this machine and
// decides what a test does when Docker cannot be reached: skip with a
// message, or fail where E2E_REQUIRED=1 (CI).
package dockertest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/testcontainers/testcontainers-go"
)

// Prepare sets testcontainers-go up for this machine; call it from
// TestMain, before testcontainers reads its configuration.
//
//   - Where /.dockerenv exists testcontainers guesses that published ports
//     are on the default gateway, an address outside this machine; with a
//     local Docker socket they are on 127.0.0.1.
//   - The reaper (Ryuk) is an image of its own that cannot be pulled
//     without a registry; each test removes its containers itself.
//
// A variable already set is left alone.
func Prepare() {
	if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" && !strings.HasPrefix(os.Getenv("DOCKER_HOST"), "tcp://") {
		os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	}
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
}

// Required reports whether a missing Docker is a failure (E2E_REQUIRED=1)
// rather than a reason to skip.
func Required() bool { return os.Getenv("E2E_REQUIRED") == "1" }

// Reachable returns nil when the Docker engine answers, else why not.
func Reachable(ctx context.Context) error {
	provider, err := testcontainers.ProviderDefault.GetProvider()
	if err != nil {
		return fmt.Errorf("Docker is not reachable: %w", err)
	}
	defer provider.Close()
	if err := provider.Health(ctx); err != nil {
		return fmt.Errorf("Docker is not reachable: %w", err)
	}
	return nil
}

// Need skips t when Docker cannot be reached, or fails it where a missing
// Docker is a failure (Required).
func Need(t testing.TB) {
	t.Helper()
	err := Reachable(context.Background())
	if err == nil {
		return
	}
	if Required() {
		t.Fatalf("%v (E2E_REQUIRED=1: Docker is required)", err)
	}
	t.Skipf("%v (E2E_REQUIRED=1 makes this a failure)", err)
}

// Image returns the image the environment variable name sets, or def:
// where no registry can be reached, `.ci/setup` tags stand-ins built from
// Debian packages under the default names.
func Image(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// NoRegistryHint is said after an image that could not be used.
const NoRegistryHint = `where no registry is reachable, build the stand-in images first: .ci/setup`
