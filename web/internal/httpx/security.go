package httpx

// What every answer does for the browser's safety: the Host allowlist
// against DNS rebinding, and the security headers.

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
)

// HostAllowlist is the set of host names a replica answers for. An IP
// address is always allowed: DNS rebinding needs a name, since a page can
// only make a browser send a Host that is the name in its own URL, and an
// attacker's page has the attacker's name.
type HostAllowlist map[string]bool

// NewHostAllowlist returns the allowlist of names (without ports; case and
// a trailing dot do not matter).
func NewHostAllowlist(names ...string) HostAllowlist {
	l := HostAllowlist{}
	for _, n := range names {
		if n = normalizeHost(n); n != "" {
			l[n] = true
		}
	}
	return l
}

// Allows reports whether a request's Host (with or without a port) is on
// the list or an IP address.
func (l HostAllowlist) Allows(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		return false
	}
	if net.ParseIP(host) != nil {
		return true
	}
	return l[normalizeHost(host)]
}

func normalizeHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
}

// WithAllowedHosts refuses a request whose Host is not allowed with a 421
// (Misdirected Request), before the cross-origin check and any handler
// run: a page on another site that points its own name at this machine
// (DNS rebinding) reaches nothing, whatever credentials the browser holds. nginx refuses
// such requests first; this is the replicas' own line of defence.
func WithAllowedHosts(l HostAllowlist, log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !l.Allows(r.Host) {
				WriteError(w, r, log, &Error{Status: http.StatusMisdirectedRequest, Title: "Unknown host",
					Message: fmt.Sprintf("This shop answers only for the host names it serves (localhost, an IP address, or a name in ALLOWED_HOSTS), not for %q. A web page that points its own name at this machine gets this answer.", Truncate(r.Host, 80))})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// ContentSecurityPolicy is sent with every answer. The pages load their
// scripts, styles and images from this origin only and carry no inline
// script, event handler or style attribute (templates_test checks the
// templates), so nothing else may run; 'data:' images are the CSS icons.
// No page may be framed (clickjacking), and forms post here only.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// WithSecurityHeaders sets the headers every answer carries: the CSP, no
// MIME sniffing, and no framing (also for browsers without
// frame-ancestors). WithInfo adds Referrer-Policy: no-referrer.
func WithSecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}
