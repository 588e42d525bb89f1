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

func sampleAdmin(signedIn bool) AdminModel {
	p := samplePage("/admin")
	p.Title = "Admin"
	p.Replica = "app-2"
	p.Trail = sampleTrail("app-1", "app-2", "app-3", "app-2")
	modes := []string{"sticky", "redis", "jwt", "memcached"}
	return AdminModel{
		Page:     p,
		SignedIn: signedIn,
		Topology: Topology{
			ServedBy:      "app-2",
			LoadBalancers: []Node{{Name: "lb", State: "up"}, {Name: "lb2", State: "up"}},
			Replicas: []Node{
				{Name: "app-1", State: "up", Sessions: 12},
				{Name: "app-2", State: "up", Sessions: 9},
				{Name: "app-3", State: "not answering", Detail: "accepts connections but does not answer", Change: "joined"},
			},
			Redis:        Node{Name: "redis", State: "up"},
			RedisPrimary: "redis-1",
			RedisNodes:   []Node{{Name: "redis-1", State: "up", Role: "primary"}, {Name: "redis-2", State: "up", Role: "replica"}},
			Sentinels:    []Node{{Name: "sentinel-1", State: "up"}, {Name: "sentinel-2", State: "up"}, {Name: "sentinel-3", State: "up"}},
			Memcached:    []Node{{Name: "memcached1", State: "up", Detail: "41 items, 0 evictions"}, {Name: "memcached2", State: "up", Detail: "38 items, 0 evictions"}},
		},
		Load: LoadChart{
			Title:    "Requests per replica in the last minute, by session mode",
			Segments: modes,
			Bars: []LoadBar{
				{Name: "app-1", Values: []int{30, 12, 8, 5}, Total: 55},
				{Name: "app-2", Values: []int{0, 20, 14, 9}, Total: 43},
				{Name: "app-3", Values: []int{0, 0, 0, 0}, Down: true},
			},
			Max:     55,
			MaxMean: "1.12",
			Note:    "1.00 is perfectly even; 2.00 means one replica of 2 took everything.",
		},
		Sessions: []StoreView{
			{Mode: "sticky", Replica: "app-2", Held: true, Where: "In the memory of app-2."},
			{Mode: "redis", Held: true, Where: "In Redis, encrypted.", Raw: "9f3c…", RawBytes: 120, Decoded: `{"cart": {}}`},
			{Mode: "jwt", Held: true, Where: "In a cookie this browser sends.", Raw: "eyJ…", RawBytes: 610, Limit: 4096, Decoded: `{"cart": {}}`},
			{Mode: "memcached", Where: "In Memcached, encrypted."},
		},
		Scale:      Scale{Replicas: 3, Service: "app"},
		Modes:      modes,
		Affinities: []string{"cookie", "url", "ip"},
	}
}

func sampleSimulation() SimulationModel {
	bars := []LoadBar{
		{Name: "app-1", Values: []int{210}, Total: 210},
		{Name: "app-2", Values: []int{190}, Total: 190},
		{Name: "app-3", Values: []int{204}, Total: 204},
	}
	return SimulationModel{
		ID: "sim-1", Replica: "app-2", Target: "http://lb", Title: "30 clients, redis mode, mixed sessions",
		Done: true, Percent: 100, Elapsed: "10.0s", Requests: 604,
		Chart:        LoadChart{Title: "Requests per replica", Segments: []string{"requests"}, Bars: bars, Max: 210, MaxMean: "1.04"},
		SessionChart: LoadChart{Title: "Sessions per replica", Segments: []string{"sessions"}, Bars: bars, Max: 210, MaxMean: "1.04"},
		Carts:        "30 of 30 carts kept every add",
	}
}
