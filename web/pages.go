package web

import (
	"log/slog"
	"net/http"

	"github.com/sessiondemo/shop/templates"
	"github.com/sessiondemo/shop/web/cart"
	"github.com/sessiondemo/shop/web/internal/httpx"
	"github.com/sessiondemo/shop/web/session"
)

// handleShopPage serves GET /, the product grid.
func handleShopPage(svc sessions, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := svc.Read(w, r)
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		m := templates.ShopModel{Page: pageModel(w, r, "Shop", sess)}
		for _, p := range cart.Products() {
			m.Products = append(m.Products, templates.Product{
				ID: p.ID, Name: p.Name, Description: p.Description, Image: p.Image(),
				Price: cart.FormatCents(p.PriceCents), InCart: sess.Cart.Qty(p.ID),
				IdempotencyKey: httpx.NewToken()[:20],
			})
		}
		httpx.Render(w, r, log, http.StatusOK, templates.ShopPage(m))
	})
}

// handleCartPage serves GET /cart.
func handleCartPage(svc sessions, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := svc.Read(w, r)
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		m := templates.CartModel{
			Page:   pageModel(w, r, "Your cart", sess),
			Count:  sess.Cart.Count(),
			Total:  cart.FormatCents(sess.Cart.TotalCents()),
			MaxQty: cart.MaxQty,
		}
		for _, l := range sess.Cart.Lines {
			p, _ := cart.Lookup(l.ProductID)
			m.Lines = append(m.Lines, templates.CartLine{
				ProductID: p.ID, Name: p.Name, Image: p.Image(), Qty: l.Qty,
				UnitPrice: cart.FormatCents(p.PriceCents), LineTotal: cart.FormatCents(p.PriceCents * l.Qty),
			})
		}
		httpx.Render(w, r, log, http.StatusOK, templates.CartPage(m))
	})
}

// pageModel fills what a shop page shows: the chrome every page shows
// (httpx.Page, which also shows the session the service reported), what
// the page knows of the session sess (not nil), and the flash the
// previous action left, with a product's name for its ID.
func pageModel(w http.ResponseWriter, r *http.Request, title string, sess *session.Session) templates.Page {
	p := httpx.Page(r, title)
	p.User = sess.User
	p.CartCount = sess.Cart.Count()
	p.Notice = sessionNotice(httpx.InfoOf(r), sess)
	p.Flash = httpx.TakeFlash(w, r)
	if f := p.Flash; f != nil && (f.Code == templates.FlashAdded || f.Code == templates.FlashUpdated || f.Code == templates.FlashRemoved) {
		if product, ok := cart.Lookup(f.Subject); ok {
			f.Subject = product.Name
		}
	}
	return p
}

// sessionNotice says why a session was lost or expired, so the person is
// never left wondering why the cart is empty. The sentences are the
// templates'.
func sessionNotice(ri httpx.Info, sess *session.Session) *templates.Notice {
	n := &templates.Notice{Replica: ri.Replica, LostFrom: sess.LostFrom}
	switch {
	case sess.Event == session.EventLost && ri.Mode == session.Sticky && sess.LostFrom != "" && sess.LostFrom != ri.Replica:
		n.Code = templates.NoticeLostElsewhere
	case sess.Event == session.EventLost && ri.Mode == session.Sticky:
		n.Code = templates.NoticeLostHere
	case sess.Event == session.EventLost && ri.Mode == session.Memcached:
		n.Code = templates.NoticeLostMemcached
	case sess.Event == session.EventLost:
		n.Code = templates.NoticeEnded
	case sess.Event == session.EventExpired:
		n.Code = templates.NoticeExpired
	default:
		return nil
	}
	return n
}
