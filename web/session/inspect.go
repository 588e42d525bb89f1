package session

import "net/http"

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
	// Inspect shows how the store holds r's session.
	Inspect(r *http.Request) Inspection
}
