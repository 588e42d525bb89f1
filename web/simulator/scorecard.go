package simulator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sessiondemo/shop/web/session"
)

// The scorecard: every fault, one after another, while simulated shoppers
// shop in every mode at once through a load balancer; per fault and mode
// one Cell of what was measured, the promise of the mode × event table for
// it, and whether the measurement kept the promise. The admin page runs
// the faults a replica can cause from inside; the e2e test adds those only
// Docker can cause. Both measure with RunScorecard.

// The faults' names.
const (
	FaultNone             = "none"               // nothing: the baseline row
	FaultReplicaCrash     = "replica-crash"      // SIGKILL of the process serving sticky shoppers
	FaultReplicaFreeze    = "replica-freeze"     // the hang control: it holds every request
	FaultReplicaStop      = "replica-stop"       // a graceful stop, SIGTERM
	FaultRedisPrimaryKill = "redis-primary-kill" // SHUTDOWN NOSAVE NOW of the Redis primary
	FaultMemcachedRestart = "memcached-restart"  // one Memcached server's data gone
	FaultMemcachedFull    = "memcached-full"     // the servers filled: eviction
	FaultConcurrentAdds   = "concurrent-adds"    // 20 adds at once from one browser

	// From outside (e2e): what only Docker can do.
	FaultDockerKill       = "docker-kill"       // docker kill of a replica
	FaultDockerStop       = "docker-stop"       // docker stop of a replica
	FaultDockerPause      = "docker-pause"      // docker pause of a replica
	FaultDockerDisconnect = "docker-disconnect" // docker network disconnect of a replica
	FaultLBKill           = "lb-kill"           // docker kill of the load balancer the shoppers use
	FaultScaleIn          = "scale-in"          // docker compose --scale app=N-1
	FaultRollingDeploy    = "rolling-deploy"    // compose/rolling-deploy
)

// Fault is one row of the scorecard.
type Fault struct {
	// Name is one of the Fault* names; it picks the row's promises.
	Name string
	// Inject causes the fault while the shoppers shop and returns once it
	// is in place. victim is the replica that holds the most sticky
	// shoppers' sessions, the one a replica fault should hit. nil is no
	// fault.
	Inject func(ctx context.Context, victim string) (Injected, error)
	// Measure, when set, replaces the shoppers: it measures the fault in
	// one mode by itself (concurrent-adds). See ConcurrentCell.
	Measure func(ctx context.Context, mode session.Mode) (Cell, error)
	// During, when set, is how long this fault lasts before heal, in
	// place of ScorecardConfig.During.
	During time.Duration
	// Settle, when set, waits after the fault until the stack is whole
	// again (victim back, say), so that the next row starts from the same
	// place.
	Settle func(ctx context.Context, victim string) error
}

// Injected is what a Fault's Inject did.
type Injected struct {
	// Hit is the replica the fault hit when not the victim it was given
	// (a scale-in removes the replica Compose picks); "" is the victim.
	Hit string
	// Heal, when not nil, undoes the fault after ScorecardConfig.During;
	// a fault may also heal by itself (a crashed replica comes back).
	Heal func(context.Context) error
}

// ScorecardConfig is what RunScorecard runs.
type ScorecardConfig struct {
	// Target is the load balancer's base URL; Fallbacks are the others.
	// A shopper whose request gets no answer at all (the load balancer is
	// gone) sends the next one to the next address, as a browser moves to
	// the next address of a name.
	Target    string
	Fallbacks []string
	// Client is the base of every shopper's client (each gets its own
	// cookie jar); nil is a client with a 10 s timeout.
	Client *http.Client
	// Modes are the modes measured, all at once.
	Modes []session.Mode
	// Faults are the rows, in order.
	Faults []Fault
	// Shoppers is the number of shoppers per mode (default 4).
	Shoppers int
	// Before is how long they shop before the fault (default 2 s), During
	// how long the fault lasts before heal (default 5 s), After how long
	// they shop after it (default 3 s).
	Before, During, After time.Duration
	// Pace is the pause between a shopper's requests (default 150 ms).
	Pace time.Duration
	// Spare is a replica no fault may hit: the one running the scorecard.
	Spare string
}

func (c ScorecardConfig) withDefaults() ScorecardConfig {
	c.Shoppers = cmp.Or(c.Shoppers, 4)
	c.Before = cmp.Or(c.Before, 2*time.Second)
	c.During = cmp.Or(c.During, 5*time.Second)
	c.After = cmp.Or(c.After, 3*time.Second)
	c.Pace = cmp.Or(c.Pace, 150*time.Millisecond)
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 10 * time.Second}
	}
	return c
}

// Cell is one mode under one fault.
type Cell struct {
	Fault string       `json:"fault"`
	Mode  session.Mode `json:"mode"`
	// Requests counts the shoppers' requests, Failed those answered with an
	// error or not at all (a keyed add is sent again until acknowledged:
	// each try counts).
	Requests int `json:"requests"`
	Failed   int `json:"failed"`
	// Sessions counts the shoppers' sessions; SessionsLost those the
	// server said it no longer had (session_event "lost" or "expired", or
	// another session in place of the shopper's).
	Sessions     int `json:"sessions"`
	SessionsLost int `json:"sessions_lost"`
	// AddsAcked counts the adds the server acknowledged; AddsLost those
	// missing from the carts at the end; AddsDuplicated the items in the
	// carts beyond what was acknowledged (and beyond the adds never
	// answered, which the server may or may not have applied).
	AddsAcked      int `json:"adds_acked"`
	AddsLost       int `json:"adds_lost"`
	AddsDuplicated int `json:"adds_duplicated"`
	// LostInKept counts the adds lost from sessions the server did not
	// say were lost: a loss nobody was told about.
	LostInKept int `json:"adds_lost_unexplained"`
	// OnVictim counts the sessions that lived on the victim replica
	// (sticky mode).
	OnVictim int `json:"sessions_on_victim"`
	// LongestMS is the longest request, in milliseconds; Slow counts the
	// requests that took more than a second.
	LongestMS int64 `json:"longest_ms"`
	Slow      int   `json:"slow"`
	// RecoveryMS is the time from the fault until the mode answered
	// normally again: until the first answer, quick and right, after the
	// last failed (or slower than a second) request since the fault began;
	// 0 when none failed.
	RecoveryMS int64 `json:"recovery_ms"`
	// Expected is the promise for this mode under this fault; Verdict is
	// "expected" when the measurement kept it, else "unexpected"; Why
	// says what was measured against it.
	Expected string `json:"expected"`
	Verdict  string `json:"verdict"`
	Why      string `json:"why"`
	// Failures are a few of the failed requests, what each got.
	Failures []string `json:"failures,omitempty"`
	// Error is set when the row could not be measured.
	Error string `json:"error,omitempty"`
}

// maxFailureSamples is how many failed requests a cell quotes.
const maxFailureSamples = 3

// Verdicts.
const (
	VerdictExpected   = "expected"
	VerdictUnexpected = "unexpected"
)

// slowAnswer is how long an answer may take and still count as normal.
const slowAnswer = time.Second

// RunScorecard runs every fault of cfg in turn and calls cell (if not
// nil) with each cell as its fault ends, with the share of the run done
// (0..1). It returns every cell, in fault then mode order. A canceled ctx
// ends the run after the current fault's cells, with ctx's error.
func RunScorecard(ctx context.Context, cfg ScorecardConfig, cell func(c Cell, done float64)) ([]Cell, error) {
	cfg = cfg.withDefaults()
	if cfg.Target == "" || len(cfg.Modes) == 0 || len(cfg.Faults) == 0 {
		return nil, errors.New("the scorecard needs a target, modes and faults")
	}
	var cells []Cell
	for i, f := range cfg.Faults {
		if ctx.Err() != nil {
			return cells, ctx.Err()
		}
		row, victim := runFault(ctx, cfg, f)
		for _, c := range row {
			judge(&c)
			cells = append(cells, c)
			if cell != nil {
				cell(c, float64(i+1)/float64(len(cfg.Faults)))
			}
		}
		if f.Settle != nil && ctx.Err() == nil {
			if err := f.Settle(ctx, victim); err != nil && ctx.Err() == nil {
				return cells, fmt.Errorf("after %s the stack did not settle: %w", f.Name, err)
			}
		}
	}
	return cells, ctx.Err()
}

// runFault measures one fault in every mode; it returns the cells and the
// replica the fault hit.
func runFault(ctx context.Context, cfg ScorecardConfig, f Fault) ([]Cell, string) {
	cells := make([]Cell, len(cfg.Modes))
	if f.Measure != nil {
		for i, m := range cfg.Modes {
			c, err := f.Measure(ctx, m)
			c.Fault, c.Mode = f.Name, m
			if err != nil {
				c.Error = err.Error()
			}
			cells[i] = c
		}
		return cells, ""
	}
	during := cmp.Or(f.During, cfg.During)
	phaseCtx, stop := context.WithCancel(ctx)
	defer stop()
	var shoppers [][]*shopper
	var wg sync.WaitGroup
	for _, m := range cfg.Modes {
		var ss []*shopper
		for range cfg.Shoppers {
			s := newShopper(cfg, m)
			ss = append(ss, s)
			wg.Go(func() { s.shop(phaseCtx) })
		}
		shoppers = append(shoppers, ss)
	}
	var injectErr error
	var faultAt time.Time
	var victim string
	if sleep(ctx, cfg.Before); ctx.Err() == nil {
		victim = stickyVictim(shoppers, cfg.Modes, cfg.Spare)
		faultAt = time.Now()
		if f.Inject != nil {
			in, err := f.Inject(ctx, victim)
			injectErr = err
			victim = cmp.Or(in.Hit, victim)
			if err == nil && in.Heal != nil {
				sleep(ctx, during-time.Since(faultAt))
				if err := in.Heal(ctx); err != nil {
					injectErr = fmt.Errorf("healing %s: %w", f.Name, err)
				}
			}
		}
		sleep(ctx, during-time.Since(faultAt))
		sleep(ctx, cfg.After)
	}
	stop()
	wg.Wait()
	for i, m := range cfg.Modes {
		c := Cell{Fault: f.Name, Mode: m, Sessions: len(shoppers[i])}
		for _, s := range shoppers[i] {
			s.finish(ctx)
			s.addTo(&c, faultAt, victim)
		}
		if injectErr != nil {
			c.Error = injectErr.Error()
		}
		cells[i] = c
	}
	return cells, victim
}

// stickyVictim is the replica other than spare that holds the most
// sticky shoppers' sessions (then the most shoppers' first answers).
func stickyVictim(shoppers [][]*shopper, modes []session.Mode, spare string) string {
	count := map[string]int{}
	for i, m := range modes {
		for _, s := range shoppers[i] {
			r := s.firstReplica()
			switch {
			case r == "" || r == spare:
			case m == session.Sticky:
				count[r] += 100
			default:
				count[r]++
			}
		}
	}
	names := make([]string, 0, len(count))
	for n := range count {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if count[names[i]] != count[names[j]] {
			return count[names[i]] > count[names[j]]
		}
		return names[i] < names[j]
	})
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

// ConcurrentCell measures concurrent-adds in one mode: n adds at once
// from one browser (ConcurrentAdds), as a cell.
func ConcurrentCell(ctx context.Context, target string, mode session.Mode, n int, client *http.Client) (Cell, error) {
	began := time.Now()
	r, err := ConcurrentAdds(ctx, target, mode, n, false, client)
	c := Cell{Fault: FaultConcurrentAdds, Mode: mode, Requests: 2 + n, Sessions: 1, LongestMS: time.Since(began).Milliseconds()}
	if err != nil {
		return c, err
	}
	for status, k := range r.Statuses {
		if status != http.StatusOK {
			c.Failed += k
		}
	}
	c.AddsAcked = 1 + r.Acknowledged
	c.AddsLost = r.Lost()
	c.AddsDuplicated = max(0, r.InCart-c.AddsAcked)
	c.LostInKept = c.AddsLost
	return c, nil
}

// ScorecardMarkdown is the matrix as a Markdown table: a row per fault, a
// column per mode, each cell its CellSummary; an unexpected cell is in
// bold.
func ScorecardMarkdown(cells []Cell, faults []string, modes []session.Mode) string {
	byKey := map[string]Cell{}
	for _, c := range cells {
		byKey[c.Fault+"|"+string(c.Mode)] = c
	}
	var b strings.Builder
	b.WriteString("| fault |")
	for _, m := range modes {
		fmt.Fprintf(&b, " %s |", m)
	}
	b.WriteString("\n|---|")
	for range modes {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, f := range faults {
		fmt.Fprintf(&b, "| %s |", f)
		for _, m := range modes {
			c, ok := byKey[f+"|"+string(m)]
			if !ok {
				b.WriteString(" (not run) |")
				continue
			}
			text := CellSummary(c)
			if c.Verdict == VerdictUnexpected {
				text = "**" + text + "**"
			}
			fmt.Fprintf(&b, " %s |", text)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// CellSummary is a cell in one line: ✓ (as expected) or ✗ (unexpected),
// the adds kept of those acknowledged, then only what is not nothing:
// sessions lost, adds applied twice, failed requests; the longest request,
// and how long until the mode answered normally again.
func CellSummary(c Cell) string {
	if c.Error != "" {
		return "✗ not measured: " + c.Error
	}
	parts := []string{fmt.Sprintf("%d/%d adds", c.AddsAcked-c.AddsLost, c.AddsAcked)}
	if c.SessionsLost > 0 {
		parts = append(parts, fmt.Sprintf("%d/%d sessions lost", c.SessionsLost, c.Sessions))
	}
	if c.AddsDuplicated > 0 {
		parts = append(parts, fmt.Sprintf("%d applied twice", c.AddsDuplicated))
	}
	if c.Failed > 0 {
		parts = append(parts, fmt.Sprintf("%d/%d failed", c.Failed, c.Requests))
	}
	parts = append(parts, "longest "+seconds(c.LongestMS))
	if c.RecoveryMS > 0 {
		parts = append(parts, "back in "+seconds(c.RecoveryMS))
	}
	mark := "✓"
	if c.Verdict == VerdictUnexpected {
		mark = "✗"
	}
	return mark + " " + strings.Join(parts, " · ")
}

// seconds writes milliseconds as "45 ms" or "1.8 s".
func seconds(ms int64) string {
	if ms < 1000 {
		return fmt.Sprintf("%d ms", ms)
	}
	return fmt.Sprintf("%.1f s", float64(ms)/1000)
}
