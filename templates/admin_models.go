package templates

import "strconv"

// AdminModel is the view model of the admin page (GET /admin).
type AdminModel struct {
	Page Page
	// SignedIn is true when the viewer may use the controls.
	SignedIn bool
	// ControlsOff is true when no admin password is configured.
	ControlsOff bool
	// LoginError is shown above the sign-in form after a failed attempt.
	LoginError string
	// Topology is the state of every part of the stack.
	Topology Topology
	// Load is the per-replica load of the last minute.
	Load LoadChart
	// Sessions shows the caller's session as each store holds it.
	Sessions []StoreView
	// Scale says how to change the number of replicas.
	Scale Scale
	// Modes and Affinities are the simulator's choices.
	Modes, Affinities []string
}

// Topology is the stack as the admin page draws it.
type Topology struct {
	// ServedBy names the replica that rendered the page.
	ServedBy string
	// LoadBalancers are lb and lb2, in order.
	LoadBalancers []Node
	// Replicas are every replica the directory lists or lately listed,
	// sorted by name (app-1, app-2, ...).
	Replicas []Node
	// Redis is the session store as the replicas reach it (up when the
	// primary answers them).
	Redis Node
	// RedisPrimary names the Redis node that is the primary now.
	RedisPrimary string
	// RedisNodes are the primary and its replicas, sorted by name; Role
	// says which is which.
	RedisNodes []Node
	// Sentinels watch the nodes and fail over.
	Sentinels []Node
	// Memcached are memcached mode's servers; Detail has their stats.
	Memcached []Node
}

// Scale is what the page says about scaling: the replicas now, and the
// command that changes their number.
type Scale struct {
	// Replicas is how many replicas are listed now.
	Replicas int
	// Service is the compose service of the replicas, "app".
	Service string
}

// Command is the compose command that scales the replicas to n while they
// serve: --no-recreate leaves the running ones alone, --no-build starts
// new ones from the image the others run (not from a fresh build of the
// working tree, which would mix two versions; compose/rolling-deploy is
// for a new version).
func (s Scale) Command(n int) string {
	return "docker compose up -d --no-recreate --no-build --scale " + s.Service + "=" + strconv.Itoa(n) + " " + s.Service
}

// Node is one box of the topology.
type Node struct {
	// Name is the service or replica name, e.g. "lb2" or "app-2".
	Name string
	// State is "up", "down" or "not answering".
	State string
	// Detail says why a node is not up, as a phrase.
	Detail string
	// Sessions is how many sticky sessions a replica holds.
	Sessions int
	// HungFor is how many more seconds a replica hangs.
	HungFor int
	// Change is "joined" or "left" for a replica that did lately.
	Change string
	// Role is a Redis node's: "primary" or "replica".
	Role string
}

// LoadChart is a stacked bar per replica: its requests of the last
// minute, one segment per session mode.
type LoadChart struct {
	// Title names the chart.
	Title string
	// Bars are the replicas, in order.
	Bars []LoadBar
	// Segments names the modes, in stacking order.
	Segments []string
	// Max is the longest bar's total (at least 1).
	Max int
	// MaxMean is the busiest replica's load over the mean load, e.g. "1.04".
	MaxMean string
	// Note is one sentence under the chart.
	Note string
}

// LoadBar is one replica's bar.
type LoadBar struct {
	// Name is the replica.
	Name string
	// Values are the segment sizes, in Segments order.
	Values []int
	// Total is the sum of Values.
	Total int
	// Down marks a replica that did not answer.
	Down bool
	// Left marks a replica that is no longer in the service.
	Left bool
}

// StoreView is the caller's session in one store.
type StoreView struct {
	// Mode is "sticky", "redis", "jwt" or "memcached".
	Mode string
	// Replica is the replica whose memory holds the session (sticky), or "".
	Replica string
	// Held is true when the store holds a session for the caller.
	Held bool
	// Where is one or two sentences about where and how it is kept.
	Where string
	// Raw is the stored or sent form, shortened.
	Raw string
	// RawBytes is its size; Limit the most it may be (0: no limit shown).
	RawBytes, Limit int
	// Decoded is what Raw means, as indented JSON.
	Decoded string
}

// SimulationModel is a traffic simulator run, in progress or done.
type SimulationModel struct {
	// ID names the run; Replica runs it against Target.
	ID, Replica, Target string
	// Title says what was simulated, e.g. "30 clients, redis mode, mixed sessions".
	Title string
	// Done is true once the run is over (or could not be found: see Error).
	Done bool
	// Error says what went wrong, or "".
	Error string
	// Percent is how far the run is, 0..100.
	Percent int
	// Elapsed is the run's time so far, e.g. "4.5s".
	Elapsed string
	// Requests and Errors count the requests so far.
	Requests, Errors int
	// Chart shows the requests per replica; SessionChart the sessions.
	Chart, SessionChart LoadChart
	// RequestsMaxMean and SessionsMaxMean are the ratios, e.g. "1.04".
	RequestsMaxMean, SessionsMaxMean string
	// Carts says how many carts kept their adds.
	Carts string
	// CartsLost is how many carts lost adds.
	CartsLost int
	// ErrorSamples are a few of the errors.
	ErrorSamples []string
}
