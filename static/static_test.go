package static

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"testing"
)

func TestFiles(t *testing.T) {
	want := []string{"css/shop.css", "js/shop.js", "img/logo.svg", "img/empty-cart.svg"}
	for i := 1; i <= 10; i++ {
		want = append(want, fmt.Sprintf("img/p%d.svg", i))
	}
	for _, name := range want {
		if _, err := fs.Stat(FS, name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestSVGs checks that every image is well-formed XML with a viewBox, so it
// scales with its card.
func TestSVGs(t *testing.T) {
	names, err := fs.Glob(FS, "img/*.svg")
	if err != nil || len(names) == 0 {
		t.Fatalf("no SVGs: %v", err)
	}
	for _, name := range names {
		b, err := fs.ReadFile(FS, name)
		if err != nil {
			t.Fatal(err)
		}
		dec := xml.NewDecoder(strings.NewReader(string(b)))
		var root *xml.StartElement
		for {
			tok, err := dec.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Errorf("%s: %v", name, err)
				break
			}
			if se, ok := tok.(xml.StartElement); ok && root == nil {
				root = &se
			}
		}
		if root == nil || root.Name.Local != "svg" {
			t.Errorf("%s: root element is not <svg>", name)
			continue
		}
		var viewBox bool
		for _, a := range root.Attr {
			viewBox = viewBox || a.Name.Local == "viewBox"
		}
		if !viewBox {
			t.Errorf("%s: no viewBox", name)
		}
	}
}

// TestNoNetwork checks that nothing refers to another host: the demo runs
// without a network.
func TestNoNetwork(t *testing.T) {
	err := fs.WalkDir(FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(FS, path)
		if err != nil {
			return err
		}
		s := strings.ReplaceAll(string(b), "http://www.w3.org/", "")
		if strings.Contains(s, "http://") || strings.Contains(s, "https://") || strings.Contains(s, "//cdn") {
			t.Errorf("%s refers to another host", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
