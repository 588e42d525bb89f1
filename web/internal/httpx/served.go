package httpx

import (
	"net/http"
	"time"

	"github.com/sessiondemo/shop/web/session"
)

// Served is what the handler reported of the session a request served
// (ReportSession): the log line, the admin's request log, the page chrome
// and error pages read it. It is not part of Info, which is fixed before
// the handler runs: a request learns its session only when it loads it.
type Served struct {
	// Hash is a short hash of the session's ID (never the ID), "" for a
	// session that has none yet or was rejected.
	Hash string
	// Event says what the request found of its session.
	Event session.Event
	// Expires is when the session ends if idle; zero when unknown.
	Expires time.Time
	// SID is the session ID the request's links carry: the session's ID
	// when it travels in URLs (sticky mode, url affinity), "" otherwise,
	// and "" for a rejected one.
	SID string
}

// servedRecord is where ReportSession writes (requestState).
type servedRecord struct {
	served   Served
	reported bool
}

// ReportSession records the session the request served, once it is final
// (loaded, and saved if it changed). sess nil means the session the
// request carried was rejected (a malformed or forged cookie or link):
// the request lost it. A later call replaces an earlier one.
func ReportSession(r *http.Request, sess *session.Session) {
	st := stateOf(r)
	if st == nil {
		return
	}
	rec := &st.served
	rec.reported = true
	if sess == nil {
		rec.served = Served{Event: session.EventLost}
		return
	}
	rec.served = Served{Hash: sess.Hash(), Event: sess.Event}
	if sess.ID != "" {
		rec.served.Expires = sess.Expires
		if InfoOf(r).SIDInURL() {
			rec.served.SID = sess.ID
		}
	}
}

// ReportedSession returns what the handler reported with ReportSession,
// and false when it reported nothing (no session was loaded).
func ReportedSession(r *http.Request) (Served, bool) {
	st := stateOf(r)
	if st == nil || !st.served.reported {
		return Served{}, false
	}
	return st.served.served, true
}
