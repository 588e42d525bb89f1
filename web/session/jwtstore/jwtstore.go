// Package jwtstore keeps the session in a signed token the browser carries:
// the jwt mode. No replica stores anything; any replica can verify the
// token. The algorithm is pinned to HS256, keys are looked up by the
// token's kid in a fixed set (so keys can rotate), and exp, iat, iss and aud
// are required.
package jwtstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/sessiondemo/shop/web/cart"
	"github.com/sessiondemo/shop/web/session"
)

// CookieName is the cookie that carries the token.
const CookieName = "jwt_session"

// TokenType is the token's typ header (RFC 8725 3.11: explicit typing).
const TokenType = "cart+jwt"

// MaxCookieBytes is the largest Set-Cookie a browser must keep: name, value
// and attributes together.
const MaxCookieBytes = 4096

// MaxAppliedInToken is how many applied idempotent requests a token
// carries (session.Data.Applied): the newest, within the session's
// KeepApplied. Few, since the token travels with every request and must
// fit in a cookie; few are needed, since a request applied again is
// applied to the token the client sent with it. A copy that nginx resent
// while a paused replica still held the first one, once that replica
// runs it, answers with a token nobody receives, and a client that got
// no answer retries with the token it still has, which never held the
// change.
const MaxAppliedInToken = 10

// maxTokenBytes bounds what Load will even try to parse.
const maxTokenBytes = 8192

// Claims is the token's payload.
type Claims struct {
	gojwt.RegisteredClaims
	// User is the signed-in demo user, or "".
	User string `json:"usr,omitempty"`
	// Cart is the cart's lines.
	Cart []cart.Line `json:"cart,omitempty"`
	// Applied lists the idempotent requests already applied (session.Data.Applied).
	Applied []string `json:"idem,omitempty"`
	// Started is when the session began, in Unix seconds.
	Started int64 `json:"sst"`
}

// Validate checks what the registered-claims validator does not: iat and
// jti are present, and the session data passes the check every session
// read back passes (session.Data.Validate: the cart obeys the cart rules,
// the idempotency list is one the shop writes).
func (c *Claims) Validate() error {
	if c.IssuedAt == nil {
		return errors.New("token has no iat claim")
	}
	if c.ID == "" {
		return errors.New("token has no jti claim")
	}
	if err := c.Data().Validate(); err != nil {
		// "token carries an invalid cart: …", "… an invalid idempotency list"
		return fmt.Errorf("token carries an %w", err)
	}
	return nil
}

// Data is the session data the token carries.
func (c *Claims) Data() session.Data {
	return session.Data{User: c.User, Cart: cart.Cart{Lines: c.Cart}, Applied: c.Applied}
}

// Options configure a Store. The zero value of each optional field has a
// documented default.
type Options struct {
	// Keys sign and verify tokens: Keys[0] signs, every key verifies. Each
	// secret must be at least 32 bytes. Required.
	Keys []session.Key
	// Issuer is the iss claim written and required. Default "session-demo".
	Issuer string
	// Audience is the aud claim written and required. Default "cart".
	Audience string
	// TTL is how long a token lives after it was last written: the idle
	// timeout. Default 30m.
	TTL time.Duration
	// Absolute caps every token's exp at the session's start plus this:
	// the absolute timeout. Default none.
	Absolute time.Duration
	// Leeway is the clock skew tolerated on exp and iat. Default 5s.
	Leeway time.Duration
	// MaxCookieBytes is the largest Set-Cookie written. Default MaxCookieBytes.
	MaxCookieBytes int
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// Revocations lists signed-in tokens that were ended (on sign-out or
	// sign-in) before they expired. Default none: a token is valid until
	// its exp, the stateless limit.
	Revocations Revocations
}

// Revocations is a list of ended tokens, kept outside the tokens (in Redis).
type Revocations interface {
	// Revoke ends the token with this jti for ttl, its remaining lifetime.
	Revoke(ctx context.Context, jti string, ttl time.Duration) error
	// Revoked reports whether the token was ended; an error means the list
	// cannot be read.
	Revoked(ctx context.Context, jti string) (bool, error)
}

// A signed-in token is checked against the revocation list on every
// request, and refused while the list cannot be reached: a token that was
// signed out must never work again, and while Redis is down no replica can
// tell a signed-out token from a live one. This fails closed for the
// signed-in only: an anonymous token was never revoked, needs no check,
// and keeps its cart while Redis is down. (The other choice, a local copy
// of the list, would let a token signed out on another replica through
// for as long as the copy is stale.)
var errListUnreachable = "Redis is unreachable, so this replica cannot check whether your signed-in token was signed out, and refuses it until it can: a signed-out copy of a token must never work again. Nothing was changed. Try again in a few seconds; signed-out shopping in jwt mode keeps working without Redis."

// Store keeps sessions in signed tokens.
type Store struct {
	opts   Options
	keys   map[string][]byte
	parser *gojwt.Parser

	// pending are the signed-in tokens whose sign-out could not reach the
	// revocation list: jti to exp, retried in the background (EndLater).
	mu      sync.Mutex
	pending map[string]time.Time
}

var _ session.Store = (*Store)(nil)

// New returns a store with the given options.
func New(opts Options) (*Store, error) {
	if len(opts.Keys) == 0 {
		return nil, errors.New("no JWT signing key configured")
	}
	keys := make(map[string][]byte, len(opts.Keys))
	for _, k := range opts.Keys {
		if len(k.Secret) < 32 {
			return nil, fmt.Errorf("JWT signing key %q: want at least 32 bytes, got %d", k.ID, len(k.Secret))
		}
		if k.ID == "" {
			return nil, errors.New("JWT signing key without an id")
		}
		if _, dup := keys[k.ID]; dup {
			return nil, fmt.Errorf("JWT signing key id %q is listed twice", k.ID)
		}
		keys[k.ID] = k.Secret
	}
	if opts.Issuer == "" {
		opts.Issuer = "session-demo"
	}
	if opts.Audience == "" {
		opts.Audience = "cart"
	}
	if opts.TTL == 0 {
		opts.TTL = 30 * time.Minute
	}
	if opts.Leeway == 0 {
		opts.Leeway = 5 * time.Second
	}
	if opts.MaxCookieBytes == 0 {
		opts.MaxCookieBytes = MaxCookieBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{opts: opts, keys: keys}
	s.parser = gojwt.NewParser(
		gojwt.WithValidMethods([]string{gojwt.SigningMethodHS256.Alg()}),
		gojwt.WithExpirationRequired(),
		gojwt.WithIssuedAt(),
		gojwt.WithIssuer(opts.Issuer),
		gojwt.WithAudience(opts.Audience),
		gojwt.WithLeeway(opts.Leeway),
		gojwt.WithTimeFunc(opts.Now),
	)
	return s, nil
}

// Mode returns session.JWT.
func (s *Store) Mode() session.Mode { return session.JWT }

// Describe says where sessions live.
func (s *Store) Describe() string { return "signed cookie (JWT)" }

func (s *Store) keyFunc(t *gojwt.Token) (any, error) {
	if _, ok := t.Method.(*gojwt.SigningMethodHMAC); !ok {
		return nil, fmt.Errorf("unexpected signing method %v", t.Header["alg"])
	}
	if typ, _ := t.Header["typ"].(string); typ != TokenType {
		return nil, fmt.Errorf("token type %q is not %q", typ, TokenType)
	}
	kid, _ := t.Header["kid"].(string)
	key, ok := s.keys[kid]
	if !ok {
		return nil, errors.New("unknown key id")
	}
	return key, nil
}

// Parse verifies a token and returns its claims.
func (s *Store) Parse(token string) (*Claims, error) {
	if len(token) > maxTokenBytes {
		return nil, errors.New("token is too long")
	}
	var c Claims
	if _, err := s.parser.ParseWithClaims(token, &c, s.keyFunc); err != nil {
		return nil, err
	}
	return &c, nil
}

// Load verifies the request's token. An expired token starts a new
// session; a forged, tampered or malformed one is an *InvalidCookieError.
func (s *Store) Load(r *http.Request) (*session.Session, error) {
	now := s.opts.Now()
	ck, err := session.ReadCookie(r, CookieName)
	if err != nil || ck.Value == "" {
		return session.New(session.EventCreated, now), nil
	}
	c, err := s.Parse(ck.Value)
	switch {
	case errors.Is(err, gojwt.ErrTokenExpired):
		return session.New(session.EventExpired, now), nil
	case err != nil:
		return nil, &session.InvalidCookieError{Cookie: CookieName, Reason: "its signature or claims do not check out, so it was not made by this shop (" + reason(err) + ")."}
	}
	sess := &session.Session{
		Data:    c.Data(),
		ID:      c.ID,
		Event:   session.EventFound,
		Started: time.Unix(c.Started, 0),
		Expires: c.ExpiresAt.Time,
		// Signing costs; a read re-signs only a token past half its life,
		// so an active session slides on without a signature per request,
		// and never one already at its absolute end.
		Refresh: c.ExpiresAt.Time.Sub(now) < s.opts.TTL/2 && c.ExpiresAt.Time.Before(s.expiry(time.Unix(c.Started, 0), now)),
	}
	// Only signed-in tokens are revoked (on sign-out), so only they cost a
	// look-up; an anonymous cart token stays free of Redis.
	if s.opts.Revocations != nil && c.User != "" {
		if s.isPending(c.ID) {
			return session.New(session.EventLost, now), nil
		}
		revoked, err := s.opts.Revocations.Revoked(r.Context(), c.ID)
		switch {
		case err != nil:
			return nil, &session.UnavailableError{Title: "Sign-out list unavailable", Message: errListUnreachable, Err: err}
		case revoked:
			return session.New(session.EventLost, now), nil
		}
	}
	return sess, nil
}

// reason turns a parser error into a short phrase without echoing input.
func reason(err error) string {
	for _, k := range []struct {
		err  error
		text string
	}{
		{gojwt.ErrTokenMalformed, "malformed token"},
		{gojwt.ErrTokenUnverifiable, "unknown key or algorithm"},
		{gojwt.ErrTokenSignatureInvalid, "bad signature"},
		{gojwt.ErrTokenInvalidIssuer, "wrong issuer"},
		{gojwt.ErrTokenInvalidAudience, "wrong audience"},
		{gojwt.ErrTokenUsedBeforeIssued, "issued in the future"},
		{gojwt.ErrTokenNotValidYet, "not valid yet"},
		{gojwt.ErrTokenRequiredClaimMissing, "a required claim is missing"},
		{gojwt.ErrTokenInvalidClaims, "invalid claims"},
	} {
		if errors.Is(err, k.err) {
			return k.text
		}
	}
	return "invalid token"
}

// Save signs a new token for the session and sets it as the cookie. A
// renewing or new session gets a new jti. A token that would not fit in a
// cookie is a *session.TooLargeError and nothing is written.
func (s *Store) Save(w http.ResponseWriter, r *http.Request, sess *session.Session) error {
	now := s.opts.Now()
	sess.ForgetApplied(now.Add(-max(s.opts.TTL, session.MinKeepApplied)), MaxAppliedInToken)
	renew, previous := sess.Renewing()
	id := sess.ID
	if id == "" || renew {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		id = base64.RawURLEncoding.EncodeToString(b)
	}
	token, err := s.Sign(Claims{
		RegisteredClaims: gojwt.RegisteredClaims{
			Issuer:    s.opts.Issuer,
			Audience:  gojwt.ClaimStrings{s.opts.Audience},
			ExpiresAt: gojwt.NewNumericDate(s.expiry(sess.Started, now)),
			IssuedAt:  gojwt.NewNumericDate(now),
			ID:        id,
		},
		User:    sess.User,
		Cart:    sess.Cart.Lines,
		Applied: sess.Applied,
		Started: sess.Started.Unix(),
	})
	if err != nil {
		return fmt.Errorf("sign session token: %w", err)
	}
	// A browser-session cookie: the token's exp ends the session, and an
	// expired token the browser still sends lets the page say it expired
	// instead of silently starting afresh.
	ck := session.Cookie(r, CookieName, token, 0)
	if size := len(ck.String()); size > s.opts.MaxCookieBytes {
		return &session.TooLargeError{Size: size, Limit: s.opts.MaxCookieBytes}
	}
	// The token that was renewed away stays valid until its exp unless it
	// is revoked: a revocation that cannot be written fails the save, and
	// nothing is written (the caller says so, see EndLater).
	if renew && previous != "" && s.opts.Revocations != nil && sess.RenewedFromUser() {
		if err := s.opts.Revocations.Revoke(r.Context(), previous, s.opts.TTL+s.opts.Leeway); err != nil {
			return &session.UnavailableError{Title: "Sign-out not recorded", Message: errListUnreachable, Err: err}
		}
	}
	sess.Expires = s.expiry(sess.Started, now).Truncate(time.Second)
	http.SetCookie(w, ck)
	sess.ID = id
	sess.Renewed()
	return nil
}

// expiry is the exp of a token written now for a session that began at
// started: the idle timeout from now, never past the absolute end.
func (s *Store) expiry(started, now time.Time) time.Time {
	return session.Timeouts{Idle: s.opts.TTL, Absolute: s.opts.Absolute}.Ends(started, now)
}

// Sign returns claims signed with the first key, with kid and typ headers.
func (s *Store) Sign(c Claims) (string, error) {
	t := gojwt.NewWithClaims(gojwt.SigningMethodHS256, &c)
	t.Header["kid"] = s.opts.Keys[0].ID
	t.Header["typ"] = TokenType
	return t.SignedString(s.opts.Keys[0].Secret)
}

// CookieName returns the cookie that carries the token.
func (s *Store) CookieName() string { return CookieName }

// endRetry is how often EndLater's revocations are tried again: the
// longest the other replicas, once they read Redis again, may still
// accept a signed-out copy of the token.
const endRetry = 250 * time.Millisecond

// EndLater revokes the request's signed-in token as soon as the
// revocation list can be reached: a sign-out that could not reach Redis.
// Until then this replica refuses the token itself; the others refuse
// every signed-in token while Redis is down. Once Redis takes writes
// again, the next try (within endRetry) writes the revocation; in that
// moment, and until a Redis replica has it too, the others may accept the
// token. A replica that stops before Redis is back forgets the
// revocation: the page says so.
func (s *Store) EndLater(r *http.Request) bool {
	ck, err := session.ReadCookie(r, CookieName)
	if err != nil || s.opts.Revocations == nil {
		return false
	}
	c, err := s.Parse(ck.Value)
	if err != nil || c.User == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		s.pending = map[string]time.Time{}
		go s.retryPending()
	}
	s.pending[c.ID] = c.ExpiresAt.Time
	return true
}

// isPending reports whether the token jti waits for its revocation.
func (s *Store) isPending(jti string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.pending[jti]
	return ok
}

// retryPending writes the pending revocations, every endRetry, for as
// long as the process runs.
func (s *Store) retryPending() {
	for {
		time.Sleep(endRetry)
		s.mu.Lock()
		todo := maps.Clone(s.pending)
		s.mu.Unlock()
		for jti, exp := range todo {
			left := exp.Sub(s.opts.Now()) + s.opts.Leeway
			if left > 0 {
				ctx, cancel := context.WithTimeout(context.Background(), endRetry)
				err := s.opts.Revocations.Revoke(ctx, jti, left)
				cancel()
				if err != nil {
					continue
				}
			}
			s.mu.Lock()
			delete(s.pending, jti)
			s.mu.Unlock()
		}
	}
}
