package httpx

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/a-h/templ"

	"github.com/sessiondemo/shop/templates"
	"github.com/sessiondemo/shop/web/session"
)

// Render writes a component with the status. It renders into a buffer
// first, so a component that fails halfway never leaves a half page.
func Render(w http.ResponseWriter, r *http.Request, log *slog.Logger, status int, c templ.Component) {
	var buf bytes.Buffer
	if err := c.Render(r.Context(), &buf); err != nil {
		log.ErrorContext(r.Context(), "render page", "request_id", InfoOf(r).RequestID, "err", err)
		http.Error(w, "Internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// Page returns what every page shows: from the request's Info the
// replica, the mode toggle, the trail and the mode's store; from what the
// handler reported (ReportSession) the session's hash, event and end, and
// the session ID its links carry in sticky mode with url affinity (before
// any report: the one the request carried). The caller adds the rest.
func Page(r *http.Request, title string) templates.Page {
	ri := InfoOf(r)
	p := templates.Page{
		Title:     title,
		Replica:   ri.Replica,
		Mode:      string(ri.Mode),
		Affinity:  string(ri.Affinity),
		RequestID: ri.RequestID,
		Path:      r.URL.Path,
		LinkQuery: LinkQuery(r),
		Session:   templates.SessionInfo{Store: ri.StoreDescription},
	}
	if served, ok := ReportedSession(r); ok {
		p.Session.Hash, p.Session.Event = served.Hash, string(served.Event)
		if served.Hash != "" && !served.Expires.IsZero() {
			p.Session.Ends = "in " + humanDuration(time.Until(served.Expires))
			p.Session.EndsTitle = served.Expires.UTC().Format("2006-01-02 15:04:05 UTC") + " if idle"
		}
	}
	if ri.Mode == session.Sticky && ri.Affinity == session.AffinityIP {
		p.ClientAddr = ri.ClientAddr
	}
	for _, m := range session.Modes {
		p.Modes = append(p.Modes, templates.ModeOption{Value: string(m), Selected: m == ri.Mode})
	}
	for _, a := range session.Affinities {
		p.Affinities = append(p.Affinities, string(a))
	}
	for i, name := range ri.Trail {
		p.Trail = append(p.Trail, templates.TrailEntry{Replica: name, Current: i == len(ri.Trail)-1})
	}
	return p
}

// LinkQuery returns the query every link, form action and redirect of the
// request's page carries, so that a client without cookies keeps its
// mode, technique and session: in sticky mode with url affinity mode,
// affinity and the session ID (the one the handler reported, else the
// one the request carried); "" in every other case.
func LinkQuery(r *http.Request) string {
	ri := InfoOf(r)
	sid := ri.SID
	if served, ok := ReportedSession(r); ok {
		sid = served.SID
	}
	return LinkQueryFor(ri, sid)
}

// LinkQueryFor is LinkQuery for the mode, technique and session ID of ri
// and sid, such as those a mode switch is about to choose.
func LinkQueryFor(ri Info, sid string) string {
	if !ri.SIDInURL() {
		return ""
	}
	v := url.Values{"mode": {string(session.Sticky)}, "affinity": {string(session.AffinityURL)}}
	if sid != "" {
		v.Set(session.URLParam, sid)
	}
	return v.Encode()
}

// humanDuration rounds d for people: "45 s", "29 min", "11 h 59 min".
func humanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", max(0, int(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	default:
		return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
	}
}

// flashCookie carries a one-time message across a redirect, as a code the
// page turns into a sentence: a client cannot make the page say anything.
const flashCookie = "flash"

var flashPattern = regexp.MustCompile(`^[a-z-]{1,20}(\.[A-Za-z0-9_-]{1,32})?$`)

// SetFlash leaves a one-time message for the next page: code is one of
// templates' Flash codes, arg what it is about (a product ID, a user, a
// mode). A value that does not fit the cookie's pattern is dropped.
func SetFlash(w http.ResponseWriter, r *http.Request, code, arg string) {
	v := code
	if arg != "" {
		v += "." + arg
	}
	if flashPattern.MatchString(v) {
		http.SetCookie(w, session.Cookie(r, flashCookie, v, 60))
	}
}

// TakeFlash reads and clears the message SetFlash left, or returns nil.
// Its Subject is the argument as set (a product's ID, not its name).
func TakeFlash(w http.ResponseWriter, r *http.Request) *templates.Flash {
	c, err := session.ReadCookie(r, flashCookie)
	if err != nil {
		return nil
	}
	http.SetCookie(w, session.Expire(r, flashCookie))
	if !flashPattern.MatchString(c.Value) {
		return nil
	}
	code, arg, _ := strings.Cut(c.Value, ".")
	return &templates.Flash{Code: code, Subject: arg}
}

// SetPreference sets a long-lived preference cookie nginx can read, such
// as the session mode. It keeps its plain name over https too: nginx
// reads it as $cookie_mode, and a variable's name cannot hold the '-' of
// the __Host- prefix. It holds a choice, not a secret.
func SetPreference(w http.ResponseWriter, r *http.Request, name, value string) {
	c := session.Cookie(r, name, value, 365*24*3600)
	c.Name = name
	http.SetCookie(w, c)
}
