package session

import "net/http"

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
