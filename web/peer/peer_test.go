package peer

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestCallCarriesTheTokenAndReturnsPlainErrors: a call carries the token
// derived from the password; the peer's error answer comes back as a
// *RefusedError with its status and sentence, a dead peer as the
// transport's error.
func TestCallCarriesTheTokenAndReturnsPlainErrors(t *testing.T) {
	token := Token("secret")
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case !Authentic(r, token):
			w.WriteHeader(http.StatusNotFound)
		case r.URL.Path == "/internal/refuse":
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"error":"Not now."}`))
		default:
			w.Write([]byte(`{"message":"done"}`))
		}
	}))
	defer peer.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()

	c := NewClient("app1", Static{"app2": peer.URL, "app3": dead.URL}, "secret", time.Second)
	if got := c.Names(); len(got) != 3 || got[0] != "app1" || got[2] != "app3" {
		t.Errorf("Names() = %v, want app1, app2, app3", got)
	}
	if c.Has("app1") || !c.Has("app2") {
		t.Error("Has: this replica is not a peer; app2 is")
	}
	var out struct{ Message string }
	if err := c.Call(context.Background(), "app2", "POST", "/internal/do", map[string]int{"n": 1}, &out); err != nil || out.Message != "done" {
		t.Errorf("call = %v, %+v; want done", err, out)
	}
	var refused *RefusedError
	if err := c.Call(context.Background(), "app2", "POST", "/internal/refuse", nil, nil); !errors.As(err, &refused) || refused.Status != http.StatusConflict || refused.Message != "Not now." {
		t.Errorf("refused call = %v, want a RefusedError 409 \"Not now.\"", err)
	}
	if err := c.Call(context.Background(), "app3", "GET", "/internal/do", nil, nil); err == nil || errors.As(err, &refused) {
		t.Errorf("call to a dead peer = %v, want the transport's error", err)
	}
	if err := c.Call(context.Background(), "app9", "GET", "/internal/do", nil, nil); err == nil {
		t.Error("a call to an unknown replica succeeded")
	}
	wrong := NewClient("app1", Static{"app2": peer.URL}, "guess", time.Second)
	if err := wrong.Call(context.Background(), "app2", "GET", "/internal/do", nil, nil); err == nil {
		t.Error("a call with the wrong password's token succeeded")
	}
}
