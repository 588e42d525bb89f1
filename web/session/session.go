// Package session defines the one interface the shop's session modes
// implement, and what they share: the session's data, its events, cookies
// and errors. The stores live in sub-packages, one per backing technology
// (memstore, redisstore, jwtstore); handlers only ever see Store.
package session

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sessiondemo/shop/web/cart"
)

// Mode names a way of keeping sessions.
type Mode string

// The session modes.
const (
	// Sticky keeps sessions in one replica's memory; the load balancer pins the browser.
	Sticky Mode = "sticky"
	// Redis keeps sessions in Redis, so any replica can serve any request.
	Redis Mode = "redis"
	// JWT keeps the session in a signed token the browser carries.
	JWT Mode = "jwt"
	// Memcached keeps sessions in Memcached, spread over its servers: any
	// replica can serve any request, but a server that restarts, or fills
	// up and evicts, loses sessions.
	Memcached Mode = "memcached"
)

// Modes lists every mode in display order. Everything that ranges over
// the modes (the toggle, the request log's counts, the admin charts, the
// simulator) ranges over this list.
var Modes = []Mode{Sticky, Redis, JWT, Memcached}

// ParseMode returns the mode named s, and false if s names none.
func ParseMode(s string) (Mode, bool) { return parse(Modes, s) }

// Affinity names a technique by which the load balancer finds the replica
// that holds a sticky session.
type Affinity string

// The affinity techniques of sticky mode.
const (
	// AffinityCookie: the load balancer sets a cookie naming the replica.
	AffinityCookie Affinity = "cookie"
	// AffinityURL: the session ID travels in the URL (query parameter
	// URLParam), and its prefix names the replica.
	AffinityURL Affinity = "url"
	// AffinityIP: a hash of the client address picks the replica.
	AffinityIP Affinity = "ip"
)

// Affinities lists every affinity technique in display order; the first
// is the default.
var Affinities = []Affinity{AffinityCookie, AffinityURL, AffinityIP}

// ParseAffinity returns the technique named s, and false if s names none.
func ParseAffinity(s string) (Affinity, bool) { return parse(Affinities, s) }

func parse[T ~string](list []T, s string) (T, bool) {
	for _, v := range list {
		if string(v) == s {
			return v, true
		}
	}
	return "", false
}

// Choices lists values for a sentence: "sticky, redis or jwt".
func Choices[T ~string](list []T) string {
	var b strings.Builder
	for i, v := range list {
		switch {
		case i == 0:
		case i == len(list)-1:
			b.WriteString(" or ")
		default:
			b.WriteString(", ")
		}
		b.WriteString(string(v))
	}
	return b.String()
}

// ReplicaNamePattern is the form of a replica's name, unanchored: 1 to 32
// lower-case letters, digits, '-' or '_', starting with a letter or digit.
// A sticky session's ID starts with the name of the replica that holds it,
// so the name must be safe in cookies, URLs and log lines.
const ReplicaNamePattern = `[a-z0-9][a-z0-9_-]{0,31}`

var replicaName = regexp.MustCompile(`^` + ReplicaNamePattern + `$`)

// ValidReplicaName reports whether s is a replica name (ReplicaNamePattern).
func ValidReplicaName(s string) bool { return replicaName.MatchString(s) }

// Event says what a request found of its session.
type Event string

// The session events a request can see.
const (
	// EventFound: the request carried a session the store holds.
	EventFound Event = "found"
	// EventCreated: the request carried no session; a new one was started.
	EventCreated Event = "created"
	// EventLost: the request carried a session the store no longer holds (its replica died, it was revoked, or it never existed).
	EventLost Event = "lost"
	// EventExpired: the request carried a session that timed out.
	EventExpired Event = "expired"
)

// Data is what a session holds, the same in every mode.
type Data struct {
	// User is the signed-in demo user, or "".
	User string
	// Cart is the shopping cart.
	Cart cart.Cart
	// Applied lists the requests with an idempotency key that changed
	// this session, oldest first, each "key:request:unix seconds" (the
	// short hashes Remember takes and when it was applied). Kept with the
	// cart, in the same write, so a retried request is applied once: a
	// client's retry, or a copy nginx resent after the first one's replica
	// stopped answering and that replica then ran (a paused one runs it
	// when it is unpaused). The stores keep an entry for KeepApplied.
	Applied []string
}

// MaxApplied bounds how many applied requests a session keeps whatever
// their age, so that what a store writes on every change stays small: a
// thousand keyed changes within KeepApplied is a load test, not a
// shopper. A token (jwt mode) keeps fewer (its store says how many).
const MaxApplied = 1000

// Recall reports whether a request with keyHash was applied, and whether
// it carried the same request fingerprint (see Remember).
func (d Data) Recall(keyHash, requestHash string) (seen, same bool) {
	for _, a := range d.Applied {
		k, rest, _ := strings.Cut(a, ":")
		if k == keyHash {
			r, _, _ := strings.Cut(rest, ":")
			return true, r == requestHash
		}
	}
	return false, false
}

// Remember records that the request with keyHash and requestHash was
// applied at the time at, forgetting the oldest beyond MaxApplied.
func (d *Data) Remember(keyHash, requestHash string, at time.Time) {
	d.Applied = append(d.Applied, keyHash+":"+requestHash+":"+strconv.FormatInt(at.Unix(), 10))
	d.ForgetApplied(time.Time{}, MaxApplied)
}

// ForgetApplied forgets the requests applied before since, and the
// oldest beyond limit. The list is oldest first, so it drops from the
// front and reads no further than the first entry it keeps. An entry
// written before entries carried their time counts as applied long ago.
func (d *Data) ForgetApplied(since time.Time, limit int) {
	drop := 0
	for drop < len(d.Applied) && appliedAt(d.Applied[drop]).Before(since) {
		drop++
	}
	drop = max(drop, len(d.Applied)-limit)
	if drop > 0 {
		d.Applied = append([]string(nil), d.Applied[drop:]...)
	}
}

// appliedAt is when an Applied entry was applied; the zero time when it
// does not say.
func appliedAt(entry string) time.Time {
	if strings.Count(entry, ":") != 2 {
		return time.Time{}
	}
	sec, err := strconv.ParseInt(entry[strings.LastIndexByte(entry, ':')+1:], 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(sec, 0)
}

// Clone returns a copy of d that shares no memory with it.
func (d Data) Clone() Data {
	return Data{User: d.User, Cart: d.Cart.Clone(), Applied: append([]string(nil), d.Applied...)}
}

var appliedPattern = regexp.MustCompile(`^[0-9a-f]{1,32}:[0-9a-f]{1,32}(:[0-9]{1,12})?$`)

// ValidApplied reports whether a list read back from a store is one this
// package writes (entries without a time are from before they had one).
func ValidApplied(applied []string) bool {
	if len(applied) > MaxApplied {
		return false
	}
	for _, a := range applied {
		if !appliedPattern.MatchString(a) {
			return false
		}
	}
	return true
}

// Session is one request's view of its session. Handlers read and change
// Data, then hand the session back to the store's Save.
type Session struct {
	Data
	// ID identifies the session in its store: the memory or Redis key, or the
	// token's jti. It is "" for a new session until its first Save.
	ID string
	// Event says what the request found.
	Event Event
	// LostFrom names the replica that held a session this request could not
	// find, when the store can tell (sticky mode); otherwise "".
	LostFrom string
	// Started is when the session began.
	Started time.Time
	// Expires is when the session ends if nothing else happens: the idle
	// timeout from now, capped by the absolute timeout. Zero when unknown.
	Expires time.Time
	// Version identifies the stored state this session was loaded from, for
	// stores that save conditionally: a Save over a state that changed in
	// the meantime fails with ErrConflict instead of losing that change.
	// "" for a session that was not loaded from the store.
	Version string
	// Refresh is set by a store whose session must be saved again even
	// though nothing changed, to stay alive (a token past half its life).
	Refresh bool

	renew        bool
	previous     string
	previousUser bool
}

// New returns a fresh, unsaved session with the given event.
func New(event Event, now time.Time) *Session {
	return &Session{Event: event, Started: now}
}

// Renew asks the next Save to give the session a new ID and to forget the
// old one, as on sign-in and sign-out (OWASP: renew the ID on privilege
// change). Call it before changing the user.
func (s *Session) Renew() {
	if !s.renew {
		s.previous = s.ID
		s.previousUser = s.User != ""
	}
	s.renew = true
}

// RenewedFromUser reports whether the ID being renewed away belonged to a
// signed-in user.
func (s *Session) RenewedFromUser() bool { return s.renew && s.previousUser }

// Renewing reports whether the next Save must issue a new ID, and the ID
// it must forget ("" when there is none).
func (s *Session) Renewing() (bool, string) { return s.renew, s.previous }

// Renewed tells the session its store has issued the new ID.
func (s *Session) Renewed() { s.renew, s.previous, s.previousUser = false, "", false }

// Hash returns a short, stable hash of the session's ID, safe to show and log.
// It is "" for a session that has no ID yet.
func (s *Session) Hash() string { return HashID(s.ID) }

// HashID returns the first 8 hex digits of the SHA-256 of id, or "" for "".
func HashID(id string) string {
	if id == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:4])
}

// Timeouts end sessions on the server (OWASP ASVS 3.3): Idle after the
// last request, Absolute after the session began, whatever happens. A zero
// duration is no limit.
type Timeouts struct {
	Idle     time.Duration
	Absolute time.Duration
}

// Ends returns when a session that began at started and was last active at
// active ends. The zero time means never.
func (t Timeouts) Ends(started, active time.Time) time.Time {
	var end time.Time
	if t.Idle > 0 {
		end = active.Add(t.Idle)
	}
	if t.Absolute > 0 {
		if abs := started.Add(t.Absolute); end.IsZero() || abs.Before(end) {
			end = abs
		}
	}
	return end
}

// MinKeepApplied is the shortest time a session remembers an applied
// idempotency key, however short its timeouts: longer than nginx keeps
// resending a request (X-Request-Budget, compose/nginx.conf) and than a
// client that retries for half a minute.
const MinKeepApplied = time.Minute

// KeepApplied is how long a session remembers the idempotency keys it
// applied (Data.Applied): its idle timeout, or without one its absolute
// timeout, and at least MinKeepApplied. Zero, without either timeout:
// kept until MaxApplied newer ones push them out.
func (t Timeouts) KeepApplied() time.Duration {
	switch {
	case t.Idle > 0:
		return max(t.Idle, MinKeepApplied)
	case t.Absolute > 0:
		return max(t.Absolute, MinKeepApplied)
	}
	return 0
}

// AppliedSince is the oldest time of an applied request a session still
// remembers at now (KeepApplied); the zero time keeps every one.
func (t Timeouts) AppliedSince(now time.Time) time.Time {
	if keep := t.KeepApplied(); keep > 0 {
		return now.Add(-keep)
	}
	return time.Time{}
}

// Ended reports whether such a session has ended at now.
func (t Timeouts) Ended(started, active, now time.Time) bool {
	end := t.Ends(started, active)
	return !end.IsZero() && !now.Before(end)
}

// Store keeps sessions for one mode. Implementations are safe for
// concurrent use.
type Store interface {
	// Mode returns the mode this store implements.
	Mode() Mode
	// Load returns the session the request carries. A request without one, or
	// with one the store does not hold (any more), gets a new, unsaved session
	// whose Event says which; that is not an error. Errors are for a cookie
	// that is malformed or forged (*InvalidCookieError) and for a store that
	// cannot be reached (ErrUnavailable).
	Load(r *http.Request) (*Session, error)
	// Save persists the session and sets the cookie that carries it. It
	// issues a new ID for a new session or one that is being renewed. A
	// store that keeps sessions on the server saves only over the state the
	// session was loaded from (Version), else returns ErrConflict. On error
	// nothing was written to w and the stored session is unchanged.
	Save(w http.ResponseWriter, r *http.Request, s *Session) error
	// Describe says where this store keeps sessions, for people to read.
	Describe() string
}

// NaiveSaver is implemented by a store that can also save the way a plain
// read-modify-write does: a write of the whole session over whatever is
// stored, the last writer winning. It exists only so a person
// can watch concurrent updates get lost, next to Save, which does not lose
// them; nothing uses it unless a request asks for it (see the handlers'
// X-Write-Strategy header). It is an optional interface rather than a
// method of Store, so Store stays small and only the store whose safe write
// differs from the naive one (redisstore) has to offer it.
type NaiveSaver interface {
	// SaveNaive persists the session like Save, except that it never
	// checks Version: a change saved by a concurrent request between this
	// one's Load and SaveNaive is overwritten and lost. It still returns
	// ErrConflict for a session that ended meanwhile, which it must not
	// bring back. A new or renewing session is saved as Save would.
	SaveNaive(w http.ResponseWriter, r *http.Request, s *Session) error
}

// Confirmer is implemented by a store that acknowledges a write only once
// it is durable (redis mode: once the Redis replicas have it). A request
// answered from the stored session without writing it, because the
// session already holds its change (an idempotent request replayed),
// calls Confirm first: the change may be one that was stored but never
// acknowledged (its WAIT timed out, and the store answered 503), and the
// replay must not acknowledge what a failover could still lose.
type Confirmer interface {
	// Confirm returns nil once the session, as loaded, is as durable as a
	// Save would have made it, and otherwise the error Save would have
	// returned. Like Save it may set headers on w.
	Confirm(w http.ResponseWriter, r *http.Request, s *Session) error
}

// ErrConflict reports that the stored session changed between Load and
// Save (a concurrent request saved first). Nothing was written; the caller
// loads again and reapplies its change.
var ErrConflict = errors.New("the session changed concurrently")

// ErrUnavailable reports that the session store cannot be reached. Handlers
// answer it with 503 and never save over the session.
var ErrUnavailable = errors.New("the session store is unavailable")

// InvalidCookieError reports a session cookie that is malformed, tampered
// with or forged. Handlers answer it with 400 and expire the cookie.
type InvalidCookieError struct {
	// Cookie is the cookie's name.
	Cookie string
	// Reason says what is wrong, as a sentence.
	Reason string
	// InURL is set when the ID came from the query parameter URLParam of
	// the request's URL rather than from the cookie.
	InURL bool
}

func (e *InvalidCookieError) Error() string {
	if e.InURL {
		return fmt.Sprintf("The session ID in this link (query parameter %q) was not accepted: %s", URLParam, e.Reason)
	}
	return fmt.Sprintf("Your session cookie %q was not accepted: %s", e.Cookie, e.Reason)
}

// TooLargeError reports a session that would not fit in its cookie.
type TooLargeError struct {
	// Size is the size the cookie would have had, in bytes.
	Size int
	// Limit is the largest cookie allowed, in bytes.
	Limit int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("That change would make your session token %d bytes, more than the %d bytes a cookie may hold. Remove something from the cart, or switch to sticky or redis mode, which keep the cart on the server.", e.Size, e.Limit)
}

// Key is a named secret, for encryption or signing. Keys rotate: the first
// of a list is used for new values, every key of the list is accepted.
type Key struct {
	// ID names the key inside tokens and ciphertexts; it is not secret.
	ID string
	// Secret is the key material.
	Secret []byte
}

// HostPrefix binds a cookie to the host that set it, to the path / and to
// https (RFC 6265bis, "__Host-"): no sibling or parent domain can set or
// shadow it. A browser refuses such a cookie without Secure, so it is used
// only on requests that came over https.
const HostPrefix = "__Host-"

// CookieName returns the name the cookie name goes by on r: with
// HostPrefix when r came over https, as is otherwise.
func CookieName(r *http.Request, name string) string {
	if IsHTTPS(r) {
		return HostPrefix + name
	}
	return name
}

// ReadCookie returns r's cookie name under the name it goes by on r
// (CookieName): over https only the prefixed one counts.
func ReadCookie(r *http.Request, name string) (*http.Cookie, error) {
	return r.Cookie(CookieName(r, name))
}

// Cookie returns a session cookie with the project's flags: HttpOnly,
// SameSite=Lax, Path=/, and, when the request came over https (directly
// or, per nginx's X-Forwarded-Proto, to the load balancer), Secure and
// the __Host- prefix (CookieName; read it with ReadCookie). maxAge < 0
// deletes the cookie; 0 makes it last for the browser session.
func Cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     CookieName(r, name),
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   IsHTTPS(r),
		SameSite: http.SameSiteLaxMode,
	}
}

// IsHTTPS reports whether the browser reached us over https.
func IsHTTPS(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}

// Expire returns a cookie that deletes the named cookie.
func Expire(r *http.Request, name string) *http.Cookie {
	return Cookie(r, name, "", -1)
}

// Inspection shows a person how a store holds one request's session, for
// the admin page. It never carries the session ID itself.
type Inspection struct {
	// Mode is the store's mode.
	Mode Mode `json:"mode"`
	// Held is true when the store holds a session for the request.
	Held bool `json:"held"`
	// Where says, as a sentence, where the session is (or why there is none).
	Where string `json:"where"`
	// Replica names the replica whose memory holds the session, for stores
	// that keep sessions in one replica ("" otherwise).
	Replica string `json:"replica,omitempty"`
	// Raw is the session as stored or sent (hex or text, shortened), "" when
	// there is nothing to show.
	Raw string `json:"raw,omitempty"`
	// RawBytes is the size of what is stored or sent, in bytes.
	RawBytes int `json:"raw_bytes"`
	// Decoded is what Raw means, as indented JSON.
	Decoded string `json:"decoded,omitempty"`
	// Limit is the most RawBytes may be (a cookie's 4,096 bytes), or 0.
	Limit int `json:"limit,omitempty"`
}

// Inspector is implemented by stores that can show how they hold a
// request's session.
type Inspector interface {
	Inspect(r *http.Request) Inspection
}

// URLParam is the query parameter that carries a sticky session's ID when
// the session travels in URLs (affinity url, for clients without cookies).
const URLParam = "sid"

type idInURLKey struct{}

// WithIDInURL returns r marked so that a store that supports it reads the
// session ID from the query parameter URLParam instead of its cookie, and
// sets no cookie: the session travels in the URLs of the pages alone.
func WithIDInURL(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), idInURLKey{}, true))
}

// IDInURL reports whether r was marked by WithIDInURL.
func IDInURL(r *http.Request) bool {
	v, _ := r.Context().Value(idInURLKey{}).(bool)
	return v
}
