package templates

// modeInfo is what the pages show of a session mode.
type modeInfo struct {
	// Label is the mode's short name: the toggle's button, the pill under
	// the header, the admin page's store titles.
	Label string
	// Description explains the mode in one line, the toggle button's title.
	Description string
	// Color is the mode's colour in the admin page's charts.
	Color string
}

// modes is every session mode's label, explanation and colour, keyed by the
// mode's value as the server knows it (the Mode of Page, ModeOption,
// StoreView and the charts' Segments). The pages read them here and
// nowhere else; a mode the table lacks shows its value and a neutral
// colour (TestModesCoverSessionModes keeps it complete).
var modes = map[string]modeInfo{
	"sticky": {
		Label:       "Sticky",
		Description: "Session in one replica's memory; nginx pins this browser to that replica.",
		Color:       "#7c3aed",
	},
	"redis": {
		Label:       "Redis",
		Description: "Session in Redis, encrypted; any replica can serve any request.",
		Color:       "#d92d20",
	},
	"jwt": {
		Label:       "JWT",
		Description: "Session in a signed token in a cookie; no replica stores anything.",
		Color:       "#0e7490",
	},
	"memcached": {
		Label:       "Memcached",
		Description: "Session in Memcached, encrypted, spread over two servers; no persistence, no replication, evicted when full.",
		Color:       "#b54708",
	},
}

// modeName is the label of a session mode; a mode the table lacks reads
// as its value.
func modeName(mode string) string {
	if m, ok := modes[mode]; ok {
		return m.Label
	}
	return mode
}

// modeDescription explains a session mode in one line; "" for a mode the
// table lacks.
func modeDescription(mode string) string {
	return modes[mode].Description
}

// ModeColor is a session mode's colour in charts, the admin page's and the
// benchmark's (docs/performance.svg); "" for a mode the table lacks.
func ModeColor(mode string) string {
	return modes[mode].Color
}
