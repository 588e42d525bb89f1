// Package peer is how a replica reaches the other replicas: the directory
// of them (a fixed list, or DNS, which follows scaling), and authenticated
// calls to their internal endpoints (/internal/...) on the compose network.
//
// nginx answers /internal/ with a 404, so the endpoints are not reachable
// through the load balancers; each call also carries a token derived from
// the admin password, so another container cannot use them either. Errors
// are plain Go errors: a *RefusedError when the peer answered with an
// error, the transport's error (a timeout, a refused connection, a name
// that does not resolve) otherwise.
package peer

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"
)

// TokenHeader carries the token on calls between replicas.
const TokenHeader = "X-Internal-Token"

// NameHeader names the replica a call is meant for; a replica that has
// another name refuses it (409), since the caller's list is out of date.
const NameHeader = "X-Internal-Replica"

// Token derives the token the replicas share from their internal key
// (INTERNAL_KEY, random, never a password): HMAC-SHA256(key, purpose), so
// the key itself never travels.
func Token(key string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte("sessiondemo internal v1"))
	return hex.EncodeToString(m.Sum(nil))
}

// Authentic reports whether r carries the token, compared in constant time.
func Authentic(r *http.Request, token string) bool {
	return hmac.Equal([]byte(r.Header.Get(TokenHeader)), []byte(token))
}

// RefusedError is a peer's error answer: its status and its sentence.
type RefusedError struct {
	// Status is the HTTP status the peer answered with.
	Status int
	// Message is the peer's {"error": ...} sentence.
	Message string
}

func (e *RefusedError) Error() string { return e.Message }

// Client makes authenticated calls to peers. Safe for concurrent use.
type Client struct {
	self    string
	dir     Directory
	timeout time.Duration
	token   string
	http    *http.Client
}

// NewClient returns a client for replica self that finds the replicas in
// dir (self may be listed there too), with a token from the replicas'
// internal key; each call is bounded by timeout.
func NewClient(self string, dir Directory, key string, timeout time.Duration) *Client {
	if dir == nil {
		dir = Static{}
	}
	return &Client{
		self: self, dir: dir, timeout: timeout,
		token: Token(key),
		http:  &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}},
	}
}

// Self returns this replica's name.
func (c *Client) Self() string { return c.self }

// Timeout returns the bound of each call.
func (c *Client) Timeout() time.Duration { return c.timeout }

// Members returns every replica the directory lists or lately listed,
// this one included (listed, even before the directory has found it),
// sorted by name.
func (c *Client) Members() []Member {
	ms := slices.Clone(c.dir.Members())
	for i, m := range ms {
		if m.Name == c.self {
			ms[i].Left = time.Time{}
			return ms
		}
	}
	ms = append(ms, Member{Name: c.self})
	slices.SortFunc(ms, byName)
	return ms
}

// Names returns the name of every replica listed now, this one included,
// sorted.
func (c *Client) Names() []string {
	var names []string
	for _, m := range c.Members() {
		if m.Left.IsZero() {
			names = append(names, m.Name)
		}
	}
	return names
}

// Has reports whether name is one of the other replicas, listed now.
func (c *Client) Has(name string) bool {
	_, ok := c.baseURL(name)
	return ok
}

// baseURL returns where the named peer is, if it is listed now.
func (c *Client) baseURL(name string) (string, bool) {
	if name == c.self {
		return "", false
	}
	for _, m := range c.dir.Members() {
		if m.Name == name && m.Left.IsZero() && m.BaseURL != "" {
			return m.BaseURL, true
		}
	}
	return "", false
}

// Call makes one authenticated call to the named peer's path (with its
// query) and decodes the JSON answer into out (which may be nil). body, if
// not nil, is sent as JSON.
func (c *Client) Call(ctx context.Context, name, method, path string, body, out any) error {
	base, ok := c.baseURL(name)
	if !ok {
		return fmt.Errorf("no replica named %s", name)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set(TokenHeader, c.token)
	req.Header.Set(NameHeader, name)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return &RefusedError{Status: resp.StatusCode, Message: e.Error}
		}
		return fmt.Errorf("answered %s", resp.Status)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}
