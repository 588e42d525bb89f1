package jwtstore

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/sessiondemo/shop/web/cart"
	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/session/sessiontest"
)

var (
	k1 = session.Key{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}
	k2 = session.Key{ID: "k2", Secret: []byte("fedcba9876543210fedcba9876543210")}
)

func newStore(t testing.TB, opts Options) *Store {
	t.Helper()
	if opts.Keys == nil {
		opts.Keys = []session.Key{k1}
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	sessiontest.Run(t, sessiontest.Contract{
		New:       func(t *testing.T) session.Store { return newStore(t, Options{}) },
		Cookie:    CookieName,
		Stateful:  false,
		Malformed: "eyJhbGciOiJIUzI1NiJ9.e30.AAAA",
	})
}

// validClaims returns claims the store accepts at now.
func validClaims(now time.Time) Claims {
	return Claims{
		RegisteredClaims: gojwt.RegisteredClaims{
			Issuer:    "session-demo",
			Audience:  gojwt.ClaimStrings{"cart"},
			ExpiresAt: gojwt.NewNumericDate(now.Add(time.Minute)),
			IssuedAt:  gojwt.NewNumericDate(now),
			ID:        "abc",
		},
		Cart:    []cart.Line{{ProductID: "p1", Qty: 2}},
		Started: now.Unix(),
	}
}

func loadToken(st *Store, token string) (*session.Session, error) {
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: CookieName, Value: token})
	return st.Load(r)
}

func sign(t *testing.T, method gojwt.SigningMethod, key any, header map[string]any, c Claims) string {
	t.Helper()
	tok := gojwt.NewWithClaims(method, &c)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRejectsForgedAndInvalidTokens(t *testing.T) {
	now := time.Now()
	st := newStore(t, Options{})
	good := func(mutate func(*Claims)) Claims { c := validClaims(now); mutate(&c); return c }
	hdr := map[string]any{"kid": "k1", "typ": TokenType}
	none := func(alg string) string {
		enc := base64.RawURLEncoding.EncodeToString
		return enc([]byte(`{"alg":"`+alg+`","typ":"cart+jwt","kid":"k1"}`)) + "." +
			enc([]byte(`{"iss":"session-demo","aud":"cart","exp":`+itoa(now.Add(time.Minute).Unix())+`,"iat":`+itoa(now.Unix())+`,"jti":"x","cart":[{"p":"p1","q":99}]}`)) + "."
	}
	cases := map[string]string{
		"alg none":         none("none"),
		"alg None":         none("None"),
		"alg NONE":         none("NONE"),
		"wrong key":        sign(t, gojwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), hdr, validClaims(now)),
		"unknown kid":      sign(t, gojwt.SigningMethodHS256, k1.Secret, map[string]any{"kid": "k9", "typ": TokenType}, validClaims(now)),
		"path kid":         sign(t, gojwt.SigningMethodHS256, k1.Secret, map[string]any{"kid": "../../k1", "typ": TokenType}, validClaims(now)),
		"no typ":           sign(t, gojwt.SigningMethodHS256, k1.Secret, map[string]any{"kid": "k1", "typ": "JWT"}, validClaims(now)),
		"HS512":            sign(t, gojwt.SigningMethodHS512, k1.Secret, hdr, validClaims(now)),
		"wrong issuer":     sign(t, gojwt.SigningMethodHS256, k1.Secret, hdr, good(func(c *Claims) { c.Issuer = "evil" })),
		"wrong audience":   sign(t, gojwt.SigningMethodHS256, k1.Secret, hdr, good(func(c *Claims) { c.Audience = gojwt.ClaimStrings{"admin"} })),
		"no audience":      sign(t, gojwt.SigningMethodHS256, k1.Secret, hdr, good(func(c *Claims) { c.Audience = nil })),
		"no exp":           sign(t, gojwt.SigningMethodHS256, k1.Secret, hdr, good(func(c *Claims) { c.ExpiresAt = nil })),
		"no iat":           sign(t, gojwt.SigningMethodHS256, k1.Secret, hdr, good(func(c *Claims) { c.IssuedAt = nil })),
		"iat in future":    sign(t, gojwt.SigningMethodHS256, k1.Secret, hdr, good(func(c *Claims) { c.IssuedAt = gojwt.NewNumericDate(now.Add(time.Hour)) })),
		"nbf in future":    sign(t, gojwt.SigningMethodHS256, k1.Secret, hdr, good(func(c *Claims) { c.NotBefore = gojwt.NewNumericDate(now.Add(time.Hour)) })),
		"unknown product":  sign(t, gojwt.SigningMethodHS256, k1.Secret, hdr, good(func(c *Claims) { c.Cart = []cart.Line{{ProductID: "free", Qty: 1}} })),
		"qty out of range": sign(t, gojwt.SigningMethodHS256, k1.Secret, hdr, good(func(c *Claims) { c.Cart = []cart.Line{{ProductID: "p1", Qty: 1000}} })),
		"garbage":          "not.a.token",
		"huge":             "Bearer " + strings.Repeat(".", 1<<16),
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := loadToken(st, tok)
			var inv *session.InvalidCookieError
			if !errors.As(err, &inv) {
				t.Fatalf("got session %+v, err %v; want *InvalidCookieError", s, err)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestEveryFlippedBitIsRejected(t *testing.T) {
	now := time.Now()
	st := newStore(t, Options{})
	tok := sign(t, gojwt.SigningMethodHS256, k1.Secret, map[string]any{"kid": "k1", "typ": TokenType}, validClaims(now))
	if _, err := loadToken(st, tok); err != nil {
		t.Fatalf("valid token rejected: %v", err)
	}
	accepted := 0
	for i := 0; i < len(tok); i++ {
		for _, bit := range []byte{1, 2, 4, 8, 16, 32} {
			b := []byte(tok)
			b[i] ^= bit
			if string(b) == tok {
				continue
			}
			if s, err := loadToken(st, string(b)); err == nil && s.Event == session.EventFound {
				// base64url's last character may carry unused bits; a flip
				// there decodes to the same bytes and is still our token.
				if !sameDecoded(tok, string(b)) {
					accepted++
					t.Errorf("flipped bit %d of byte %d accepted", bit, i)
				}
			}
		}
	}
	if accepted > 0 {
		t.Errorf("%d tampered tokens accepted", accepted)
	}
}

func sameDecoded(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	if len(pa) != 3 || len(pb) != 3 {
		return false
	}
	for i := range pa {
		da, e1 := base64.RawURLEncoding.DecodeString(pa[i])
		db, e2 := base64.RawURLEncoding.DecodeString(pb[i])
		if e1 != nil || e2 != nil || string(da) != string(db) {
			return false
		}
	}
	return true
}

func TestExpiryAndLeeway(t *testing.T) {
	now := time.Unix(2_000_000_000, 0)
	st := newStore(t, Options{Leeway: 30 * time.Second, Now: func() time.Time { return now }})
	hdr := map[string]any{"kid": "k1", "typ": TokenType}
	at := func(expAgo time.Duration) string {
		c := validClaims(now.Add(-time.Hour))
		c.ExpiresAt = gojwt.NewNumericDate(now.Add(-expAgo))
		return sign(t, gojwt.SigningMethodHS256, k1.Secret, hdr, c)
	}
	if s, err := loadToken(st, at(20*time.Second)); err != nil || s.Event != session.EventFound {
		t.Errorf("exp 20s ago with 30s leeway: %+v %v, want found", s, err)
	}
	if s, err := loadToken(st, at(40*time.Second)); err != nil || s.Event != session.EventExpired || s.Cart.Count() != 0 {
		t.Errorf("exp 40s ago with 30s leeway: %+v %v, want a new expired session", s, err)
	}
}

func TestKeyRotation(t *testing.T) {
	old := newStore(t, Options{Keys: []session.Key{k1}})
	s := session.New(session.EventCreated, time.Now())
	_ = s.Cart.Add("p2", 1)
	w := httptest.NewRecorder()
	if err := old.Save(w, httptest.NewRequest("POST", "/", nil), s); err != nil {
		t.Fatal(err)
	}
	tok := w.Result().Cookies()[0].Value

	both := newStore(t, Options{Keys: []session.Key{k2, k1}})
	if got, err := loadToken(both, tok); err != nil || got.Cart.Qty("p2") != 1 {
		t.Errorf("k1 token during rotation: %+v %v, want accepted", got, err)
	}
	w = httptest.NewRecorder()
	if err := both.Save(w, httptest.NewRequest("POST", "/", nil), s); err != nil {
		t.Fatal(err)
	}
	parsed, _, _ := gojwt.NewParser().ParseUnverified(w.Result().Cookies()[0].Value, &Claims{})
	if parsed.Header["kid"] != "k2" {
		t.Errorf("new tokens signed with %v, want k2", parsed.Header["kid"])
	}
	onlyNew := newStore(t, Options{Keys: []session.Key{k2}})
	var inv *session.InvalidCookieError
	if _, err := loadToken(onlyNew, tok); !errors.As(err, &inv) {
		t.Errorf("k1 token after k1 was removed: err %v, want rejected", err)
	}
}

func TestRefusesShortKeys(t *testing.T) {
	if _, err := New(Options{Keys: []session.Key{{ID: "k", Secret: []byte("short")}}}); err == nil {
		t.Error("a 5-byte key was accepted")
	}
	if _, err := New(Options{}); err == nil {
		t.Error("no keys accepted")
	}
}

func TestTooLargeCartIsRefused(t *testing.T) {
	st := newStore(t, Options{MaxCookieBytes: 400})
	s := session.New(session.EventCreated, time.Now())
	for _, p := range cart.Products() {
		_ = s.Cart.Add(p.ID, 99)
	}
	w := httptest.NewRecorder()
	err := st.Save(w, httptest.NewRequest("POST", "/", nil), s)
	var tl *session.TooLargeError
	if !errors.As(err, &tl) || tl.Limit != 400 || tl.Size <= 400 {
		t.Fatalf("err = %v, want TooLargeError over 400", err)
	}
	if len(w.Result().Cookies()) != 0 {
		t.Error("a cookie was written despite the error")
	}
	// With the real limit the whole catalog at 99 each fits.
	st = newStore(t, Options{})
	if err := st.Save(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil), s); err != nil {
		t.Errorf("full catalog does not fit in 4 KB: %v", err)
	}
}

func FuzzParseToken(f *testing.F) {
	st := newStore(f, Options{})
	now := time.Now()
	c := validClaims(now)
	tok, _ := st.Sign(c)
	f.Add(tok)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add(strings.Repeat(".", 100))
	f.Fuzz(func(t *testing.T, s string) {
		claims, err := st.Parse(s)
		if err != nil {
			return
		}
		// Anything accepted must re-sign to exactly itself: only our signer
		// makes tokens we accept.
		again, err := st.Sign(*claims)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Parse(again); err != nil {
			t.Fatalf("re-signed accepted token rejected: %v", err)
		}
		if err := (cart.Cart{Lines: claims.Cart}).Validate(); err != nil {
			t.Fatalf("accepted token with invalid cart: %v", err)
		}
	})
}

// fakeRevocations is a Revocations with function fields.
type fakeRevocations struct {
	revoke  func(jti string, ttl time.Duration) error
	revoked func(jti string) (bool, error)
}

var _ Revocations = (*fakeRevocations)(nil)

func (f *fakeRevocations) Revoke(_ context.Context, jti string, ttl time.Duration) error {
	return f.revoke(jti, ttl)
}

func (f *fakeRevocations) Revoked(_ context.Context, jti string) (bool, error) {
	return f.revoked(jti)
}

func TestSignOutRevokesTheSignedInToken(t *testing.T) {
	// The store's retries run in a goroutine of their own.
	var mu sync.Mutex
	denied := map[string]bool{}
	down := false
	setDown := func(v bool) { mu.Lock(); down = v; mu.Unlock() }
	isDenied := func(jti string) bool { mu.Lock(); defer mu.Unlock(); return denied[jti] }
	rev := &fakeRevocations{
		revoke: func(jti string, _ time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			if down {
				return errors.New("redis down")
			}
			denied[jti] = true
			return nil
		},
		revoked: func(jti string) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			if down {
				return false, errors.New("redis down")
			}
			return denied[jti], nil
		},
	}
	st := newStore(t, Options{Revocations: rev})
	save := func(s *session.Session) string {
		t.Helper()
		w := httptest.NewRecorder()
		if err := st.Save(w, httptest.NewRequest("POST", "/", nil), s); err != nil {
			t.Fatal(err)
		}
		return w.Result().Cookies()[0].Value
	}
	s := session.New(session.EventCreated, time.Now())
	anon := save(s)
	s.Renew()
	s.User = "alice"
	signedIn := save(s)
	if isDenied(jtiOf(t, st, anon)) {
		t.Errorf("signing in revoked the anonymous token: %v", denied)
	}
	s.Renew()
	s.Data = session.Data{}
	save(s)
	if got, err := loadToken(st, signedIn); err != nil || got.Event != session.EventLost || got.User != "" {
		t.Errorf("signed-out token replayed: %+v, %v; want a new lost session", got, err)
	}
	if got, err := loadToken(st, anon); err != nil || got.Event != session.EventFound {
		t.Errorf("anonymous token: %+v, %v; anonymous tokens are not revoked", got, err)
	}

	// With the list unreachable, a signed-in token is refused (finding
	// 3: it used to be accepted, degraded), an anonymous one is not.
	s2 := session.New(session.EventCreated, time.Now())
	s2.User = "bob"
	bob := save(s2)
	setDown(true)
	got, err := loadToken(st, bob)
	var ue *session.UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, session.ErrUnavailable) || !strings.Contains(ue.Message, "refuses it") {
		t.Errorf("signed-in token with Redis down: %+v, %v; want a 503 (session.UnavailableError)", got, err)
	}
	if got, err := loadToken(st, anon); err != nil || got.Event != session.EventFound {
		t.Errorf("anonymous token with Redis down: %+v, %v; it needs no check", got, err)
	}
	// A sign-out that cannot write the revocation fails and writes nothing.
	s2.Renew()
	s2.Data = session.Data{}
	w := httptest.NewRecorder()
	if err := st.Save(w, httptest.NewRequest("POST", "/", nil), s2); !errors.Is(err, session.ErrUnavailable) || len(w.Result().Cookies()) != 0 {
		t.Errorf("sign-out with Redis down: %v, cookies %v; want ErrUnavailable and no cookie", err, w.Result().Cookies())
	}

	// EndLater: refused on this replica at once, revoked once Redis is back.
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: CookieName, Value: bob})
	if !st.EndLater(r) {
		t.Fatal("EndLater found no signed-in token")
	}
	if got, err := loadToken(st, bob); err != nil || got.Event != session.EventLost {
		t.Errorf("a token whose sign-out is pending: %+v, %v; want a new lost session", got, err)
	}
	setDown(false)
	deadline := time.Now().Add(5 * time.Second)
	for !isDenied(jtiOf(t, st, bob)) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !isDenied(jtiOf(t, st, bob)) {
		t.Error("the pending revocation was not written once Redis was back")
	}
}

func jtiOf(t *testing.T, st *Store, token string) string {
	t.Helper()
	c, err := st.Parse(token)
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

func TestReadsReSignOnlyPastHalfLife(t *testing.T) {
	now := time.Unix(2_000_000_000, 0)
	st := newStore(t, Options{TTL: 10 * time.Minute, Now: func() time.Time { return now }})
	s := session.New(session.EventCreated, now)
	w := httptest.NewRecorder()
	if err := st.Save(w, httptest.NewRequest("POST", "/", nil), s); err != nil {
		t.Fatal(err)
	}
	tok := w.Result().Cookies()[0].Value
	now = now.Add(4 * time.Minute)
	if got, _ := loadToken(st, tok); got.Refresh {
		t.Error("a token 4 of 10 minutes old asks to be re-signed")
	}
	now = now.Add(2 * time.Minute)
	if got, _ := loadToken(st, tok); !got.Refresh {
		t.Error("a token 6 of 10 minutes old does not ask to be re-signed")
	}
}

// BenchmarkJWT measures verifying a token with a 3-line cart (every read)
// and signing one (every write), and the cookie's bytes per cart line.
func BenchmarkJWT(b *testing.B) {
	st := newStore(b, Options{})
	s := session.New(session.EventCreated, time.Now())
	for _, p := range []string{"p1", "p4", "p9"} {
		_ = s.Cart.Add(p, 2)
	}
	w := httptest.NewRecorder()
	if err := st.Save(w, httptest.NewRequest("POST", "/", nil), s); err != nil {
		b.Fatal(err)
	}
	ck := w.Result().Cookies()[0]
	b.Run("verify", func(b *testing.B) {
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(ck)
		for b.Loop() {
			if got, err := st.Load(r); err != nil || got.Event != session.EventFound {
				b.Fatal(got, err)
			}
		}
	})
	b.Run("sign", func(b *testing.B) {
		r := httptest.NewRequest("POST", "/", nil)
		for b.Loop() {
			w := httptest.NewRecorder()
			if err := st.Save(w, r, s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("size", func(b *testing.B) {
		sizes := map[int]int{}
		for b.Loop() {
			s := session.New(session.EventCreated, time.Now())
			for i, p := range cart.Products() {
				_ = s.Cart.Add(p.ID, 99)
				w := httptest.NewRecorder()
				if err := st.Save(w, httptest.NewRequest("POST", "/", nil), s); err != nil {
					b.Fatal(err)
				}
				sizes[i+1] = len(w.Result().Cookies()[0].String())
			}
		}
		b.ReportMetric(float64(sizes[0+1]), "cookie-bytes@1line")
		b.ReportMetric(float64(sizes[10]), "cookie-bytes@10lines")
		b.ReportMetric(float64(sizes[10]-sizes[1])/9, "bytes/line")
	})
}

func TestExpNeverPastTheAbsoluteTimeout(t *testing.T) {
	now := time.Unix(2_000_000_000, 0)
	st := newStore(t, Options{TTL: 30 * time.Minute, Absolute: 2 * time.Hour, Now: func() time.Time { return now }})
	s := session.New(session.EventCreated, now.Add(-2*time.Hour+time.Minute))
	w := httptest.NewRecorder()
	if err := st.Save(w, httptest.NewRequest("POST", "/", nil), s); err != nil {
		t.Fatal(err)
	}
	tok := w.Result().Cookies()[0].Value
	c, err := st.Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(time.Minute); !c.ExpiresAt.Time.Equal(want) {
		t.Errorf("exp %v, want %v (the absolute end)", c.ExpiresAt.Time, want)
	}
	if got, _ := loadToken(st, tok); got.Refresh {
		t.Error("a token at its absolute end asks to be re-signed")
	}
}
