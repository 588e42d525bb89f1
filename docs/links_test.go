// Package docs holds the reference documentation (Markdown); this test
// keeps it and the README whole: every relative link resolves, to a file
// and, with a #fragment, to a heading there, and the README stays a
// front door of a few screens.
package docs

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// readmeMaxLines is how long the README may grow: the front door fits on
// a few screens, the reference lives here.
const readmeMaxLines = 300

// link matches a Markdown link or image: [text](target) or
// [text](target "title").
var link = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)

// inlineCode matches `code`, whose brackets are not links.
var inlineCode = regexp.MustCompile("`[^`]*`")

func TestRelativeLinksResolve(t *testing.T) {
	files, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join("..", "README.md"))
	checked := 0
	for _, file := range files {
		for _, l := range links(t, file) {
			target, fragment, _ := strings.Cut(l.target, "#")
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			checked++
			path := file
			if target != "" {
				path = filepath.Join(filepath.Dir(file), filepath.FromSlash(target))
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s:%d: %s: no such file %s", file, l.line, l.target, path)
					continue
				}
			}
			if fragment == "" {
				continue
			}
			if !strings.HasSuffix(path, ".md") {
				t.Errorf("%s:%d: %s: a fragment on a file that has no headings", file, l.line, l.target)
				continue
			}
			if !anchors(t, path)[fragment] {
				t.Errorf("%s:%d: %s: %s has no heading with the anchor #%s", file, l.line, l.target, path, fragment)
			}
		}
	}
	if checked == 0 {
		t.Fatal("found no relative link to check: is the pattern wrong?")
	}
	t.Logf("checked %d relative links in %d files", checked, len(files))
}

func TestReadmeIsShort(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n > readmeMaxLines {
		t.Errorf("README.md has %d lines, more than %d: move the reference into docs/", n, readmeMaxLines)
	}
}

// TestSlug pins the anchor rule to GitHub's, by examples from these files.
func TestSlug(t *testing.T) {
	for heading, want := range map[string]string{
		"Get started": "get-started",
		"Writes wait for every replica that is up": "writes-wait-for-every-replica-that-is-up",
		"The same on Kubernetes, on paper":         "the-same-on-kubernetes-on-paper",
		"`REDIS_MIN_REPLICAS_ACK` and WAIT":        "redis_min_replicas_ack-and-wait",
		"Sticky × crash: what's lost":              "sticky--crash-whats-lost",
	} {
		if got := slug(heading); got != want {
			t.Errorf("slug(%q) = %q, want %q", heading, got, want)
		}
	}
}

// mdLink is one link and the line it is on.
type mdLink struct {
	target string
	line   int
}

// links returns the links of a Markdown file outside code.
func links(t *testing.T, file string) []mdLink {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []mdLink
	fenced := false
	for i, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		for _, m := range link.FindAllStringSubmatch(inlineCode.ReplaceAllString(line, ""), -1) {
			out = append(out, mdLink{target: m[1], line: i + 1})
		}
	}
	return out
}

// anchors returns the anchors of a Markdown file's headings, as GitHub
// makes them: the second heading of a name gets -1, the third -2.
func anchors(t *testing.T, file string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	out := map[string]bool{}
	fenced := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced || !strings.HasPrefix(line, "#") {
			continue
		}
		s := slug(strings.TrimLeft(line, "#"))
		if n := seen[s]; n > 0 {
			out[fmt.Sprintf("%s-%d", s, n)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	}
	return out
}

// slug is GitHub's anchor for a heading: lower case, letters, digits, -
// and _ kept, spaces turned into -, everything else dropped.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}
