package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/simulator"
)

// TestScorecard runs the admin page's scorecard through its API (every
// fault a replica can cause from inside, every mode at once), then the
// faults only Docker can cause, measured by the same code
// (simulator.RunScorecard) from here: docker kill, stop, pause and network
// disconnect of the replica that holds the most sticky sessions, the load
// balancer killed (the shoppers move to the other, as a browser moves to
// a name's next address), a scale-in and a rolling deploy. Every cell must
// keep the promise of the mode × event table. SCORECARD_DOCS=1 writes the
// whole matrix, with the machine and the date, into the README.
func TestScorecard(t *testing.T) {
	needStack(t)
	t.Cleanup(func() { waitStackHealthy(t) })
	waitRedisSettled(t)
	began := time.Now()

	// Inside: the admin's scorecard, started from the page as a person
	// does, and read through the API.
	admin, base := newBrowser(t)
	page := startBrowser(t, admin, 1280, 1000, 4*time.Minute)
	err := chromedp.Do(page,
		signInToAdmin(base),
		chromedp.WaitVisible(byTestID("scorecard-run")),
		click(byTestID("scorecard-run")),
		chromedp.WaitReady(chromedp.CSS(`[data-testid="scorecard-output"][data-state="running"][data-run-id]`)),
	)
	if err != nil {
		t.Fatalf("sign in on the admin page and press Run on the scorecard: %v", err)
	}
	id, err := chromedp.Run(page, chromedp.Evaluate[string](`document.querySelector('[data-testid="scorecard-output"]').dataset.runId`))
	if err != nil || id == "" {
		t.Fatalf("the page names no run: %q %v", id, err)
	}
	if status := adminDo(t, "POST", "/api/admin/scorecard", "{}", true, nil); status != 409 {
		t.Errorf("a second scorecard while one runs = %d, want 409", status)
	}
	if status := adminDo(t, "POST", "/api/admin/scorecard", "{}", false, nil); status != 404 {
		t.Errorf("a scorecard without the admin credentials = %d, want 404, as every control", status)
	}
	var card struct {
		State    string           `json:"state"`
		Progress float64          `json:"progress"`
		Faults   []string         `json:"faults"`
		Modes    []session.Mode   `json:"modes"`
		Cells    []simulator.Cell `json:"cells"`
		Error    string           `json:"error"`
	}
	var raw json.RawMessage
	waitFor(t, 4*time.Minute, "the admin's scorecard to finish", func() bool {
		if adminDo(t, "GET", "/api/admin/scorecard/"+id, "", false, &raw) != 200 {
			return false
		}
		if err := json.Unmarshal(raw, &card); err != nil {
			t.Fatal(err)
		}
		return card.State != "running"
	})
	inside := time.Since(began)
	for _, c := range card.Cells {
		t.Logf("%s × %s: %s (%s)", c.Fault, c.Mode, c.Verdict, c.Why)
	}
	if card.State != "done" || card.Progress != 1 || len(card.Cells) != len(card.Faults)*len(card.Modes) {
		t.Fatalf("the scorecard ended %s (%s), progress %.2f, %d cells for %d faults × %d modes", card.State, card.Error, card.Progress, len(card.Cells), len(card.Faults), len(card.Modes))
	}
	var fields struct {
		Cells []map[string]any `json:"cells"`
	}
	json.Unmarshal(raw, &fields)
	for _, key := range []string{"fault", "mode", "requests", "failed", "sessions", "sessions_lost", "adds_acked", "adds_lost", "adds_duplicated", "longest_ms", "recovery_ms", "expected", "verdict", "why"} {
		if _, ok := fields.Cells[0][key]; !ok {
			t.Errorf("a cell has no %q: %v", key, fields.Cells[0])
		}
	}
	// The page drew the same run: every cell, with its verdict.
	err = chromedp.Do(page,
		chromedp.WaitReady(chromedp.CSS(`[data-testid="scorecard-output"][data-state="done"]`)),
		saveShot(t, screenshotDir(t), "admin-scorecard", chromedp.Screenshot(byTestID("scorecard"))),
	)
	if err != nil {
		t.Fatalf("the page to show the finished scorecard: %v", err)
	}
	drawn, _ := chromedp.Run(page, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="scorecard-cell"][data-verdict="expected"], [data-testid="scorecard-cell"][data-verdict="unexpected"]').length`))
	if drawn != len(card.Cells) {
		t.Errorf("the page drew %d measured cells, the run has %d", drawn, len(card.Cells))
	}
	for _, want := range []string{simulator.FaultNone, simulator.FaultReplicaCrash, simulator.FaultReplicaFreeze, simulator.FaultReplicaStop, simulator.FaultRedisPrimaryKill, simulator.FaultMemcachedRestart, simulator.FaultMemcachedFull, simulator.FaultConcurrentAdds} {
		if !slices.Contains(card.Faults, want) {
			t.Errorf("the admin's scorecard has no %s row: %v", want, card.Faults)
		}
	}
	waitStackHealthy(t)

	// Outside: what only Docker can do, measured by the same code.
	outsideStart := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := simulator.ScorecardConfig{
		Target: stack.lbURL, Fallbacks: []string{stack.lb2URL}, Client: simClient(),
		Modes: session.Modes, Faults: dockerFaults(t),
		Before: 1500 * time.Millisecond, During: 4 * time.Second, After: 2500 * time.Millisecond,
	}
	outside, err := simulator.RunScorecard(ctx, cfg, func(c simulator.Cell, done float64) {
		t.Logf("%s × %s: %s (%s)", c.Fault, c.Mode, c.Verdict, c.Why)
	})
	if err != nil {
		t.Fatalf("the outside faults: %v", err)
	}
	cells := append(card.Cells, outside...)
	faults := card.Faults
	for _, f := range cfg.Faults {
		faults = append(faults, f.Name)
	}
	for _, c := range cells {
		if c.Verdict != simulator.VerdictExpected {
			t.Errorf("%s × %s is unexpected: promised %q; %s %s", c.Fault, c.Mode, c.Expected, c.Why, c.Error)
		}
	}
	table := simulator.ScorecardMarkdown(cells, faults, card.Modes)
	t.Logf("the scorecard: inside %s, outside %s:\n%s", inside.Round(time.Second), time.Since(outsideStart).Round(time.Second), table)
	if os.Getenv("SCORECARD_DOCS") == "1" && !t.Failed() {
		header := fmt.Sprintf("Measured by `SCORECARD_DOCS=1 go test ./e2e -run 'TestScorecard$'` on %s, %d cores, %s; %s in all.\n\n",
			time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.GOOS, time.Since(began).Round(time.Second))
		if err := replaceBetweenMarkers("../README.md", "scorecard", header+table); err != nil {
			t.Error(err)
		}
	}
}

// outsideDuring is how long a replica stays broken from outside: longer
// than nginx's fail_timeout (5 s), after which it tries the broken replica
// again, which must cost again only a few requests a wait.
const outsideDuring = 6 * time.Second

// dockerFaults are the scorecard's rows that only Docker can cause.
func dockerFaults(t *testing.T) []simulator.Fault {
	back := func(ctx context.Context, victim string) error {
		waitServing(t, victim, 60*time.Second)
		return nil
	}
	healed := func(heal func()) simulator.Injected {
		return simulator.Injected{Heal: func(context.Context) error { heal(); return nil }}
	}
	return []simulator.Fault{
		{Name: simulator.FaultDockerKill, During: outsideDuring, Settle: back, Inject: func(ctx context.Context, victim string) (simulator.Injected, error) {
			killContainer(t, victim)
			return healed(func() { startContainer(t, victim) }), nil
		}},
		{Name: simulator.FaultDockerStop, During: outsideDuring, Settle: back, Inject: func(ctx context.Context, victim string) (simulator.Injected, error) {
			stopContainer(t, victim, 10*time.Second)
			return healed(func() { startContainer(t, victim) }), nil
		}},
		{Name: simulator.FaultDockerPause, During: outsideDuring, Settle: back, Inject: func(ctx context.Context, victim string) (simulator.Injected, error) {
			pauseContainer(t, victim)
			return healed(func() { unpauseContainer(t, victim) }), nil
		}},
		{Name: simulator.FaultDockerDisconnect, During: outsideDuring, Settle: back, Inject: func(ctx context.Context, victim string) (simulator.Injected, error) {
			return healed(disconnectContainer(t, victim)), nil
		}},
		{Name: simulator.FaultScaleIn, Inject: func(ctx context.Context, _ string) (simulator.Injected, error) {
			before := replicas(t)
			composeCLI(t, "up", "-d", "--no-recreate", "--no-build", "--scale", fmt.Sprintf("app=%d", len(before)-1), "app")
			after := replicas(t)
			for _, r := range before {
				if !slices.Contains(after, r) {
					return simulator.Injected{Hit: r}, nil
				}
			}
			return simulator.Injected{}, fmt.Errorf("after a scale-in %v still run", after)
		}, Settle: func(ctx context.Context, _ string) error {
			scaleTo(t, 3)
			return nil
		}},
		{Name: simulator.FaultRollingDeploy, Inject: func(ctx context.Context, _ string) (simulator.Injected, error) {
			ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "../compose/rolling-deploy", "--no-build")
			cmd.Env = stackEnv()
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
			cmd.WaitDelay = 5 * time.Second
			if out, err := cmd.CombinedOutput(); err != nil {
				return simulator.Injected{}, fmt.Errorf("compose/rolling-deploy: %v\n%s", err, strings.TrimSpace(string(out)))
			}
			return simulator.Injected{}, nil
		}, Settle: func(ctx context.Context, _ string) error {
			waitStackHealthy(t)
			return nil
		}},
		// Last: the shoppers move to lb2 when lb refuses, and stay there;
		// lb comes back on another host port, which the shoppers of a row
		// after it would not know.
		{Name: simulator.FaultLBKill, Inject: func(ctx context.Context, _ string) (simulator.Injected, error) {
			killContainer(t, "lb")
			return healed(func() { startLB(t) }), nil
		}},
	}
}
