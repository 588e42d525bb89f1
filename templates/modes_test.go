package templates

import (
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/sessiondemo/shop/static"
	"github.com/sessiondemo/shop/web/session"
)

// TestModesCoverSessionModes: the modes table has a label, an explanation
// and a colour for every mode the server knows, and nothing else.
func TestModesCoverSessionModes(t *testing.T) {
	for _, m := range session.Modes {
		info, ok := modes[string(m)]
		if !ok {
			t.Errorf("mode %q is not in the modes table", m)
			continue
		}
		if info.Label == "" || info.Description == "" || !regexp.MustCompile(`^#[0-9a-f]{6}$`).MatchString(info.Color) {
			t.Errorf("mode %q: %+v, want a label, a description and a colour", m, info)
		}
	}
	if len(modes) != len(session.Modes) {
		t.Errorf("the modes table has %d modes, the server %d", len(modes), len(session.Modes))
	}
	if got := modeName("nosuch"); got != "nosuch" {
		t.Errorf("modeName of an unknown mode = %q, want its value", got)
	}
}

// TestReplicaPalette: the stylesheet has a class for each of the
// replicaColors colours replicaClass hands out, and no more.
func TestReplicaPalette(t *testing.T) {
	css, err := fs.ReadFile(static.FS, "css/shop.css")
	if err != nil {
		t.Fatal(err)
	}
	found := map[int]bool{}
	for _, m := range regexp.MustCompile(`\.replica-c(\d+)\s*\{`).FindAllStringSubmatch(string(css), -1) {
		k, _ := strconv.Atoi(m[1])
		found[k] = true
	}
	for k := range replicaColors {
		if !found[k] {
			t.Errorf("shop.css has no .replica-c%d", k)
		}
	}
	if len(found) != replicaColors {
		t.Errorf("shop.css has %d replica colours, replicaClass hands out %d", len(found), replicaColors)
	}
}

// elements returns the elements under n that have the attribute key.
func elements(n *html.Node, key string) []*html.Node {
	var out []*html.Node
	walk(n, func(n *html.Node) {
		if n.Type == html.ElementNode && hasAttr(n, key) {
			out = append(out, n)
		}
	})
	return out
}

func TestAdminPage(t *testing.T) {
	m := sampleAdmin(false)
	d := render(t, AdminPage(m))

	// Each replica box carries its colour class for admin.js to read.
	boxes := elements(d.root, "data-replica-class")
	if len(boxes) != len(m.Topology.Replicas) {
		t.Fatalf("%d elements carry data-replica-class, want one per replica (%d)", len(boxes), len(m.Topology.Replicas))
	}
	for _, g := range boxes {
		want := replicaClass(attr(g, "data-node"))
		if got := attr(g, "data-replica-class"); got != want || !strings.Contains(" "+attr(g, "class")+" ", " "+want+" ") {
			t.Errorf("replica %s: data-replica-class %q, class %q; want %q in both", attr(g, "data-node"), got, attr(g, "class"), want)
		}
	}

	// The store titles name the modes by their labels.
	for id, want := range map[string]string{
		"store-sticky":    "Sticky: memory of app-2",
		"store-redis":     "Redis",
		"store-jwt":       "JWT: the browser's cookie",
		"store-memcached": "Memcached",
	} {
		var h3 *html.Node
		walk(d.one(id), func(n *html.Node) {
			if h3 == nil && n.Type == html.ElementNode && n.Data == "h3" {
				h3 = n
			}
		})
		if h3 == nil {
			t.Errorf("%s has no title", id)
		} else if got := text(h3); got != want {
			t.Errorf("%s: title %q, want %q", id, got, want)
		}
	}

	// The cookie's size meter has its mode's colour.
	for _, r := range elements(d.one("store-jwt"), "fill") {
		if got := attr(r, "fill"); got != modes["jwt"].Color {
			t.Errorf("jwt size meter fill %q, want jwt's colour %q", got, modes["jwt"].Color)
		}
	}

	// The sign-in hint says where the generated password comes from.
	login := d.one("admin-login")
	if got := d.textOf("admin-password-command"); got != "docker compose exec app /app/server admin-password" {
		t.Errorf("password command %q", got)
	}
	if hint := text(login); strings.Contains(hint, "README") || !strings.Contains(hint, "user admin") {
		t.Errorf("sign-in hint %q: want the user admin and no README", hint)
	}
}

// TestChartColours: a chart colours each mode with its colour from the
// modes table, and the simulator's series with theirs.
func TestChartColours(t *testing.T) {
	check := func(c LoadChart) {
		t.Helper()
		d := render(t, LoadChartSVG(c))
		fills := map[string]bool{}
		for _, r := range elements(d.root, "fill") {
			fills[attr(r, "fill")] = true
		}
		for _, s := range c.Segments {
			want := seriesColors[s]
			if info, ok := modes[s]; ok {
				want = info.Color
			}
			if want == "" || !fills[want] {
				t.Errorf("segment %q: colour %q not drawn (fills %v)", s, want, fills)
			}
		}
	}
	check(sampleAdmin(true).Load)
	check(sampleSimulation().Chart)
	check(sampleSimulation().SessionChart)
}
