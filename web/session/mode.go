package session

import "strings"

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

// Choices lists values for a sentence: "sticky, redis, jwt or memcached".
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
