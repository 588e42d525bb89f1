package web

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/sessiondemo/shop/web/cart"
	"github.com/sessiondemo/shop/web/internal/httpx"
	"github.com/sessiondemo/shop/web/session"
)

// cartJSON is the body of every cart answer of the API.
type cartJSON struct {
	Mode    string `json:"mode"`
	Replica string `json:"replica"`
	User    string `json:"user"`
	Session string `json:"session"`
	Event   string `json:"session_event"`
	// SID is the session ID, in sticky mode with url affinity only: the
	// client sends it back as the query parameter sid.
	SID        string         `json:"sid,omitempty"`
	ExpiresAt  *time.Time     `json:"expires_at,omitempty"`
	Items      []cartItemJSON `json:"items"`
	Count      int            `json:"count"`
	TotalCents int            `json:"total_cents"`
}

type cartItemJSON struct {
	ProductID  string `json:"product_id"`
	Name       string `json:"name"`
	Qty        int    `json:"qty"`
	PriceCents int    `json:"price_cents"`
}

func newCartJSON(r *http.Request, sess *session.Session) cartJSON {
	ri := httpx.InfoOf(r)
	out := cartJSON{
		Mode: string(ri.Mode), Replica: ri.Replica, User: sess.User,
		Session: sess.Hash(), Event: string(sess.Event),
		Items: []cartItemJSON{}, Count: sess.Cart.Count(), TotalCents: sess.Cart.TotalCents(),
	}
	if ri.SIDInURL() {
		out.SID = sess.ID
	}
	if !sess.Expires.IsZero() && sess.ID != "" {
		t := sess.Expires.UTC().Truncate(time.Second)
		out.ExpiresAt = &t
	}
	for _, l := range sess.Cart.Lines {
		p, _ := cart.Lookup(l.ProductID)
		out.Items = append(out.Items, cartItemJSON{ProductID: p.ID, Name: p.Name, Qty: l.Qty, PriceCents: p.PriceCents})
	}
	return out
}

// handleHealthz serves GET /healthz: the process is up. It does not check
// Redis, since sticky and jwt modes work without it.
func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
}

// handleAPIPing serves GET /api/ping: no session, otherwise the same path
// through the middleware as any API call; the baseline of the load runs.
func handleAPIPing() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := httpx.InfoOf(r)
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"replica": ri.Replica, "mode": string(ri.Mode)})
	})
}

// handleAPIProducts serves GET /api/products, the catalog.
func handleAPIProducts() http.Handler {
	type productJSON struct {
		ID         string `json:"id"`
		Name       string `json:"name"`
		PriceCents int    `json:"price_cents"`
		Image      string `json:"image"`
	}
	var body []productJSON
	for _, p := range cart.Products() {
		body = append(body, productJSON{p.ID, p.Name, p.PriceCents, p.Image()})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, body)
	})
}

// handleAPICart serves GET /api/cart, the caller's cart.
func handleAPICart(svc sessions, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := svc.Read(w, r)
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, newCartJSON(r, sess))
	})
}

// handleAPIChange serves the API's state changes: it decodes the JSON body
// into T, builds the change, applies it and answers with the cart.
func handleAPIChange[T any](svc sessions, log *slog.Logger, build func(r *http.Request, body T) (change, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body T
		if err := httpx.DecodeJSON(w, r, &body); err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		c, err := build(r, body)
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		res, err := svc.Apply(w, r, c)
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, newCartJSON(r, res.sess))
	})
}

// noBody is the body of API calls that take none; any JSON object is accepted.
type noBody struct{}

type addBody struct {
	ProductID *string `json:"product_id"`
	Qty       *int    `json:"qty"`
}

func apiAdd(r *http.Request, b addBody) (change, error) {
	if b.ProductID == nil {
		return change{}, httpx.BadRequest(`The body needs "product_id", e.g. {"product_id":"p1","qty":1}.`)
	}
	qty := 1
	if b.Qty != nil {
		qty = *b.Qty
	}
	return addItem(*b.ProductID, qty), nil
}

type setBody struct {
	Qty *int `json:"qty"`
}

func apiSet(r *http.Request, b setBody) (change, error) {
	if b.Qty == nil {
		return change{}, httpx.BadRequest(`The body needs "qty", e.g. {"qty":3}.`)
	}
	return setItem(r.PathValue("product_id"), *b.Qty), nil
}

func apiRemove(r *http.Request, _ noBody) (change, error) {
	return removeItem(r.PathValue("product_id")), nil
}

func apiClear(r *http.Request, _ noBody) (change, error) { return clearCart, nil }

type loginBody struct {
	User string `json:"user"`
}

func apiLogin(r *http.Request, b loginBody) (change, error) { return signIn(b.User), nil }

func apiLogout(r *http.Request, _ noBody) (change, error) { return signOut, nil }
