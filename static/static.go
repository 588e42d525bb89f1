// Package static holds the shop's stylesheet, script and images, embedded
// into the binary. There is no build step: what is here is what is served.
package static

import "embed"

// FS holds css/shop.css, js/shop.js and the SVGs under img/, rooted so
// that http.StripPrefix("/static/", http.FileServerFS(FS)) serves them at
// /static/css/shop.css and so on.
//
//go:embed css js img
var FS embed.FS
