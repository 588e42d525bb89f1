package jwtstore

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/sessiondemo/shop/web/session"
)

// Inspect shows the request's token: its size against the cookie limit
// and its decoded header and claims. The claims are readable by anyone
// who has the cookie (signed, not encrypted); only the signature is secret.
func (s *Store) Inspect(r *http.Request) session.Inspection {
	in := session.Inspection{Mode: session.JWT, Limit: s.opts.MaxCookieBytes}
	ck, err := session.ReadCookie(r, CookieName)
	if err != nil || ck.Value == "" {
		in.Where = "This browser has no session token yet."
		return in
	}
	in.RawBytes = len(session.Cookie(r, CookieName, ck.Value, 0).String())
	parts := strings.Split(ck.Value, ".")
	if len(parts) != 3 {
		in.Where = "The session cookie is not a JWT."
		return in
	}
	var decoded bytes.Buffer
	for i, name := range []string{"header", "claims"} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			in.Where = "The token's " + name + " is not base64url."
			return in
		}
		var v any
		if json.Unmarshal(b, &v) != nil {
			in.Where = "The token's " + name + " is not JSON."
			return in
		}
		pretty, _ := json.MarshalIndent(v, "", "  ")
		fmt.Fprintf(&decoded, "// %s\n%s\n", name, pretty)
	}
	in.Decoded = strings.TrimSpace(decoded.String())
	in.Raw = ck.Value
	if len(in.Raw) > 160 {
		in.Raw = in.Raw[:160] + "…"
	}
	in.Held = true
	if _, err := s.Parse(ck.Value); err != nil {
		in.Where = fmt.Sprintf("In this browser's cookie, but it does not verify (%s). No server stores it.", reason(err))
	} else {
		in.Where = fmt.Sprintf("In this browser's cookie, signed with HS256, readable by anyone who has it. No server stores it; the Set-Cookie is %d of %d bytes.", in.RawBytes, in.Limit)
	}
	return in
}
