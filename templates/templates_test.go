package templates

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/a-h/templ"
	"golang.org/x/net/html"
)

// doc is a rendered page, parsed, with its raw HTML kept for string checks.
type doc struct {
	t    *testing.T
	raw  string
	root *html.Node
}

func render(t *testing.T, c templ.Component) doc {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		t.Fatalf("render: %v", err)
	}
	root, err := html.Parse(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return doc{t: t, raw: buf.String(), root: root}
}

func walk(n *html.Node, f func(*html.Node)) {
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

func text(n *html.Node) string {
	var b strings.Builder
	walk(n, func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
	})
	return strings.Join(strings.Fields(b.String()), " ")
}

// all returns the elements under n with the given data-testid.
func all(n *html.Node, id string) []*html.Node {
	var out []*html.Node
	walk(n, func(n *html.Node) {
		if n.Type == html.ElementNode && attr(n, "data-testid") == id {
			out = append(out, n)
		}
	})
	return out
}

// one returns the single element with the given data-testid, or fails.
func (d doc) one(id string) *html.Node {
	d.t.Helper()
	return oneIn(d.t, d.root, id)
}

func oneIn(t *testing.T, n *html.Node, id string) *html.Node {
	t.Helper()
	found := all(n, id)
	if len(found) != 1 {
		t.Fatalf("data-testid=%q: found %d elements, want 1", id, len(found))
	}
	return found[0]
}

func (d doc) none(id string) {
	d.t.Helper()
	if found := all(d.root, id); len(found) != 0 {
		d.t.Errorf("data-testid=%q: found %d elements, want none", id, len(found))
	}
}

func (d doc) textOf(id string) string {
	d.t.Helper()
	return text(d.one(id))
}

// formOf returns the form element that contains n.
func formOf(t *testing.T, n *html.Node) *html.Node {
	t.Helper()
	for p := n.Parent; p != nil; p = p.Parent {
		if p.Type == html.ElementNode && p.Data == "form" {
			return p
		}
	}
	t.Fatalf("<%s data-testid=%q> is not inside a form", n.Data, attr(n, "data-testid"))
	return nil
}

// fields returns the named inputs of a form: name -> value.
func fields(form *html.Node) map[string]string {
	out := map[string]string{}
	walk(form, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "input" && attr(n, "name") != "" {
			out[attr(n, "name")] = attr(n, "value")
		}
	})
	return out
}

// input returns the input named name in form.
func input(t *testing.T, form *html.Node, name string) *html.Node {
	t.Helper()
	var found *html.Node
	walk(form, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "input" && attr(n, "name") == name {
			found = n
		}
	})
	if found == nil {
		t.Fatalf("form %s has no input %q", attr(form, "action"), name)
	}
	return found
}

func wantForm(t *testing.T, form *html.Node, action string, want map[string]string) {
	t.Helper()
	if got := attr(form, "method"); got != "post" {
		t.Errorf("form %s: method %q, want post", action, got)
	}
	if got := attr(form, "action"); got != action {
		t.Errorf("form action %q, want %q", got, action)
	}
	got := fields(form)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("form %s: field %s = %q, want %q", action, k, got[k], v)
		}
	}
}

func TestShopPage(t *testing.T) {
	m := sampleShop()
	d := render(t, ShopPage(m))

	if !strings.HasPrefix(d.raw, "<!doctype html>") {
		t.Errorf("page does not start with a doctype: %.40q", d.raw)
	}
	for _, s := range []string{
		`<link rel="stylesheet" href="/static/css/shop.css">`,
		`<script src="/static/js/shop.js" defer></script>`,
		`<link rel="icon" type="image/svg+xml" href="/static/img/logo.svg">`,
		`<title>Shop · Session Shop</title>`,
	} {
		if !strings.Contains(d.raw, s) {
			t.Errorf("page lacks %s", s)
		}
	}

	cards := all(d.root, "product-card")
	if len(cards) != len(m.Products) {
		t.Fatalf("%d product cards, want %d", len(cards), len(m.Products))
	}
	for i, card := range cards {
		p := m.Products[i]
		if got := attr(card, "data-product-id"); got != p.ID {
			t.Errorf("card %d: data-product-id %q, want %q", i, got, p.ID)
		}
		if got := text(oneIn(t, card, "product-name")); got != p.Name {
			t.Errorf("card %s: name %q, want %q", p.ID, got, p.Name)
		}
		if got := text(oneIn(t, card, "product-price")); got != p.Price {
			t.Errorf("card %s: price %q, want %q", p.ID, got, p.Price)
		}
		inCart := all(card, "in-cart")
		switch {
		case p.InCart > 0 && (len(inCart) != 1 || !strings.Contains(text(inCart[0]), "In cart: ")):
			t.Errorf("card %s: want an In cart badge", p.ID)
		case p.InCart == 0 && len(inCart) != 0:
			t.Errorf("card %s: In cart badge shown for an item not in the cart", p.ID)
		}
		add := oneIn(t, card, "add-"+p.ID)
		if add.Data != "button" || attr(add, "type") != "submit" {
			t.Errorf("add-%s is <%s type=%q>, want a submit button", p.ID, add.Data, attr(add, "type"))
		}
		form := formOf(t, add)
		wantForm(t, form, "/cart/add", map[string]string{"product_id": p.ID, "return_to": "/", "qty": "1"})
		qty := input(t, form, "qty")
		if attr(qty, "type") != "number" || attr(qty, "min") != "1" || attr(qty, "max") != "99" {
			t.Errorf("add-%s qty: type=%q min=%q max=%q", p.ID, attr(qty, "type"), attr(qty, "min"), attr(qty, "max"))
		}
	}
	if got := text(all(cards[0], "in-cart")[0]); got != "In cart: 2" {
		t.Errorf("p1 badge %q, want %q", got, "In cart: 2")
	}

	if got, want := d.textOf("flash"), "Rubber Duck added to your cart."; got != want {
		t.Errorf("flash %q, want %q", got, want)
	}
	if got := attr(d.one("flash"), "data-kind"); got != "success" {
		t.Errorf("flash kind %q, want success", got)
	}
	d.none("notice")
}

func TestHeader(t *testing.T) {
	m := sampleShop()
	d := render(t, ShopPage(m))

	toggle := d.one("mode-toggle")
	if toggle.Data != "form" {
		t.Fatalf("mode-toggle is a <%s>, want a form", toggle.Data)
	}
	wantForm(t, toggle, "/mode", map[string]string{"return_to": "/"})
	for _, o := range m.Page.Modes {
		b := oneIn(t, toggle, "mode-"+o.Value)
		if b.Data != "button" || attr(b, "type") != "submit" || attr(b, "name") != "mode" || attr(b, "value") != o.Value {
			t.Errorf("mode-%s: <%s type=%q name=%q value=%q>", o.Value, b.Data, attr(b, "type"), attr(b, "name"), attr(b, "value"))
		}
		wantPressed := "false"
		if o.Selected {
			wantPressed = "true"
		}
		if got := attr(b, "aria-pressed"); got != wantPressed {
			t.Errorf("mode-%s aria-pressed %q, want %q", o.Value, got, wantPressed)
		}
		if got := attr(b, "title"); got == "" || got != modeDescription(o.Value) {
			t.Errorf("mode-%s title %q, want its description", o.Value, got)
		}
		if got := text(b); got == "" || got != modeName(o.Value) {
			t.Errorf("mode-%s label %q, want %q", o.Value, got, modeName(o.Value))
		}
	}

	link := d.one("cart-link")
	if attr(link, "href") != "/cart" {
		t.Errorf("cart-link href %q, want /cart", attr(link, "href"))
	}
	if got := text(link); got != "Cart (5)" {
		t.Errorf("cart-link text %q, want %q", got, "Cart (5)")
	}
	if got := d.textOf("cart-count"); got != "5" {
		t.Errorf("cart-count %q, want 5", got)
	}
	if got := attr(d.one("home-link"), "href"); got != "/" {
		t.Errorf("home-link href %q, want /", got)
	}

	// Signed out: a login form, no logout.
	user := d.one("login-user")
	form := formOf(t, user)
	wantForm(t, form, "/login", map[string]string{"return_to": "/"})
	if attr(user, "name") != "user" || !hasAttr(user, "required") || attr(user, "maxlength") != "32" ||
		attr(user, "placeholder") != "demo user name" || attr(user, "pattern") == "" {
		t.Errorf("login-user attributes: %v", user.Attr)
	}
	if b := d.one("login-submit"); formOf(t, b) != form || attr(b, "type") != "submit" {
		t.Error("login-submit is not the login form's submit button")
	}
	d.none("logout")
	d.none("signed-in-user")
}

func TestHeaderSignedIn(t *testing.T) {
	m := sampleCart()
	d := render(t, CartPage(m))

	if got := d.textOf("signed-in-user"); got != "alice" {
		t.Errorf("signed-in-user %q, want alice", got)
	}
	logout := d.one("logout")
	wantForm(t, formOf(t, logout), "/logout", map[string]string{"return_to": "/cart"})
	d.none("login-user")
	d.none("login-submit")
}

func TestReplicaBar(t *testing.T) {
	m := sampleShop()
	d := render(t, ShopPage(m))

	replica := d.one("replica")
	if got := text(replica); got != "app2" {
		t.Errorf("replica %q, want app2", got)
	}
	if !strings.Contains(attr(replica, "class"), "replica-c1") {
		t.Errorf("replica class %q lacks replica-c1, the second replica's colour", attr(replica, "class"))
	}
	if got := d.textOf("mode"); got != "Redis" {
		t.Errorf("mode %q, want Redis", got)
	}
	d.none("affinity-toggle") // only in sticky mode

	items := all(d.one("trail"), "trail-item")
	if len(items) != len(m.Page.Trail) {
		t.Fatalf("%d trail items, want %d", len(items), len(m.Page.Trail))
	}
	for i, it := range items {
		e := m.Page.Trail[i]
		if got := text(it); got != e.Replica {
			t.Errorf("trail item %d: %q, want %q", i, got, e.Replica)
		}
		if want := replicaClass(e.Replica); !strings.Contains(attr(it, "class"), want) {
			t.Errorf("trail item %d: class %q lacks %s", i, attr(it, "class"), want)
		}
		if got := attr(it, "aria-current") == "true"; got != e.Current {
			t.Errorf("trail item %d: aria-current %v, want %v", i, got, e.Current)
		}
		if got := strings.Contains(attr(it, "class"), "is-current"); got != e.Current {
			t.Errorf("trail item %d: is-current %v, want %v", i, got, e.Current)
		}
	}
	if got := d.textOf("trail-summary"); got != "spread over 3 replicas" {
		t.Errorf("trail-summary %q", got)
	}
	if !strings.Contains(d.raw, "Last 10 requests from this browser") {
		t.Error("trail caption missing")
	}

	info := d.one("session-info")
	for id, want := range map[string]string{"session-store": "Redis", "session-hash": "3f9a1c", "session-event": "found"} {
		if got := text(oneIn(t, info, id)); got != want {
			t.Errorf("%s %q, want %q", id, got, want)
		}
	}
	if got := d.textOf("request-id"); got != m.Page.RequestID {
		t.Errorf("request-id %q, want %q", got, m.Page.RequestID)
	}
}

func TestReplicaBarSticky(t *testing.T) {
	d := render(t, ShopPage(ShopModel{Page: stickyPage("/")}))
	toggle := d.one("affinity-toggle")
	wantForm(t, toggle, "/mode", map[string]string{"mode": "sticky", "return_to": "/"})
	for _, a := range stickyPage("/").Affinities {
		b := oneIn(t, toggle, "affinity-"+a)
		if attr(b, "name") != "affinity" || attr(b, "value") != a || attr(b, "type") != "submit" {
			t.Errorf("affinity-%s: %v", a, b.Attr)
		}
		if attr(b, "title") == "" {
			t.Errorf("affinity-%s has no explanation", a)
		}
		if got, want := attr(b, "aria-pressed"), strconv.FormatBool(a == "cookie"); got != want {
			t.Errorf("affinity-%s aria-pressed %q, want %q", a, got, want)
		}
	}
	if got := d.textOf("trail-summary"); got != "all on app3" {
		t.Errorf("trail-summary %q, want %q", got, "all on app3")
	}
}

func TestReplicaBarWithoutTrail(t *testing.T) {
	p := samplePage("/")
	p.Trail = nil
	p.Replica = ""
	d := render(t, ShopPage(ShopModel{Page: p}))
	d.none("trail")
	if got := d.textOf("replica"); got != "unknown" {
		t.Errorf("replica %q, want unknown", got)
	}
}

func TestReplicaClass(t *testing.T) {
	for name, want := range map[string]string{
		"app-1":         "replica-c0",
		"app-2":         "replica-c1",
		"app-8":         "replica-c7",
		"app-9":         "replica-c0",
		"app3":          "replica-c2",
		"app-0":         "replica-c7",
		"":              "replica-unknown",
		`x" onclick="y`: "replica-c" + strconv.Itoa((int('x')+int('"')+int(' ')+int('o')+int('n')+int('c')+int('l')+int('i')+int('c')+int('k')+int('=')+int('"')+int('y'))%8),
	} {
		if got := replicaClass(name); got != want {
			t.Errorf("replicaClass(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestTrailSummary(t *testing.T) {
	for _, tc := range []struct {
		trail []TrailEntry
		want  string
	}{
		{nil, ""},
		{sampleTrail("app1"), ""},
		{sampleTrail("app1", "app1", "app1"), "all on app1"},
		{sampleTrail("app1", "app2", "app1"), "spread over 2 replicas"},
	} {
		if got := trailSummary(tc.trail); got != tc.want {
			t.Errorf("trailSummary(%v) = %q, want %q", tc.trail, got, tc.want)
		}
	}
	if got := trailCaption(1); got != "First request from this browser" {
		t.Errorf("trailCaption(1) = %q", got)
	}
}

func TestNoticeAndFlashKinds(t *testing.T) {
	for _, tc := range []struct {
		flash        Flash
		kind, phrase string
	}{
		{Flash{Code: FlashAdded, Subject: "Stoneware Mug"}, "success", "Stoneware Mug added"},
		{Flash{Code: FlashUpdated, Subject: "Stoneware Mug"}, "success", "Quantity of Stoneware Mug"},
		{Flash{Code: FlashRemoved, Subject: "Stoneware Mug"}, "success", "Stoneware Mug removed"},
		{Flash{Code: FlashCleared}, "success", "cart is empty"},
		{Flash{Code: FlashSignedIn, Subject: "alice"}, "success", "Signed in as alice"},
		{Flash{Code: FlashSignedOut}, "info", "Signed out"},
		{Flash{Code: FlashMode, Subject: "jwt"}, "info", "now uses jwt mode"},
		{Flash{Code: FlashAffinity, Subject: "url"}, "info", "rides in every link"},
		{Flash{Code: FlashAffinity, Subject: "ip"}, "info", "hashes it"},
		{Flash{Code: FlashAffinity, Subject: "cookie"}, "info", "lb_route cookie"},
	} {
		p := samplePage("/")
		p.Flash = &tc.flash
		d := render(t, ShopPage(ShopModel{Page: p}))
		f := d.one("flash")
		if attr(f, "data-kind") != tc.kind || attr(f, "role") != "status" || !strings.Contains(text(f), tc.phrase) {
			t.Errorf("flash %+v: kind %q, text %q; want %s saying %q", tc.flash, attr(f, "data-kind"), text(f), tc.kind, tc.phrase)
		}
	}
	for _, unknown := range []Flash{{Code: "pwned", Subject: "x"}, {Code: FlashAffinity, Subject: "dns"}} {
		p := samplePage("/")
		p.Flash = &unknown
		render(t, ShopPage(ShopModel{Page: p})).none("flash")
	}

	for _, tc := range []struct {
		notice              Notice
		kind, title, phrase string
	}{
		{Notice{Code: NoticeLostElsewhere, Replica: "app1", LostFrom: "app3"}, "warning", "Your session was on app3", "served by app1"},
		{Notice{Code: NoticeLostHere, Replica: "app2"}, "warning", "Your session is gone", "app2 no longer holds"},
		{Notice{Code: NoticeEnded}, "info", "Your previous session ended", "not in the store any more"},
		{Notice{Code: NoticeExpired}, "info", "Your session expired", "idle for too long"},
		{Notice{Code: NoticeLostMemcached, LostFrom: "memcached2"}, "warning", "Memcached no longer holds your session", "not on memcached2 any more"},
	} {
		p := samplePage("/cart")
		p.Notice = &tc.notice
		n := render(t, CartPage(CartModel{Page: p})).one("notice")
		if attr(n, "data-kind") != tc.kind || !strings.Contains(text(n), tc.title) || !strings.Contains(text(n), tc.phrase) {
			t.Errorf("notice %+v: kind %q, text %q; want %s with %q and %q", tc.notice, attr(n, "data-kind"), text(n), tc.kind, tc.title, tc.phrase)
		}
	}
	p := samplePage("/cart")
	p.Notice = &Notice{Code: "pwned"}
	render(t, CartPage(CartModel{Page: p})).none("notice")
}

// TestCartExplainsTheJWTLastWriter: in jwt mode, and only there, a cart
// with lines says what the token does to concurrent changes.
func TestCartExplainsTheJWTLastWriter(t *testing.T) {
	for mode, want := range map[string]bool{"jwt": true, "redis": false, "sticky": false} {
		m := sampleCart()
		m.Page.Mode = mode
		d := render(t, CartPage(m))
		if got := len(all(d.root, "mode-note")) == 1 && strings.Contains(d.textOf("mode-note"), "keeps the token that arrives last"); got != want {
			t.Errorf("%s cart explains the last writer: %v, want %v", mode, got, want)
		}
	}
}

func TestCartPage(t *testing.T) {
	m := sampleCart()
	d := render(t, CartPage(m))

	lines := all(d.root, "cart-line")
	if len(lines) != len(m.Lines) {
		t.Fatalf("%d cart lines, want %d", len(lines), len(m.Lines))
	}
	for i, line := range lines {
		l := m.Lines[i]
		if got := attr(line, "data-product-id"); got != l.ProductID {
			t.Errorf("line %d: data-product-id %q, want %q", i, got, l.ProductID)
		}
		if got := text(oneIn(t, line, "line-name")); got != l.Name {
			t.Errorf("line %s: name %q", l.ProductID, got)
		}
		if got := text(oneIn(t, line, "line-unit-price")); got != l.UnitPrice {
			t.Errorf("line %s: unit price %q, want %q", l.ProductID, got, l.UnitPrice)
		}
		if got := text(oneIn(t, line, "line-total")); got != l.LineTotal {
			t.Errorf("line %s: total %q, want %q", l.ProductID, got, l.LineTotal)
		}

		qty := oneIn(t, line, "line-qty")
		if attr(qty, "name") != "qty" || attr(qty, "type") != "number" || attr(qty, "min") != "1" || attr(qty, "max") != "99" {
			t.Errorf("line %s qty: %v", l.ProductID, qty.Attr)
		}
		update := oneIn(t, line, "update-"+l.ProductID)
		if formOf(t, update) != formOf(t, qty) {
			t.Errorf("line %s: update button and qty input are in different forms", l.ProductID)
		}
		wantForm(t, formOf(t, qty), "/cart/update", map[string]string{
			"product_id": l.ProductID, "return_to": "/cart", "qty": strconv.Itoa(l.Qty),
		})

		remove := oneIn(t, line, "remove-"+l.ProductID)
		wantForm(t, formOf(t, remove), "/cart/remove", map[string]string{"product_id": l.ProductID, "return_to": "/cart"})
		if _, ok := fields(formOf(t, remove))["qty"]; ok {
			t.Errorf("line %s: remove form carries a qty", l.ProductID)
		}
	}

	if got := d.textOf("cart-total"); got != m.Total {
		t.Errorf("cart-total %q, want %q", got, m.Total)
	}
	if got := d.textOf("cart-items"); got != "6" {
		t.Errorf("cart-items %q, want 6", got)
	}
	wantForm(t, formOf(t, d.one("cart-clear")), "/cart/clear", map[string]string{"return_to": "/cart"})
	d.none("cart-empty")
}

func TestCartPageMaxQty(t *testing.T) {
	m := sampleCart()
	m.MaxQty = 20
	d := render(t, CartPage(m))
	for _, q := range all(d.root, "line-qty") {
		if got := attr(q, "max"); got != "20" {
			t.Errorf("line-qty max %q, want 20", got)
		}
	}
}

func TestCartPageEmpty(t *testing.T) {
	m := sampleEmptyCart()
	d := render(t, CartPage(m))

	empty := d.one("cart-empty")
	back := oneIn(t, empty, "back-to-shop")
	if attr(back, "href") != "/" {
		t.Errorf("back-to-shop href %q, want /", attr(back, "href"))
	}
	d.none("cart-line")
	d.none("cart-clear")
	if got := d.textOf("cart-count"); got != "0" {
		t.Errorf("cart-count %q, want 0", got)
	}
	if got := text(d.one("notice")); !strings.Contains(got, "Your session was on app3") || !strings.Contains(got, "served by app1") {
		t.Errorf("notice %q does not say where the session was and who served the page", got)
	}
	if got := d.textOf("session-event"); got != "lost" {
		t.Errorf("session-event %q, want lost", got)
	}
}

func TestErrorPage(t *testing.T) {
	m := sampleError()
	d := render(t, ErrorPage(m))

	if got := d.textOf("error-title"); got != m.Title {
		t.Errorf("error-title %q, want %q", got, m.Title)
	}
	if got := d.textOf("error-message"); got != m.Message {
		t.Errorf("error-message %q, want %q", got, m.Message)
	}
	if got := d.textOf("error-status"); got != "Error 503" {
		t.Errorf("error-status %q", got)
	}
	if got := attr(d.one("error-home"), "href"); got != "/" {
		t.Errorf("error-home href %q, want /", got)
	}
	// The header and the replica bar still render.
	if got := d.textOf("replica"); got != "app1" {
		t.Errorf("replica %q, want app1", got)
	}
	d.one("mode-toggle")
	d.one("cart-link")
	d.one("trail")
	if !strings.Contains(d.raw, "<title>Session store unavailable · Session Shop</title>") {
		t.Error("error page title missing")
	}
}

func TestEscapesUserText(t *testing.T) {
	const evil = `<script>alert("x")</script>`
	p := samplePage(`/cart"><script>alert(1)</script>`)
	p.User = evil
	p.Replica = evil
	p.Trail = sampleTrail(evil)
	p.Flash = &Flash{Code: FlashSignedIn, Subject: evil}
	p.Notice = &Notice{Code: NoticeLostElsewhere, Replica: evil, LostFrom: evil}
	p.Session = SessionInfo{Store: evil, Hash: evil, Event: evil}
	m := CartModel{Page: p, Lines: []CartLine{{ProductID: evil, Name: evil, Image: "/static/img/p1.svg", Qty: 1, UnitPrice: evil, LineTotal: evil}}, Total: evil}

	for name, c := range map[string]templ.Component{
		"cart":  CartPage(m),
		"shop":  ShopPage(ShopModel{Page: p, Products: []Product{{ID: evil, Name: evil, Description: evil, Image: "/static/img/p1.svg", Price: evil}}}),
		"error": ErrorPage(ErrorModel{Page: p, Status: 400, Title: evil, Message: evil}),
	} {
		t.Run(name, func(t *testing.T) {
			d := render(t, c)
			if strings.Contains(d.raw, "<script>alert") {
				t.Fatalf("unescaped user text in output")
			}
			if got := d.textOf("signed-in-user"); got != evil {
				t.Errorf("signed-in-user %q, want the name as text", got)
			}
			// Exactly one script element: ours.
			var scripts int
			walk(d.root, func(n *html.Node) {
				if n.Type == html.ElementNode && n.Data == "script" {
					scripts++
				}
			})
			if scripts != 1 {
				t.Errorf("%d script elements, want 1", scripts)
			}
		})
	}
}

func TestLinkQueryInLinks(t *testing.T) {
	m := sampleCart()
	m.Page.LinkQuery = "affinity=url&mode=sticky&sid=app3.abc"
	d := render(t, CartPage(m))
	const q = "?affinity=url&mode=sticky&sid=app3.abc"
	for id, want := range map[string]string{"cart-link": "/cart" + q, "home-link": "/" + q, "continue-shopping": "/" + q} {
		if got := attr(d.one(id), "href"); got != want {
			t.Errorf("%s href %q, want %q", id, got, want)
		}
	}
	if got := attr(d.one("mode-toggle"), "action"); got != "/mode"+q {
		t.Errorf("mode-toggle action %q", got)
	}
	for _, l := range m.Lines {
		if got := attr(formOf(t, d.one("remove-"+l.ProductID)), "action"); got != "/cart/remove"+q {
			t.Errorf("remove form action %q", got)
		}
	}
	// A path that has a query already gets the carried one after '&'.
	shop := sampleShop()
	shop.Page.LinkQuery = "affinity=url&mode=sticky"
	shop.Products[0].IdempotencyKey = "k0123456789"
	sd := render(t, ShopPage(shop))
	p := shop.Products[0]
	if got, want := attr(sd.one("add-form-"+p.ID), "action"), addPath(p)+"&affinity=url&mode=sticky"; got != want {
		t.Errorf("add form action %q, want %q", got, want)
	}

	// Without a LinkQuery, no URL carries a sid.
	plain := render(t, CartPage(sampleCart()))
	walk(plain.root, func(n *html.Node) {
		if u := attr(n, "href") + attr(n, "action"); strings.Contains(u, "sid=") {
			t.Errorf("<%s> carries a sid without LinkQuery: %s", n.Data, u)
		}
	})
}

// TestNothingInlineForTheCSP: the Content-Security-Policy allows scripts
// and styles from this origin only, so no template may carry an inline
// script, an event handler attribute, a style attribute or a javascript:
// URL; a browser would refuse them.
func TestNothingInlineForTheCSP(t *testing.T) {
	files, err := filepath.Glob("*.templ")
	if err != nil || len(files) == 0 {
		t.Fatalf("no templates found: %v", err)
	}
	inline := regexp.MustCompile(`(?i)<script(\s[^>]*)?>\s*[^<\s]|<script>|\son[a-z]+=|\sstyle=|javascript:`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if m := inline.FindString(line); m != "" {
				t.Errorf("%s:%d: %q is refused by the CSP: %s", f, i+1, m, strings.TrimSpace(line))
			}
		}
	}
}
