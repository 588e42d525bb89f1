package session

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"time"
)

// The ID cookie of the stores that keep sessions on a server (memstore,
// redisstore, mcstore): the browser holds only an ID, which the store
// reads, checks and sets through its IDCookie, and nowhere else.
// (jwtstore's cookie carries the whole session, a token: it reads it
// with ReadCookie and sets it with Cookie, the flags every cookie has.)

// IDFormat is the form of the session IDs one server-side store issues,
// and the only form it accepts: a number of random bytes from
// crypto/rand in an unpadded encoding, after "<replica>." in a format
// that names the replica. Every format holds at least 256 random bits. The
// formats are the table below, and differ only where the store's
// technology decides.
type IDFormat struct {
	bytes   int
	enc     idEncoding
	replica bool
	pattern *regexp.Regexp
}

// The ID formats, one per server-side store:
//
//   - StickyIDs (memstore, sticky mode): "<replica>." and 32 bytes in
//     base64url. The session lives in one replica's memory only, so its ID
//     names that replica (ReplicaNamePattern): a replica that gets the
//     request after a failover says where the session was
//     (Session.LostFrom), and the admin page asks that replica for it.
//   - RedisIDs (redisstore, redis mode): 64 bytes in base32, 103
//     characters: the IDs rbcervilla/redisstore gives the sessions it
//     creates (its generateRandomKey). The wrapper issues its own, for
//     renewals and for the writes it makes itself, in the library's form,
//     so every key under session: in Redis is one the library could have
//     written, and the sessions stored before stay valid.
//   - MemcachedIDs (mcstore, memcached mode): 32 bytes in base64url, 43
//     characters, a sticky ID without the replica: no library dictates a
//     form, and no one replica holds the session (the client hashes the
//     key to pick a server).
//
// Each store accepts only its own format, so a cookie of one mode is
// refused by another's store rather than looked up.
var (
	// StickyIDs is the form of memstore's IDs.
	StickyIDs = newIDFormat(true, 32, base64URL)
	// RedisIDs is the form of redisstore's IDs.
	RedisIDs = newIDFormat(false, 64, base32NoPad)
	// MemcachedIDs is the form of mcstore's IDs.
	MemcachedIDs = newIDFormat(false, 32, base64URL)
)

// idEncoding turns random bytes into an ID's text.
type idEncoding struct {
	encoding interface {
		EncodeToString(src []byte) string
		EncodedLen(n int) int
	}
	// alphabet is the encoding's characters, as a regexp class.
	alphabet string
}

var (
	base64URL   = idEncoding{base64.RawURLEncoding, `[A-Za-z0-9_-]`}
	base32NoPad = idEncoding{base32.StdEncoding.WithPadding(base32.NoPadding), `[A-Z2-7]`}
)

func newIDFormat(replica bool, bytes int, enc idEncoding) IDFormat {
	p := fmt.Sprintf(`%s{%d}`, enc.alphabet, enc.encoding.EncodedLen(bytes))
	if replica {
		p = `(` + ReplicaNamePattern + `)\.` + p
	}
	return IDFormat{bytes: bytes, enc: enc, replica: replica, pattern: regexp.MustCompile(`^` + p + `$`)}
}

// New returns a fresh ID of the format. replica names the replica that
// issues it, in a format that names one (StickyIDs); the others take "".
func (f IDFormat) New(replica string) (string, error) {
	b := make([]byte, f.bytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	id := f.enc.encoding.EncodeToString(b)
	if f.replica {
		id = replica + "." + id
	}
	return id, nil
}

// Valid reports whether id is of the format.
func (f IDFormat) Valid(id string) bool { return f.pattern.MatchString(id) }

// Replica returns the replica named by id, of a format that names one,
// and whether id is of the format at all.
func (f IDFormat) Replica(id string) (string, bool) {
	m := f.pattern.FindStringSubmatch(id)
	if m == nil {
		return "", false
	}
	if f.replica {
		return m[1], true
	}
	return "", true
}

// IDCookie is the cookie that carries a server-side store's session ID,
// and that store's one way to read, check and set it.
type IDCookie struct {
	// Name is the cookie's name; over https it goes by HostPrefix+Name
	// (CookieName).
	Name string
	// Mode is the store's mode; it names the session in what a person
	// reads.
	Mode Mode
	// Format is the form of the IDs the store issues, the only one it
	// accepts.
	Format IDFormat
	// URL lets the ID travel in the query parameter URLParam instead of the
	// cookie, on a request marked with WithIDInURL (sticky mode's url
	// affinity): on such a request the ID is read from the URL alone, and
	// no cookie is set. Without URL the mark is ignored.
	URL bool
}

// inURL reports whether the ID of r travels in its URL.
func (c IDCookie) inURL(r *http.Request) bool { return c.URL && IDInURL(r) }

// Value returns the ID the request carries, unchecked, or "" for none:
// the query parameter URLParam when it travels in the URL, the cookie
// otherwise. The other carrier is never read, so a session travelling in
// URLs and one in the cookie stay apart.
func (c IDCookie) Value(r *http.Request) string {
	if c.inURL(r) {
		return r.URL.Query().Get(URLParam)
	}
	if ck, err := ReadCookie(r, c.Name); err == nil {
		return ck.Value
	}
	return ""
}

// Load begins a store's Load: it returns the ID the request carries, for
// the store to look up, or, with id "", what the store's Load returns
// instead: a new session (EventCreated) for a request that carries no ID,
// and an *InvalidCookieError for an ID not of the Format (one the store
// never issued, so it is never looked up).
func (c IDCookie) Load(r *http.Request, now time.Time) (id string, instead *Session, err error) {
	id = c.Value(r)
	switch {
	case id == "":
		return "", New(EventCreated, now), nil
	case !c.Format.Valid(id):
		return "", nil, &InvalidCookieError{Cookie: c.Name, Reason: "it is not a session ID this shop issues.", InURL: c.inURL(r)}
	}
	return id, nil, nil
}

// Set sets the cookie to id, with the flags of Cookie, for the browser
// session (no Max-Age): the store's timeouts end the session, and its
// reads slide them, so the browser must not drop the ID on its own. It
// sets nothing when the ID travels in the URL: the caller puts the ID
// into the links it hands out.
func (c IDCookie) Set(w http.ResponseWriter, r *http.Request, id string) {
	if c.inURL(r) {
		return
	}
	http.SetCookie(w, Cookie(r, c.Name, id, 0))
}

// Inspect begins the admin page's view of the session with ID id (as
// Value returns it): ok when id is of the Format, and otherwise an
// Inspection that says why there is nothing to show.
func (c IDCookie) Inspect(id string) (in Inspection, ok bool) {
	in.Mode = c.Mode
	switch {
	case id == "":
		in.Where = "This browser has no " + string(c.Mode) + " session yet."
	case !c.Format.Valid(id):
		in.Where = "The " + string(c.Mode) + " session cookie is not an ID this shop issues."
	default:
		return in, true
	}
	return in, false
}

// URLParam is the query parameter that carries a sticky session's ID when
// the session travels in URLs (affinity url, for clients without cookies).
const URLParam = "sid"

type idInURLKey struct{}

// WithIDInURL returns r marked so that a store that supports it (an
// IDCookie with URL) reads the session ID from the query parameter
// URLParam instead of its cookie, and sets no cookie: the session travels
// in the URLs of the pages alone.
func WithIDInURL(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), idInURLKey{}, true))
}

// IDInURL reports whether r was marked by WithIDInURL.
func IDInURL(r *http.Request) bool {
	v, _ := r.Context().Value(idInURLKey{}).(bool)
	return v
}
