package templates

import (
	"encoding/json"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/simulator"
)

// TestFaultLabels: the faults table labels every fault the scorecard can
// report, the admin page's and the e2e test's, and nothing else.
func TestFaultLabels(t *testing.T) {
	all := []string{
		simulator.FaultNone, simulator.FaultReplicaCrash, simulator.FaultReplicaFreeze, simulator.FaultReplicaStop,
		simulator.FaultRedisPrimaryKill, simulator.FaultMemcachedRestart, simulator.FaultMemcachedFull, simulator.FaultConcurrentAdds,
		simulator.FaultDockerKill, simulator.FaultDockerStop, simulator.FaultDockerPause, simulator.FaultDockerDisconnect,
		simulator.FaultLBKill, simulator.FaultScaleIn, simulator.FaultRollingDeploy,
	}
	for _, f := range all {
		if info, ok := faults[f]; !ok || info.Label == "" || info.Description == "" {
			t.Errorf("fault %q: %+v, want a label and a description", f, info)
		}
	}
	if len(faults) != len(all) {
		t.Errorf("the faults table has %d faults, the simulator %d", len(faults), len(all))
	}
}

// TestScorecardPanel: the panel has its controls, an accessible progress
// bar, the matrix's mode columns from the modes table in the server's
// order, and the faults' labels for admin.js.
func TestScorecardPanel(t *testing.T) {
	m := sampleAdmin(true)
	d := render(t, AdminPage(m))
	panel := d.one("scorecard")

	if got := text(d.one("scorecard-run")); got == "" {
		t.Error("the run button has no text")
	}
	cancel := d.one("scorecard-cancel")
	if !hasAttr(cancel, "hidden") || !hasAttr(cancel, "disabled") {
		t.Error("the cancel button is shown before any run")
	}
	if got := attr(d.one("scorecard-output"), "data-state"); got != "idle" {
		t.Errorf("scorecard-output data-state %q, want idle", got)
	}
	bar := d.one("scorecard-progress")
	if attr(bar, "role") != "progressbar" || attr(bar, "aria-valuenow") != "0" || attr(bar, "aria-valuemax") != "100" || attr(bar, "aria-label") == "" {
		t.Errorf("scorecard-progress %v: want a labelled progressbar at 0 of 100", bar.Attr)
	}
	d.one("scorecard-json")
	d.one("scorecard-md")
	d.one("scorecard-runs")

	// The matrix: a caption, then a column header per mode, in the order
	// the server measures them, named and coloured from the modes table.
	matrix := d.one("scorecard-matrix")
	var caption bool
	var heads []*html.Node
	walk(matrix, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		caption = caption || n.Data == "caption" && text(n) != ""
		if n.Data == "th" && attr(n, "scope") == "col" && hasAttr(n, "data-mode") {
			heads = append(heads, n)
		}
	})
	if !caption {
		t.Error("the matrix has no caption")
	}
	if len(heads) != len(session.Modes) {
		t.Fatalf("%d mode columns, want %d", len(heads), len(session.Modes))
	}
	for i, th := range heads {
		mode := string(session.Modes[i])
		if got := attr(th, "data-mode"); got != mode {
			t.Errorf("column %d is %q, want %q", i, got, mode)
		}
		if got := text(th); got != modes[mode].Label {
			t.Errorf("column %s reads %q, want %q", mode, got, modes[mode].Label)
		}
		fills := elements(th, "fill")
		if len(fills) != 1 || attr(fills[0], "fill") != modes[mode].Color {
			t.Errorf("column %s: swatch %v, want %s", mode, fills, modes[mode].Color)
		}
	}

	var labels map[string]faultInfo
	if err := json.Unmarshal([]byte(attr(panel, "data-fault-labels")), &labels); err != nil {
		t.Fatalf("data-fault-labels: %v", err)
	}
	if labels[simulator.FaultReplicaCrash].Label != faults[simulator.FaultReplicaCrash].Label {
		t.Errorf("data-fault-labels %v lacks the faults table", labels)
	}
}

// TestScorecardPanelSignedOut: anyone may watch; only the admin may run.
func TestScorecardPanelSignedOut(t *testing.T) {
	d := render(t, AdminPage(sampleAdmin(false)))
	d.one("scorecard-matrix")
	d.none("scorecard-run")
	d.none("scorecard-cancel")
	if note := text(d.one("scorecard")); !strings.Contains(note, "Sign in as admin") {
		t.Errorf("the signed-out panel does not say how to run one: %q", note)
	}

	off := sampleAdmin(false)
	off.ControlsOff = true
	d = render(t, AdminPage(off))
	d.none("scorecard-run")
	if note := text(d.one("scorecard")); !strings.Contains(note, "ADMIN_PASSWORD") {
		t.Errorf("with the controls off the panel does not say why: %q", note)
	}
}
