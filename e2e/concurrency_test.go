package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/sessiondemo/shop/web/simulator"
)

// TestNaiveVersusSafeWrites: 20 adds of one browser at once through nginx,
// in redis mode with the safe write (WATCH, compare, MULTI; the loser of a
// race reloads and reapplies) and with the naive one (load, change, SET
// the whole session, as rbcervilla/redisstore does on its own). Safe keeps
// all 21 items; naive loses some. sticky and jwt are measured and logged.
func TestNaiveVersusSafeWrites(t *testing.T) {
	needStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n = 20

	safe, err := simulator.ConcurrentAdds(ctx, stack.lbURL, "redis", n, false, simClient())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("redis safe: %d sent, %d acknowledged, %d of %d in the cart (%d lost), answers %v, replicas %v",
		safe.Sent, safe.Acknowledged, safe.InCart, 1+safe.Acknowledged, safe.Lost(), safe.Statuses, safe.Replicas)
	if safe.Acknowledged != n || safe.InCart != n+1 {
		t.Errorf("redis safe: %d acknowledged, %d in the cart; want %d and %d: the safe write loses nothing", safe.Acknowledged, safe.InCart, n, n+1)
	}
	if safe.WriteStrategy != "safe" {
		t.Errorf("redis safe: the replicas reported write strategy %q, want safe", safe.WriteStrategy)
	}
	if len(safe.Replicas) < 2 {
		t.Errorf("redis safe: all adds on %v; the test wants them spread over the replicas", safe.Replicas)
	}

	// A lost update needs two requests to load the same state before
	// either saves. 20 requests fired at once almost always overlap like
	// that, but nothing forces them to: nginx, docker-proxy and the
	// replicas may happen to serve them one after another (each load,
	// change and SET done before the next load), and then the naive write
	// loses nothing, by luck. So a run without a loss is repeated, up to 3
	// times, before the test fails.
	const tries = 3
	var naive simulator.ConcurrentResult
	for try := 1; try <= tries; try++ {
		naive, err = simulator.ConcurrentAdds(ctx, stack.lbURL, "redis", n, true, simClient())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("redis naive (try %d): %d sent, %d acknowledged, %d of %d in the cart (%d lost), answers %v, replicas %v",
			try, naive.Sent, naive.Acknowledged, naive.InCart, 1+naive.Acknowledged, naive.Lost(), naive.Statuses, naive.Replicas)
		if naive.WriteStrategy != "naive" {
			t.Fatalf("redis naive: the replicas reported write strategy %q, want naive", naive.WriteStrategy)
		}
		if naive.Lost() > 0 {
			break
		}
	}
	if naive.Acknowledged != n {
		t.Errorf("redis naive: %d of %d adds acknowledged; the naive write never conflicts, so all should be", naive.Acknowledged, n)
	}
	if naive.Lost() == 0 {
		t.Errorf("redis naive: no add lost in %d tries of %d concurrent adds; the naive write should lose updates", tries, n)
	}

	for _, mode := range []string{"sticky", "jwt"} {
		res, err := simulator.ConcurrentAdds(ctx, stack.lbURL, mode, n, false, simClient())
		if err != nil {
			t.Errorf("%s: %v", mode, err)
			continue
		}
		t.Logf("%s: %d sent, %d acknowledged, %d of %d in the cart (%d lost), answers %v, replicas %v",
			mode, res.Sent, res.Acknowledged, res.InCart, 1+res.Acknowledged, res.Lost(), res.Statuses, res.Replicas)
		if mode == "sticky" && (res.Lost() != 0 || res.Acknowledged != n) {
			t.Errorf("sticky: %d acknowledged, %d lost; want all %d acknowledged and none lost", res.Acknowledged, res.Lost(), n)
		}
	}
}

// TestSimulatorSpread runs the traffic simulator briefly through nginx.
// In redis and jwt mode nginx spreads the requests round robin: no replica
// serves more than 1.2 times the mean, and no cart loses an acknowledged
// add. In sticky mode with long sessions at different paces, each session
// stays on its replica and the replicas' loads drift apart: logged, not
// asserted.
func TestSimulatorSpread(t *testing.T) {
	needStack(t)
	for _, tc := range []struct {
		mode, affinity, sessions string
		assert                   bool
	}{
		{"redis", "", simulator.ProfileShort, true},
		{"jwt", "", simulator.ProfileShort, true},
		{"sticky", "cookie", simulator.ProfileLong, false},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cfg := simulator.Config{
				Target: stack.lbURL, Clients: 30, Mode: tc.mode, Affinity: tc.affinity, Sessions: tc.sessions,
				MaxRequests: 400, Duration: 20 * time.Second, Replicas: replicaNames, Client: simClient(),
			}
			res, err := simulator.Run(ctx, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s/%s: %d requests (%d errors) in %s; requests max/mean %.2f, sessions max/mean %.2f; carts %+v, %d adds lost",
				tc.mode, tc.sessions, res.Requests, res.Errors, res.Elapsed.Round(time.Millisecond), res.RequestsMaxMean, res.SessionsMaxMean, res.Carts, res.LostAdds)
			for _, rl := range res.PerReplica {
				t.Logf("  %s: %d requests, %d sessions began, %d live at the end", rl.Replica, rl.Requests, rl.Sessions, rl.LiveSessions)
			}
			if len(res.ErrorSamples) > 0 {
				t.Logf("  error samples: %q", res.ErrorSamples)
			}
			if res.Requests > cfg.MaxRequests {
				t.Errorf("%d requests, more than the budget of %d", res.Requests, cfg.MaxRequests)
			}
			if res.Carts.Checked == 0 {
				t.Errorf("no cart was checked")
			}
			if !tc.assert {
				return
			}
			if res.RequestsMaxMean > 1.2 {
				t.Errorf("requests max/mean %.2f, want at most 1.2 with round robin", res.RequestsMaxMean)
			}
			if res.Carts.Lost != 0 || res.LostAdds != 0 {
				t.Errorf("%d carts lost %d acknowledged adds; %s mode keeps them", res.Carts.Lost, res.LostAdds, tc.mode)
			}
			if res.Errors != 0 {
				t.Errorf("%d errors: %q", res.Errors, res.ErrorSamples)
			}
		})
	}
}
