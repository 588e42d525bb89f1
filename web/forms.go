package web

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/sessiondemo/shop/templates"
	"github.com/sessiondemo/shop/web/cart"
	"github.com/sessiondemo/shop/web/internal/httpx"
	"github.com/sessiondemo/shop/web/session"
)

// handleForm serves the shop's HTML forms: it reads the form, builds the
// change, applies it and redirects back with a flash message (POST,
// redirect, GET), or shows the error page.
func handleForm(svc sessions, log *slog.Logger, build func(r *http.Request) (change, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := httpx.ParseForm(w, r); err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		c, err := build(r)
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		res, err := svc.Apply(w, r, c)
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		if !res.replayed {
			httpx.SetFlash(w, r, res.flash, res.arg)
		}
		// The page after the form carries the session on, as every link of
		// the form's page did (affinity url).
		http.Redirect(w, r, withQuery(safeReturn(r), httpx.LinkQuery(r)), http.StatusSeeOther)
	})
}

// formQty reads the qty field of a form.
func formQty(r *http.Request) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(r.PostFormValue("qty")))
	if err != nil {
		return 0, httpx.BadRequest(fmt.Sprintf("The quantity must be a whole number from 1 to %d.", cart.MaxQty))
	}
	return n, nil
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
		if err := httpx.ParseForm(w, r); err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		m, ok := session.ParseMode(r.PostFormValue("mode"))
		if !ok {
			httpx.WriteError(w, r, log, httpx.BadRequest("Choose "+session.Choices(session.Modes)+" mode."))
			return
		}
		// What the next page uses: the chosen mode, and the chosen affinity
		// or the one this request had.
		next := httpx.InfoOf(r)
		next.Mode = m
		chosen := r.PostFormValue("affinity")
		if chosen != "" {
			a, ok := session.ParseAffinity(chosen)
			if !ok {
				httpx.WriteError(w, r, log, httpx.BadRequest("Choose "+session.Choices(session.Affinities)+" affinity."))
				return
			}
			next.Affinity = a
			httpx.SetPreference(w, r, "affinity", string(a))
		}
		httpx.SetPreference(w, r, "mode", string(m))
		if chosen != "" && m == session.Sticky {
			httpx.SetFlash(w, r, templates.FlashAffinity, chosen)
		} else {
			httpx.SetFlash(w, r, templates.FlashMode, string(m))
		}
		// Switching into url affinity (or staying there) carries the mode,
		// the technique and any session the page already carried, so a
		// client without cookies keeps them; switching away carries nothing.
		http.Redirect(w, r, withQuery(safeReturn(r), httpx.LinkQueryFor(next, next.SID)), http.StatusSeeOther)
	})
}

// safeReturn returns the local path to redirect to after a form: return_to
// when it is a plain path on this site, "/" otherwise (no open redirects).
// The checks run on the decoded path: "/%5Cevil.example" decodes to a
// backslash after the slash, which browsers read as "//evil.example".
func safeReturn(r *http.Request) string {
	to := r.PostFormValue("return_to")
	u, err := url.Parse(to)
	if err != nil || !strings.HasPrefix(to, "/") || u.Host != "" || u.Scheme != "" || u.User != nil {
		return "/"
	}
	p := u.Path
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\x00\r\n\t") {
		return "/"
	}
	return u.EscapedPath()
}

// withQuery appends the encoded query q to path ("" leaves path alone).
func withQuery(path, q string) string {
	switch {
	case q == "":
		return path
	case strings.Contains(path, "?"):
		return path + "&" + q
	default:
		return path + "?" + q
	}
}
