// Package templates holds the templ components that render the shop's pages
// and the view models they take. Components are pure: they render what they
// are given and know nothing of HTTP, sessions or the web package.
package templates

// Page is what every page shares: the header with the mode toggle, the
// replica that served it, the trail of recent replicas and a flash message.
type Page struct {
	// Title is the page's title, without the site name.
	Title string
	// Replica is the name of the replica that rendered this page, e.g. "app2".
	Replica string
	// Mode is the session mode this browser uses: "sticky", "redis", "jwt" or "memcached".
	Mode string
	// Affinity is the sticky technique ("cookie", "url" or "ip"); shown in sticky mode.
	Affinity string
	// Modes lists the choices of the mode toggle, in display order.
	Modes []ModeOption
	// Affinities lists the sticky techniques of the affinity toggle, in
	// display order.
	Affinities []string
	// User is the signed-in demo user, or "" when signed out.
	User string
	// CartCount is the number of items in the cart, shown on the cart link.
	CartCount int
	// Trail lists the replicas that served this browser's last requests,
	// oldest first; the last entry is this request.
	Trail []TrailEntry
	// Flash is a one-time message from the previous action, or nil.
	Flash *Flash
	// Notice explains something about the session the person should know
	// (for example that it was lost with the replica that held it), or nil.
	Notice *Notice
	// Session describes the session that served this page.
	Session SessionInfo
	// RequestID is the X-Request-Id of this response.
	RequestID string
	// Path is the path of this page; forms send it back as return_to.
	Path string
	// LinkQuery is the encoded query string (without "?") that every link
	// and form action carries, e.g. "affinity=url&mode=sticky&sid=app2.…"
	// in sticky mode with url affinity, so a client without cookies keeps
	// its mode and session; "" leaves URLs alone.
	LinkQuery string
	// ClientAddr is the client address nginx saw and hashed to pick the
	// replica, shown in sticky mode with ip affinity; "" shows nothing.
	ClientAddr string
}

// ModeOption is one choice of the session-mode toggle. Its label and
// explanation are the templates' own (the modes table, templates/modes.go).
type ModeOption struct {
	// Value is the mode's name as the server knows it: "sticky", "redis", "jwt" or "memcached".
	Value string
	// Selected is true for the mode this browser uses.
	Selected bool
}

// TrailEntry is one request in the strip of recent replicas.
type TrailEntry struct {
	// Replica is the replica that served the request.
	Replica string
	// Current is true for the request that rendered this page.
	Current bool
}

// Flash is a one-time message shown at the top of a page after an action
// (POST, redirect, GET), as a code the templates turn into a sentence
// (flashText); a code they do not know shows nothing.
type Flash struct {
	// Code says what happened: one of the Flash constants.
	Code string
	// Subject is what it happened to: a product's name, a user, a mode or
	// an affinity technique.
	Subject string
}

// The flash codes.
const (
	FlashAdded     = "added"      // Subject: the product's name
	FlashUpdated   = "updated"    // Subject: the product's name
	FlashRemoved   = "removed"    // Subject: the product's name
	FlashCleared   = "cleared"    // the cart was emptied
	FlashSignedIn  = "signed-in"  // Subject: the user
	FlashSignedOut = "signed-out" // the session was ended and a new one started
	FlashMode      = "mode"       // Subject: the mode switched to
	FlashAffinity  = "affinity"   // Subject: the sticky technique switched to
)

// Notice explains something about the session the person should know, as
// a code the templates turn into a title and sentences (noticeText).
type Notice struct {
	// Code says what happened: one of the Notice constants.
	Code string
	// Replica is the replica that served this page.
	Replica string
	// LostFrom is the replica that held a sticky session this page could
	// not find (NoticeLostElsewhere), or the Memcached server that held a
	// memcached one (NoticeLostMemcached).
	LostFrom string
}

// The notice codes.
const (
	// NoticeLostElsewhere: a sticky session lived on another replica
	// (LostFrom), which went down or the load balancer moved the browser.
	NoticeLostElsewhere = "lost-elsewhere"
	// NoticeLostHere: the replica that served the page held the sticky
	// session and was restarted.
	NoticeLostHere = "lost-here"
	// NoticeEnded: the store no longer holds the session the browser sent.
	NoticeEnded = "ended"
	// NoticeExpired: the session was idle for too long.
	NoticeExpired = "expired"
	// NoticeLostMemcached: Memcached no longer holds the session: a
	// restart, an eviction or its expiry (LostFrom names the server that
	// held it, when known).
	NoticeLostMemcached = "lost-memcached"
)

// SessionInfo describes the session behind a page, for the footer panel.
type SessionInfo struct {
	// Hash is a short hash of the session (never the ID itself).
	Hash string
	// Event is "found", "created", "lost" or "expired".
	Event string
	// Store says where the session lives, e.g. "memory of app2", "Redis", "signed cookie (JWT)".
	Store string
	// Ends says when the session ends if idle, e.g. "in 30 min"; "" for a
	// session that is not stored yet.
	Ends string
	// EndsTitle is the exact end time, shown on hover.
	EndsTitle string
}

// Product is one product card in the shop grid.
type Product struct {
	// ID is the product's id, e.g. "p1".
	ID string
	// Name is the product's display name.
	Name string
	// Description is one sentence about the product.
	Description string
	// Image is the URL of the product's SVG illustration.
	Image string
	// Price is the formatted price, e.g. "$12.99".
	Price string
	// InCart is how many of this product the cart holds.
	InCart int
	// IdempotencyKey is sent with the add form, so a retried add (by the
	// browser or by nginx on another replica) is applied once. "" sends none.
	IdempotencyKey string
}

// ShopModel is the view model of the shop page (GET /).
type ShopModel struct {
	Page     Page
	Products []Product
}

// CartLine is one line of the cart page.
type CartLine struct {
	// ProductID is the product's id.
	ProductID string
	// Name is the product's display name.
	Name string
	// Image is the URL of the product's SVG illustration.
	Image string
	// Qty is the quantity, 1..99.
	Qty int
	// UnitPrice is the formatted price of one item.
	UnitPrice string
	// LineTotal is the formatted price of the line.
	LineTotal string
}

// CartModel is the view model of the cart page (GET /cart).
type CartModel struct {
	Page  Page
	Lines []CartLine
	// Count is the number of items.
	Count int
	// Total is the formatted total.
	Total string
	// MaxQty is the largest quantity a line may hold.
	MaxQty int
}

// ErrorModel is the view model of an error page.
type ErrorModel struct {
	Page Page
	// Status is the HTTP status code.
	Status int
	// Title is a short headline, e.g. "Session store unavailable".
	Title string
	// Message says what happened and what the person can do.
	Message string
}
