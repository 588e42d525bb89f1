package web

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/sessiondemo/shop/templates"
	"github.com/sessiondemo/shop/web/cart"
	"github.com/sessiondemo/shop/web/session"
)

var modeOptions = []templates.ModeOption{
	{Value: string(session.Sticky), Label: "Sticky", Description: "Session in one replica's memory; nginx pins this browser to that replica."},
	{Value: string(session.Redis), Label: "Redis", Description: "Session in Redis, encrypted; any replica can serve any request."},
	{Value: string(session.JWT), Label: "JWT", Description: "Session in a signed token in a cookie; no replica stores anything."},
}

// pageModel fills what every page shows. sess may be nil (error pages
// before a session was loaded).
func pageModel(r *http.Request, title string, sess *session.Session) templates.Page {
	ri := info(r)
	p := templates.Page{
		Title:     title,
		Replica:   ri.Replica,
		Mode:      string(ri.Mode),
		Affinity:  ri.Affinity,
		RequestID: ri.RequestID,
		Path:      r.URL.Path,
		LinkQuery: linkQuery(ri),
		Session: templates.SessionInfo{
			Hash:  ri.SessionHash,
			Event: string(ri.SessionEvent),
			Store: ri.Describe,
		},
	}
	if ri.SessionHash != "" && !ri.Expires.IsZero() {
		p.Session.Ends = "in " + humanDuration(time.Until(ri.Expires))
		p.Session.EndsTitle = ri.Expires.UTC().Format("2006-01-02 15:04:05 UTC") + " if idle"
	}
	if ri.Mode == session.Sticky && ri.Affinity == affinityIP {
		p.ClientAddr = ri.ClientAddr
	}
	for _, o := range modeOptions {
		o.Selected = o.Value == p.Mode
		p.Modes = append(p.Modes, o)
	}
	for i, name := range ri.Trail {
		p.Trail = append(p.Trail, templates.TrailEntry{Replica: name, Current: i == len(ri.Trail)-1})
	}
	if sess != nil {
		p.User = sess.User
		p.CartCount = sess.Cart.Count()
		p.Notice = sessionNotice(ri, sess)
		if p.Notice == nil && sess.Degraded != "" {
			p.Notice = &templates.Notice{Kind: "warning", Title: "Running degraded", Message: sess.Degraded}
		}
	}
	return p
}

// linkQuery returns the query every link, form action and redirect of a
// page carries so that a client without cookies keeps its mode, technique
// and session: in sticky mode with url affinity mode, affinity and, once
// the session exists, sid; "" in every other case.
func linkQuery(ri *requestInfo) string {
	if ri.Mode != session.Sticky || ri.Affinity != affinityURL {
		return ""
	}
	v := url.Values{"mode": {string(session.Sticky)}, "affinity": {affinityURL}}
	if ri.SID != "" {
		v.Set(session.URLParam, ri.SID)
	}
	return v.Encode()
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

// sessionNotice explains a session that was lost or expired, so the person
// is never left wondering why the cart is empty.
func sessionNotice(ri *requestInfo, sess *session.Session) *templates.Notice {
	switch sess.Event {
	case session.EventLost:
		if ri.Mode == session.Sticky && sess.LostFrom != "" && sess.LostFrom != ri.Replica {
			return &templates.Notice{Kind: "warning", Title: "Your session was on " + sess.LostFrom,
				Message: fmt.Sprintf("This browser's session lived in the memory of %s, but this request was served by %s, which has never seen it. Either %s went down or the load balancer moved you. In sticky mode a session exists on one replica only, so the cart it held is gone. Redis or JWT mode would have kept it: any replica can read those.", sess.LostFrom, ri.Replica, sess.LostFrom)}
		}
		if ri.Mode == session.Sticky {
			return &templates.Notice{Kind: "warning", Title: "Your session is gone",
				Message: fmt.Sprintf("%s no longer holds this browser's session: it was restarted, and in sticky mode sessions live only in a replica's memory. The cart it held is gone. Redis or JWT mode would have kept it.", ri.Replica)}
		}
		return &templates.Notice{Kind: "info", Title: "Your previous session ended",
			Message: "The session this browser sent is not in the store any more (it expired or was ended), so a new one has started."}
	case session.EventExpired:
		return &templates.Notice{Kind: "info", Title: "Your session expired",
			Message: "Your session was idle for too long and ended, with its cart. A new one has started."}
	}
	return nil
}

// flashCookie carries a one-time message across a redirect, as a code the
// server turns into a sentence: a client cannot make the page say anything.
const flashCookie = "flash"

var flashPattern = regexp.MustCompile(`^[a-z-]{1,20}(\.[A-Za-z0-9_-]{1,32})?$`)

func setFlash(w http.ResponseWriter, r *http.Request, code, arg string) {
	v := code
	if arg != "" {
		v += "." + arg
	}
	if flashPattern.MatchString(v) {
		http.SetCookie(w, session.Cookie(r, flashCookie, v, 60))
	}
}

// takeFlash reads and clears the flash cookie.
func takeFlash(w http.ResponseWriter, r *http.Request) *templates.Flash {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	http.SetCookie(w, session.Expire(r, flashCookie))
	if !flashPattern.MatchString(c.Value) {
		return nil
	}
	code, arg, _ := strings.Cut(c.Value, ".")
	name := arg
	if p, ok := cart.Lookup(arg); ok {
		name = p.Name
	}
	switch code {
	case "added":
		return &templates.Flash{Kind: "success", Message: name + " added to your cart."}
	case "updated":
		return &templates.Flash{Kind: "success", Message: "Quantity of " + name + " updated."}
	case "removed":
		return &templates.Flash{Kind: "success", Message: name + " removed from your cart."}
	case "cleared":
		return &templates.Flash{Kind: "success", Message: "Your cart is empty now."}
	case "signed-in":
		return &templates.Flash{Kind: "success", Message: "Signed in as " + arg + ". Your session got a new ID, as it should on sign-in."}
	case "signed-out":
		return &templates.Flash{Kind: "info", Message: "Signed out. The old session was ended and a new one started."}
	case "affinity":
		switch arg {
		case affinityURL:
			return &templates.Flash{Kind: "info", Message: "Sticky mode now finds your replica by the URL: the session ID rides in every link, no cookie needed. It is a new session, apart from the cookie one."}
		case affinityIP:
			return &templates.Flash{Kind: "info", Message: "Sticky mode now finds your replica by your address: nginx hashes it. The session ID itself is still in a cookie."}
		case affinityCookie:
			return &templates.Flash{Kind: "info", Message: "Sticky mode now finds your replica by nginx's lb_route cookie."}
		}
		return nil
	case "mode":
		return &templates.Flash{Kind: "info", Message: "This browser now uses " + arg + " mode. Each mode keeps its own session and cart."}
	}
	return nil
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
