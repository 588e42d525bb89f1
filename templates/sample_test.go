package templates

import "fmt"

// Sample models shared by the component tests and the preview.

func sampleModes(selected string) []ModeOption {
	modes := []ModeOption{{Value: "sticky"}, {Value: "redis"}, {Value: "jwt"}}
	for i := range modes {
		modes[i].Selected = modes[i].Value == selected
	}
	return modes
}

func sampleTrail(replicas ...string) []TrailEntry {
	out := make([]TrailEntry, len(replicas))
	for i, r := range replicas {
		out[i] = TrailEntry{Replica: r, Current: i == len(replicas)-1}
	}
	return out
}

func samplePage(path string) Page {
	return Page{
		Replica:    "app2",
		Mode:       "redis",
		Modes:      sampleModes("redis"),
		Affinities: []string{"cookie", "url", "ip"},
		CartCount:  5,
		Trail:      sampleTrail("app1", "app2", "app3", "app1", "app2", "app3", "app3", "app1", "app2", "app2"),
		Session:    SessionInfo{Hash: "3f9a1c", Event: "found", Store: "Redis"},
		RequestID:  "01J8Z4K2-app2-000187",
		Path:       path,
	}
}

func stickyPage(path string) Page {
	p := samplePage(path)
	p.Mode = "sticky"
	p.Affinity = "cookie"
	p.Modes = sampleModes("sticky")
	p.Replica = "app3"
	p.Trail = sampleTrail("app3", "app3", "app3", "app3", "app3", "app3", "app3", "app3", "app3", "app3")
	p.Session = SessionInfo{Hash: "b71e02", Event: "found", Store: "memory of app3"}
	return p
}

var sampleProducts = []struct {
	id, name, desc string
	cents          int
}{
	{"p1", "Stoneware Mug", "A heavy, speckled mug that keeps coffee warm through a long deploy.", 1400},
	{"p2", "Espresso Beans", "250 g of dark roast, for the on-call shift.", 1850},
	{"p3", "Dot-Grid Notebook", "A5, 120 pages, lies flat for architecture sketches.", 999},
	{"p4", "Fountain Pen", "Steel nib, blue ink, writes like a well-tuned load balancer.", 3400},
	{"p5", "Desk Succulent", "A small plant that survives neglect better than in-memory sessions.", 1299},
	{"p6", "Wool Socks", "Striped, warm, and never lost in the wash.", 1150},
	{"p7", "Canvas Tote", "Carries a laptop, a cart's worth of groceries, or both.", 1600},
	{"p8", "Headphones", "Closed-back, for focused work in a noisy office.", 7900},
	{"p9", "Desk Lamp", "An adjustable arm and warm light for late incidents.", 4500},
	{"p10", "Rubber Duck", "The classic debugging companion. Listens patiently.", 650},
}

func money(cents int) string { return fmt.Sprintf("$%d.%02d", cents/100, cents%100) }

func sampleShop() ShopModel {
	inCart := map[string]int{"p1": 2, "p4": 1, "p10": 2}
	m := ShopModel{Page: samplePage("/")}
	m.Page.Title = "Shop"
	m.Page.Flash = &Flash{Code: FlashAdded, Subject: "Rubber Duck"}
	for _, p := range sampleProducts {
		m.Products = append(m.Products, Product{
			ID: p.id, Name: p.name, Description: p.desc,
			Image: "/static/img/" + p.id + ".svg", Price: money(p.cents), InCart: inCart[p.id],
		})
	}
	return m
}

func sampleCart() CartModel {
	m := CartModel{Page: stickyPage("/cart"), MaxQty: 99}
	m.Page.Title = "Cart"
	m.Page.User = "alice"
	for _, l := range []struct {
		i, qty int
	}{{0, 2}, {3, 1}, {9, 3}} {
		p := sampleProducts[l.i]
		m.Lines = append(m.Lines, CartLine{
			ProductID: p.id, Name: p.name, Image: "/static/img/" + p.id + ".svg",
			Qty: l.qty, UnitPrice: money(p.cents), LineTotal: money(p.cents * l.qty),
		})
		m.Count += l.qty
	}
	m.Total = money(2*1400 + 3400 + 3*650)
	m.Page.CartCount = m.Count
	return m
}

func sampleEmptyCart() CartModel {
	m := CartModel{Page: stickyPage("/cart"), MaxQty: 99, Total: "$0.00"}
	m.Page.Title = "Cart"
	m.Page.CartCount = 0
	m.Page.Trail = sampleTrail("app3", "app3", "app3", "app3", "app3", "app3", "app3", "app1")
	m.Page.Replica = "app1"
	m.Page.Session = SessionInfo{Hash: "c04d9e", Event: "lost", Store: "memory of app1"}
	m.Page.Notice = &Notice{Code: NoticeLostElsewhere, Replica: "app1", LostFrom: "app3"}
	return m
}

func sampleError() ErrorModel {
	p := samplePage("/cart")
	p.Title = "Session store unavailable"
	p.Replica = "app1"
	p.Trail = sampleTrail("app2", "app3", "app1", "app2", "app1")
	p.Session = SessionInfo{Store: "Redis (unreachable)"}
	return ErrorModel{
		Page:    p,
		Status:  503,
		Title:   "Session store unavailable",
		Message: "Redis does not answer, so this replica cannot load your cart. Nothing was changed. Try again in a few seconds; the page recovers by itself when Redis is back.",
	}
}
