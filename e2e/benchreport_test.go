package e2e

import (
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/sessiondemo/shop/templates"
)

// This file turns BenchmarkStack's numbers into what docs/performance.md shows:
// the table at 32 connections, the curve as a table and as an SVG chart,
// and where the machine's CPU went (the reference's table is in
// benchref_test.go).

// perfTable is the table at 32 connections: reads and writes, with the
// ratios the targets in docs/performance.md are stated in.
func perfTable(r map[string]perfResult) string {
	var sb strings.Builder
	sb.WriteString("| case | req/s | p50 ms | p99 ms | errors | ratio to sticky | ratio to baseline |\n|---|---|---|---|---|---|---|\n")
	row := func(name, label string, sticky, baseline float64) {
		x := r[name]
		fmt.Fprintf(&sb, "| %s | %.0f | %.2f | %.2f | %d | %.2f | %.2f |\n", label, x.rps, x.p50, x.p99, x.errors, x.rps/sticky, x.rps/baseline)
	}
	sticky, baseline := r["sticky"].rps, r["baseline"].rps
	row("replica", "no session, straight to one replica", sticky, baseline)
	row("pinned", "no session, through nginx to one replica", sticky, baseline)
	row("baseline", "no session (baseline), through nginx", sticky, baseline)
	for _, m := range []string{"sticky", "redis", "jwt", "memcached"} {
		row(m, m+" read", sticky, baseline)
	}
	for _, m := range []string{"sticky", "redis", "jwt", "memcached"} {
		row(m+" write", m+" write", r["sticky write"].rps, baseline)
	}
	return sb.String()
}

// perfCurveTable is req/s and p99 of every read case at every level.
func perfCurveTable(curve map[int]map[string]perfResult) string {
	var sb strings.Builder
	sb.WriteString("| case |")
	for _, n := range perfLevels {
		fmt.Fprintf(&sb, " %d conn req/s (p99 ms) |", n)
	}
	sb.WriteString("\n|---|" + strings.Repeat("---|", len(perfLevels)) + "\n")
	for _, c := range readCases {
		fmt.Fprintf(&sb, "| %s |", caseLabel(c.name))
		for _, n := range perfLevels {
			x := curve[n][c.name]
			fmt.Fprintf(&sb, " %.0f (%.1f) |", x.rps, x.p99)
		}
		sb.WriteString("\n")
	}
	return sb.String()
}

// perfPacedTable is every read case at half its rate at 32 connections:
// the rate asked for, the rate served, p50 and p99.
func perfPacedTable(paced, at32 map[string]perfResult) string {
	var sb strings.Builder
	sb.WriteString("| case | at 32 conn, req/s | paced to, req/s | served, req/s | p50 ms | p99 ms |\n|---|---|---|---|---|---|\n")
	for _, c := range readCases {
		x := paced[c.name]
		fmt.Fprintf(&sb, "| %s | %.0f | %.0f | %.0f | %.2f | %.2f |\n", caseLabel(c.name), at32[c.name].rps, at32[c.name].rps/2, x.rps, x.p50, x.p99)
	}
	return sb.String()
}

// caseLabel names a read case in the curve's table and the chart's
// legend.
func caseLabel(name string) string {
	switch name {
	case "replica":
		return "ping, one replica"
	case "pinned":
		return "ping, nginx, one replica"
	case "baseline":
		return "ping, nginx"
	}
	return name
}

// chartColors are the lines' colors, one per read case: the modes' are
// the pages' (templates.ModeColor).
var chartColors = map[string]string{
	"replica": "#9aa1b0", "pinned": "#15803d", "baseline": "#1d2230",
	"sticky": templates.ModeColor("sticky"), "redis": templates.ModeColor("redis"),
	"jwt": templates.ModeColor("jwt"), "memcached": templates.ModeColor("memcached"),
}

// perfChart draws the curve: req/s and p99 against the number of
// connections (a log scale), one line per read case, as a standalone SVG.
func perfChart(curve map[int]map[string]perfResult) string {
	const w, h, panelW, top, plotH = 1000, 310, 380, 40, 220
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="system-ui, sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&sb, `<rect width="%d" height="%d" fill="#fff"/>`+"\n", w, h)
	panel := func(x0 float64, title string, value func(perfResult) float64) {
		top := float64(top)
		maxV := 0.0
		for _, n := range perfLevels {
			for _, c := range readCases {
				maxV = max(maxV, value(curve[n][c.name]))
			}
		}
		maxV = niceCeil(maxV)
		xOf := func(i int) float64 {
			return x0 + 50 + (panelW-60)*math.Log2(float64(perfLevels[i]))/math.Log2(float64(perfLevels[len(perfLevels)-1]))
		}
		yOf := func(v float64) float64 { return top + plotH - plotH*v/maxV }
		fmt.Fprintf(&sb, `<text x="%.0f" y="%.0f" font-size="14" font-weight="600" fill="#1d2230">%s</text>`+"\n", x0+50, top-16, html.EscapeString(title))
		for k := 0; k <= 4; k++ {
			v := maxV * float64(k) / 4
			y := yOf(v)
			fmt.Fprintf(&sb, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#e2e5eb"/>`+"\n", x0+50, y, x0+panelW-10, y)
			fmt.Fprintf(&sb, `<text x="%.0f" y="%.1f" text-anchor="end" fill="#5a6274">%s</text>`+"\n", x0+44, y+4, strconv.FormatFloat(v, 'f', -1, 64))
		}
		for i, n := range perfLevels {
			fmt.Fprintf(&sb, `<text x="%.1f" y="%.0f" text-anchor="middle" fill="#5a6274">%d</text>`+"\n", xOf(i), top+plotH+18, n)
		}
		fmt.Fprintf(&sb, `<text x="%.0f" y="%.0f" text-anchor="middle" fill="#5a6274">concurrent connections</text>`+"\n", x0+50+(panelW-60)/2, top+plotH+36)
		for _, c := range readCases {
			var pts []string
			for i, n := range perfLevels {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", xOf(i), yOf(value(curve[n][c.name]))))
			}
			dash := ""
			switch {
			case c.target == toReplica:
				dash = ` stroke-dasharray="5 4"`
			case c.pinned:
				dash = ` stroke-dasharray="2 3"`
			}
			fmt.Fprintf(&sb, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), chartColors[c.name], dash)
			for _, p := range pts {
				xy := strings.Split(p, ",")
				fmt.Fprintf(&sb, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`+"\n", xy[0], xy[1], chartColors[c.name])
			}
		}
	}
	panel(0, "requests per second", func(r perfResult) float64 { return r.rps })
	panel(panelW+20, "p99 latency, ms", func(r perfResult) float64 { return r.p99 })
	// The legend, on the right.
	for i, c := range readCases {
		y := float64(top + 10 + 20*i)
		fmt.Fprintf(&sb, `<line x1="%d" y1="%.0f" x2="%d" y2="%.0f" stroke="%s" stroke-width="3"/>`+"\n", 2*panelW+40, y, 2*panelW+58, y, chartColors[c.name])
		fmt.Fprintf(&sb, `<text x="%d" y="%.0f" fill="#1d2230">%s</text>`+"\n", 2*panelW+62, y+4, html.EscapeString(caseLabel(c.name)))
	}
	sb.WriteString("</svg>\n")
	return sb.String()
}

// niceCeil rounds v up to an axis maximum whose quarters are round
// numbers: 1, 1.2, 1.6, 2, 2.4, 4, 6 or 8 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.2, 1.6, 2, 2.4, 4, 6, 8, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// cpuSnapshot is the CPU time this machine has used so far, in clock
// ticks (Linux /proc; empty elsewhere). Containers' processes are visible
// from the host, so it shows how the load splits between the client,
// nginx, the replicas, Redis and Docker.
type cpuSnapshot struct {
	// byCommand is the user and system time of each running process,
	// summed by command name. A process is also charged for the
	// interrupts that arrived while it ran.
	byCommand map[string]float64
	// busy is the machine's time not idle: that of the running processes,
	// of those that have ended since (a health probe is a process that
	// runs for a few milliseconds) and of interrupts on an idle core.
	busy float64
	// interrupts is the machine's irq and softirq time, a part of busy
	// (much of the network stack runs there).
	interrupts float64
}

// cpuNow takes a cpuSnapshot.
func cpuNow() cpuSnapshot {
	snap := cpuSnapshot{byCommand: map[string]float64{}}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		// cpu  user nice system idle iowait irq softirq steal ...
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		if len(f) > 8 && f[0] == "cpu" {
			tick := func(i int) float64 { v, _ := strconv.ParseFloat(f[i], 64); return v }
			snap.busy = tick(1) + tick(2) + tick(3) + tick(6) + tick(7) + tick(8)
			snap.interrupts = tick(6) + tick(7)
		}
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open {
			continue
		}
		fields := strings.Fields(s[closing+1:])
		if len(fields) < 13 {
			continue
		}
		utime, _ := strconv.ParseFloat(fields[11], 64)
		stime, _ := strconv.ParseFloat(fields[12], 64)
		snap.byCommand[s[open+1:closing]] += utime + stime
	}
	return snap
}

// cpuShares describes the CPU used between two snapshots as shares of the
// machine's busy time: the eight busiest commands, biggest first, then
// the rest (processes that ended in between, interrupts on an idle core,
// the smaller commands) and the interrupt time within all of it.
func cpuShares(before, after cpuSnapshot) string {
	type use struct {
		name  string
		ticks float64
	}
	var uses []use
	for name, t := range after.byCommand {
		if d := t - before.byCommand[name]; d > 0 {
			uses = append(uses, use{name, d})
		}
	}
	total := after.busy - before.busy
	if total <= 0 || len(uses) == 0 {
		return "not measured"
	}
	sort.Slice(uses, func(i, j int) bool { return uses[i].ticks > uses[j].ticks })
	var parts []string
	rest := total
	for _, u := range uses[:min(8, len(uses))] {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", u.name, 100*u.ticks/total))
		rest -= u.ticks
	}
	parts = append(parts, fmt.Sprintf("the rest (smaller commands, processes that ended in between such as health probes) %.0f%%", 100*max(0, rest)/total))
	return fmt.Sprintf("%s; interrupts (irq, softirq: much of the network stack), charged to whatever they interrupted, were %.0f%% of it", strings.Join(parts, ", "), 100*(after.interrupts-before.interrupts)/total)
}
