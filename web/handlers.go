package web

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mathrand "math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sessiondemo/shop/templates"
	"github.com/sessiondemo/shop/web/cart"
	"github.com/sessiondemo/shop/web/session"
)

// Stores holds one session store per mode.
type Stores map[session.Mode]session.Store

// load returns the session store for the request's mode and the session
// the request carries, and records what was found for the log.
func (st Stores) load(r *http.Request) (session.Store, *session.Session, error) {
	ri := info(r)
	store, ok := st[ri.Mode]
	if !ok {
		return nil, nil, badRequest(fmt.Sprintf("Session mode %q is not available on this replica.", ri.Mode))
	}
	ri.Describe = store.Describe()
	sess, err := store.Load(r)
	if err != nil {
		var ic *session.InvalidCookieError
		if errors.As(err, &ic) {
			ri.SessionEvent = session.EventLost
			ri.SID = ""
		}
		return store, nil, err
	}
	ri.SessionHash, ri.SessionEvent, ri.Expires = sess.Hash(), sess.Event, sess.Expires
	if session.IDInURL(r) {
		ri.SID = sess.ID
	}
	return store, sess, nil
}

// loadForRead loads the session of a request that changes nothing, and
// saves it only when the store asks to (a JWT past half its life).
func (st Stores) loadForRead(w http.ResponseWriter, r *http.Request) (*session.Session, error) {
	store, sess, err := st.load(r)
	if err != nil {
		return nil, err
	}
	if sess.Refresh {
		if err := save(store, w, r, sess); err != nil {
			return nil, err
		}
	}
	return sess, nil
}

// save writes the session and records its (possibly new) hash for the log.
// A request that asked for the naive write strategy (redis mode, see
// writeStrategy) is saved with the store's naive write: it conflicts only
// when the session ended meanwhile, so a concurrent change is lost.
func save(store session.Store, w http.ResponseWriter, r *http.Request, sess *session.Session) error {
	var err error
	if ns, ok := store.(session.NaiveSaver); ok && info(r).WriteStrategy == writeNaive {
		err = ns.SaveNaive(w, r, sess)
	} else {
		err = store.Save(w, r, sess)
	}
	if err != nil {
		return err
	}
	ri := info(r)
	ri.SessionHash, ri.Expires = sess.Hash(), sess.Expires
	if session.IDInURL(r) {
		ri.SID = sess.ID
	}
	return nil
}

// change is one state change on a session, shared by forms and the API.
type change struct {
	// what describes the change, for idempotency: a key reused with a
	// different change is refused.
	what string
	// apply makes the change and returns the flash code and argument a
	// form shows afterwards.
	apply func(sess *session.Session) (flash, arg string, err error)
}

func addItem(id string, qty int) change {
	return change{fmt.Sprintf("add %s %d", id, qty), func(s *session.Session) (string, string, error) {
		return "added", id, s.Cart.Add(id, qty)
	}}
}

func setItem(id string, qty int) change {
	return change{fmt.Sprintf("set %s %d", id, qty), func(s *session.Session) (string, string, error) {
		return "updated", id, s.Cart.Set(id, qty)
	}}
}

func removeItem(id string) change {
	return change{"remove " + id, func(s *session.Session) (string, string, error) {
		return "removed", id, s.Cart.Remove(id)
	}}
}

var clearCart = change{"clear", func(s *session.Session) (string, string, error) {
	s.Cart.Clear()
	return "cleared", "", nil
}}

var userPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

func signIn(user string) change {
	return change{"login " + user, func(s *session.Session) (string, string, error) {
		if !userPattern.MatchString(user) {
			return "", "", badRequest("A demo user name is 1 to 32 letters, digits, '-' or '_'.")
		}
		s.Renew()
		s.User = user
		return "signed-in", user, nil
	}}
}

var signOut = change{"logout", func(s *session.Session) (string, string, error) {
	s.Renew()
	s.Data = session.Data{}
	s.Started = time.Now()
	return "signed-out", "", nil
}}

var idempotencyKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{8,64}$`)

// idempotency identifies a request that a client or nginx may retry: the
// Idempotency-Key header, or the idem query parameter of a form's action.
type idempotency struct {
	key     string // short hash of the key
	request string // short hash of what the request changes
}

// idempotencyOf reads the request's idempotency key, if it has one.
func idempotencyOf(r *http.Request, c change) (*idempotency, error) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		key = r.URL.Query().Get("idem")
	}
	if key == "" {
		return nil, nil
	}
	if !idempotencyKeyPattern.MatchString(key) {
		return nil, badRequest("An Idempotency-Key is 8 to 64 letters, digits, '-' or '_'.")
	}
	return &idempotency{key: shortHash(key, 6), request: shortHash(r.URL.Path+" "+c.what, 4)}, nil
}

func shortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:n])
}

// result is what apply did.
type result struct {
	sess     *session.Session
	flash    string
	arg      string
	replayed bool
}

// maxAttempts bounds how often apply reloads and reapplies a change whose
// save lost a race with a concurrent request of the same browser; between
// attempts it waits a random, growing pause so racing requests spread out.
const maxAttempts = 20

// apply loads the session, applies the change and saves. A request whose
// idempotency key the session has seen is not applied again: it answers
// with the session as it is (replayed). When another request of the same
// browser saved in between (session.ErrConflict), it loads again and
// reapplies the change, so no update is lost. On any other error nothing
// is saved: the stored session stays as it was.
func apply(stores Stores, w http.ResponseWriter, r *http.Request, c change) (result, error) {
	idem, err := idempotencyOf(r, c)
	if err != nil {
		return result{}, err
	}
	first := ""
	for attempt := 1; ; attempt++ {
		res, err := applyOnce(stores, w, r, c, idem, attempt, &first)
		if !errors.Is(err, session.ErrConflict) {
			return res, err
		}
		if attempt == maxAttempts {
			return result{}, &httpError{http.StatusConflict, "Too many changes at once",
				fmt.Sprintf("Your session changed %d times while this change was being saved; nothing was changed. Try again.", maxAttempts)}
		}
		// A fresh response for the next attempt: the failed save wrote no
		// cookie, but a replay marker or the like must not leak.
		w.Header().Del("Idempotent-Replayed")
		time.Sleep(time.Duration(mathrand.Int64N(int64(attempt) * int64(time.Millisecond))))
	}
}

func applyOnce(stores Stores, w http.ResponseWriter, r *http.Request, c change, idem *idempotency, attempt int, first *string) (result, error) {
	store, sess, err := stores.load(r)
	if err != nil {
		return result{}, err
	}
	// A retry that finds another session than the first attempt did (a
	// concurrent sign-in or sign-out renewed the ID) must not apply the
	// change to a fresh one: the person would look signed out, the cart
	// they carried along out of reach.
	if attempt == 1 {
		*first = sess.ID
	} else if sess.Event != session.EventFound || sess.ID != *first {
		return result{}, &httpError{http.StatusConflict, "Your session changed",
			"Your session changed while this change was being made (you signed in or out in another tab); nothing was changed. Reload and try again."}
	}
	if idem != nil {
		if seen, same := sess.Recall(idem.key, idem.request); seen {
			if !same {
				return result{}, &httpError{http.StatusUnprocessableEntity, "Idempotency key reused",
					"This Idempotency-Key was already used for a different change; use a new key for each change."}
			}
			w.Header().Set("Idempotent-Replayed", "true")
			return result{sess: sess, replayed: true}, nil
		}
	}
	flash, arg, err := c.apply(sess)
	if err != nil {
		return result{}, err
	}
	if idem != nil {
		sess.Remember(idem.key, idem.request)
	}
	if err := save(store, w, r, sess); err != nil {
		return result{}, err
	}
	return result{sess: sess, flash: flash, arg: arg}, nil
}

// handleHealthz serves GET /healthz: the process is up. It does not check
// Redis, since sticky and jwt modes work without it.
func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
}

// handleShopPage serves GET /, the product grid.
func handleShopPage(stores Stores, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := stores.loadForRead(w, r)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		m := templates.ShopModel{Page: pageModel(r, "Shop", sess)}
		m.Page.Flash = takeFlash(w, r)
		for _, p := range cart.Products() {
			m.Products = append(m.Products, templates.Product{
				ID: p.ID, Name: p.Name, Description: p.Description, Image: p.Image(),
				Price: cart.FormatCents(p.PriceCents), InCart: sess.Cart.Qty(p.ID),
				IdempotencyKey: newRequestID()[:20],
			})
		}
		render(w, r, log, http.StatusOK, templates.ShopPage(m))
	})
}

// jwtLastWriterNote says, on the cart page in jwt mode, what the token
// does to changes made at the same moment (measured on the admin page).
const jwtLastWriterNote = "In JWT mode this cart travels in your cookie, and each change answers with a new token. Two changes at the same moment (two tabs, a double click) both start from the same token; the browser keeps the token that arrives last, so the other change is lost. The admin page's \"20 concurrent adds\" measures it: the server-side modes keep all 21 items, JWT keeps a couple."

// handleCartPage serves GET /cart.
func handleCartPage(stores Stores, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := stores.loadForRead(w, r)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		m := templates.CartModel{
			Page:   pageModel(r, "Your cart", sess),
			Count:  sess.Cart.Count(),
			Total:  cart.FormatCents(sess.Cart.TotalCents()),
			MaxQty: cart.MaxQty,
		}
		if info(r).Mode == session.JWT {
			m.ModeNote = jwtLastWriterNote
		}
		m.Page.Flash = takeFlash(w, r)
		for _, l := range sess.Cart.Lines {
			p, _ := cart.Lookup(l.ProductID)
			m.Lines = append(m.Lines, templates.CartLine{
				ProductID: p.ID, Name: p.Name, Image: p.Image(), Qty: l.Qty,
				UnitPrice: cart.FormatCents(p.PriceCents), LineTotal: cart.FormatCents(p.PriceCents * l.Qty),
			})
		}
		render(w, r, log, http.StatusOK, templates.CartPage(m))
	})
}

// handleNotFound serves every path no route matches.
func handleNotFound(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, log, &httpError{http.StatusNotFound, "Page not found", "There is nothing at " + truncate(r.URL.Path, 60) + "."})
	})
}

// maxFormBytes bounds a form or JSON body.
const maxFormBytes = 4 << 10

// parseForm reads a form body of at most maxFormBytes.
func parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return badRequest(fmt.Sprintf("The form is larger than %d bytes.", maxFormBytes))
		}
		return badRequest("The form could not be read.")
	}
	return nil
}

// formQty reads the qty field of a form.
func formQty(r *http.Request) (int, error) {
	v := strings.TrimSpace(r.PostFormValue("qty"))
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, badRequest(fmt.Sprintf("The quantity must be a whole number from 1 to %d.", cart.MaxQty))
	}
	return n, nil
}

// handleForm serves the shop's HTML forms: it reads the form, builds the
// change, applies it and redirects back with a flash message (POST,
// redirect, GET), or shows the error page.
func handleForm(stores Stores, log *slog.Logger, build func(r *http.Request) (change, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := parseForm(w, r); err != nil {
			writeError(w, r, log, err)
			return
		}
		c, err := build(r)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		res, err := apply(stores, w, r, c)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		if !res.replayed {
			setFlash(w, r, res.flash, res.arg)
		}
		// The page after the form carries the session on, as every link of
		// the form's page did (affinity url).
		http.Redirect(w, r, withQuery(safeReturn(r), linkQuery(info(r))), http.StatusSeeOther)
	})
}

func formAdd(r *http.Request) (change, error) {
	qty := 1
	if r.PostFormValue("qty") != "" {
		n, err := formQty(r)
		if err != nil {
			return change{}, err
		}
		qty = n
	}
	return addItem(r.PostFormValue("product_id"), qty), nil
}

func formUpdate(r *http.Request) (change, error) {
	qty, err := formQty(r)
	if err != nil {
		return change{}, err
	}
	return setItem(r.PostFormValue("product_id"), qty), nil
}

func formRemove(r *http.Request) (change, error) {
	return removeItem(r.PostFormValue("product_id")), nil
}
func formClear(r *http.Request) (change, error) { return clearCart, nil }
func formLogin(r *http.Request) (change, error) {
	return signIn(strings.TrimSpace(r.PostFormValue("user"))), nil
}
func formLogout(r *http.Request) (change, error) { return signOut, nil }

// handleModeForm serves POST /mode: it switches this browser's session
// mode (and, optionally, sticky affinity technique) by cookie.
func handleModeForm(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := parseForm(w, r); err != nil {
			writeError(w, r, log, err)
			return
		}
		m, ok := session.ParseMode(r.PostFormValue("mode"))
		if !ok {
			writeError(w, r, log, badRequest("Choose sticky, redis or jwt mode."))
			return
		}
		// What the next page uses: the chosen mode, and the chosen affinity
		// or the one this request had.
		next := *info(r)
		next.Mode = m
		if a := r.PostFormValue("affinity"); a != "" {
			if !validAffinity(a) {
				writeError(w, r, log, badRequest("Choose cookie, url or ip affinity."))
				return
			}
			next.Affinity = a
			setPreference(w, r, "affinity", a)
		}
		setPreference(w, r, "mode", string(m))
		if a := r.PostFormValue("affinity"); a != "" && m == session.Sticky {
			setFlash(w, r, "affinity", a)
		} else {
			setFlash(w, r, "mode", string(m))
		}
		// Switching into url affinity (or staying there) carries the mode,
		// the technique and any session the page already carried, so a
		// client without cookies keeps them; switching away carries nothing.
		http.Redirect(w, r, withQuery(safeReturn(r), linkQuery(&next)), http.StatusSeeOther)
	})
}

// setPreference sets a long-lived preference cookie nginx can read.
func setPreference(w http.ResponseWriter, r *http.Request, name, value string) {
	http.SetCookie(w, session.Cookie(r, name, value, 365*24*3600))
}

// cartJSON is the body of every cart answer of the API.
type cartJSON struct {
	Mode     string `json:"mode"`
	Replica  string `json:"replica"`
	User     string `json:"user"`
	Session  string `json:"session"`
	Event    string `json:"session_event"`
	Degraded string `json:"degraded,omitempty"`
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
	ri := info(r)
	out := cartJSON{
		Mode: string(ri.Mode), Replica: ri.Replica, User: sess.User,
		Session: sess.Hash(), Event: string(sess.Event), Degraded: sess.Degraded, SID: ri.SID,
		Items: []cartItemJSON{}, Count: sess.Cart.Count(), TotalCents: sess.Cart.TotalCents(),
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

// handleAPIPing serves GET /api/ping: no session, otherwise the same path
// through the middleware as any API call; the baseline of the load runs.
func handleAPIPing() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := info(r)
		writeJSON(w, http.StatusOK, map[string]string{"replica": ri.Replica, "mode": string(ri.Mode)})
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
		writeJSON(w, http.StatusOK, body)
	})
}

// handleAPICart serves GET /api/cart, the caller's cart.
func handleAPICart(stores Stores, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := stores.loadForRead(w, r)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		writeJSON(w, http.StatusOK, newCartJSON(r, sess))
	})
}

// handleAPIChange serves the API's state changes: it decodes the JSON body
// into T when T is not struct{}, builds the change, applies it and answers
// with the cart.
func handleAPIChange[T any](stores Stores, log *slog.Logger, build func(r *http.Request, body T) (change, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body T
		if err := decodeJSON(w, r, &body); err != nil {
			writeError(w, r, log, err)
			return
		}
		c, err := build(r, body)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		res, err := apply(stores, w, r, c)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		writeJSON(w, http.StatusOK, newCartJSON(r, res.sess))
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
		return change{}, badRequest(`The body needs "product_id", e.g. {"product_id":"p1","qty":1}.`)
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
		return change{}, badRequest(`The body needs "qty", e.g. {"qty":3}.`)
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

// decodeJSON reads one JSON object of at most maxFormBytes into v, with
// errors a person understands. An empty body is an empty object.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return badRequest(fmt.Sprintf("The request body is larger than %d bytes.", maxFormBytes))
		}
		return badRequest("The request body could not be read.")
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		data = []byte("{}")
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var (
			se *json.SyntaxError
			te *json.UnmarshalTypeError
		)
		switch {
		case errors.As(err, &se):
			return badRequest(fmt.Sprintf("The request body is not valid JSON (at byte %d).", se.Offset))
		case errors.As(err, &te) && te.Field != "":
			return badRequest(fmt.Sprintf("%q must be %s, not %s.", te.Field, jsonKind(te.Type.Kind().String()), te.Value))
		case errors.As(err, &te):
			return badRequest("The request body must be a JSON object.")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return badRequest(fmt.Sprintf("The request body has a field this API does not know: %s.", truncate(strings.TrimPrefix(err.Error(), "json: unknown field "), 40)))
		case errors.Is(err, io.ErrUnexpectedEOF):
			return badRequest("The request body is cut off: it is not complete JSON.")
		default:
			return badRequest("The request body is not valid JSON.")
		}
	}
	if dec.More() {
		return badRequest("The request body must hold one JSON object, not several.")
	}
	return nil
}

func jsonKind(kind string) string {
	switch kind {
	case "int", "ptr":
		return "a whole number"
	case "string":
		return "a string"
	}
	return "a " + kind
}
