// Package cart holds the shop's catalog and the rules of a cart: which
// products exist, what a valid quantity is, how lines add up. It is plain Go
// and knows nothing of HTTP or sessions.
package cart

// Product is an item the shop sells.
type Product struct {
	// ID is the stable identifier used in URLs, forms, the API and carts.
	ID string `json:"id"`
	// Name is the display name.
	Name string `json:"name"`
	// Description is one sentence about the product.
	Description string `json:"description"`
	// PriceCents is the unit price in US cents.
	PriceCents int `json:"price_cents"`
}

// Image is the path of the product's illustration under /static/.
func (p Product) Image() string { return "/static/img/" + p.ID + ".svg" }

var catalog = []Product{
	{ID: "p1", Name: "Stoneware Mug", Description: "A heavy, speckled mug that keeps coffee warm through a long deploy.", PriceCents: 1400},
	{ID: "p2", Name: "Espresso Beans", Description: "250 g of dark roast, for the on-call shift.", PriceCents: 1850},
	{ID: "p3", Name: "Dot-Grid Notebook", Description: "A5, 120 pages, lies flat for architecture sketches.", PriceCents: 999},
	{ID: "p4", Name: "Fountain Pen", Description: "Steel nib, blue ink, writes like a well-tuned load balancer.", PriceCents: 3400},
	{ID: "p5", Name: "Desk Succulent", Description: "A small plant that survives neglect better than in-memory sessions.", PriceCents: 1299},
	{ID: "p6", Name: "Wool Socks", Description: "Striped, warm, and never lost in the wash.", PriceCents: 1150},
	{ID: "p7", Name: "Canvas Tote", Description: "Carries a laptop, a cart's worth of groceries, or both.", PriceCents: 1600},
	{ID: "p8", Name: "Headphones", Description: "Closed-back, for focused work in a noisy office.", PriceCents: 7900},
	{ID: "p9", Name: "Desk Lamp", Description: "An adjustable arm and warm light for late incidents.", PriceCents: 4500},
	{ID: "p10", Name: "Rubber Duck", Description: "The classic debugging companion. Listens patiently.", PriceCents: 650},
}

// Products returns the catalog in display order. The slice is a copy.
func Products() []Product {
	out := make([]Product, len(catalog))
	copy(out, catalog)
	return out
}

// Lookup returns the product with the given id.
func Lookup(id string) (Product, bool) {
	for _, p := range catalog {
		if p.ID == id {
			return p, true
		}
	}
	return Product{}, false
}
