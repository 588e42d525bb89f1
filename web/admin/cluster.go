package admin

import (
	"context"
	"errors"
	"net"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/sessiondemo/shop/web/peer"
	"github.com/sessiondemo/shop/web/reqlog"
	"github.com/sessiondemo/shop/web/session"
)

// The states of a node on the admin page.
const (
	// StateUp: it answered.
	StateUp = "up"
	// StateDown: it refused the connection, or its name does not resolve.
	StateDown = "down"
	// StateNotAnswered: it accepted the connection but did not answer in time.
	StateNotAnswered = "not answering"
)

// The changes of membership the admin page marks, for recentChange after
// the directory saw them.
const (
	// ChangeJoined: the replica was not there before (scale-out, a
	// rolling deploy's new replica, or one started again).
	ChangeJoined = "joined"
	// ChangeLeft: the replica is no longer in DNS (scale-in, a stop, or a
	// container being restarted).
	ChangeLeft = "left"
)

// recentChange is how long a joined replica is marked as such; a replica
// that left is listed as long as the directory remembers it.
const recentChange = time.Minute

// settle is how much later than the longest-running replica another one
// must have started to count as joined: when a whole stack starts, its
// replicas come up within seconds of each other, and none of them joined
// a running service.
const settle = 5 * time.Second

// ReplicaStatus is what the admin page knows about one replica.
type ReplicaStatus struct {
	// Name is the replica's name.
	Name string `json:"name"`
	// State is StateUp, StateDown or StateNotAnswered.
	State string `json:"state"`
	// Detail says why a replica is not up, as a phrase.
	Detail string `json:"detail,omitempty"`
	// Boot identifies the replica's current run; it changes on a restart.
	Boot string `json:"boot,omitempty"`
	// Load counts the requests of the last minute per mode, in the order
	// of session.Modes.
	Load []int `json:"load"`
	// HungFor is how many seconds the replica still hangs (asked by the admin).
	HungFor int `json:"hung_for,omitempty"`
	// Sessions is how many sticky sessions the replica holds in memory.
	Sessions int `json:"sessions"`
	// Self is true for the replica that answered the admin page.
	Self bool `json:"self,omitempty"`
	// Change is ChangeJoined or ChangeLeft when the replica joined or left
	// lately, "" otherwise.
	Change string `json:"change,omitempty"`
	// ChangedAt is when it joined or left.
	ChangedAt *time.Time `json:"changed_at,omitempty"`
	// Started is when the replica's process started (it says so itself).
	Started *time.Time `json:"started,omitempty"`
}

// ComponentStatus is a load balancer's or Redis's state.
type ComponentStatus struct {
	// Name is the compose service's name, e.g. "lb2" or "redis".
	Name string `json:"name"`
	// State is StateUp, StateDown or StateNotAnswered.
	State string `json:"state"`
	// Detail says why it is not up, as a phrase.
	Detail string `json:"detail,omitempty"`
}

// Status is the topology's state at one moment: the body of GET
// /api/admin/status and of the live view's "status" events.
type Status struct {
	// Time is when the state was read.
	Time time.Time `json:"time"`
	// Served names the replica that read it.
	Served string `json:"served_by"`
	// Replicas are every replica, sorted by name.
	Replicas []ReplicaStatus `json:"replicas"`
	// Redis is the session store's state: up when this replica's client
	// reaches the primary.
	Redis ComponentStatus `json:"redis"`
	// RedisPrimary names the Redis node that is the primary now (its
	// compose service, e.g. "redis2"), as the Sentinels say.
	RedisPrimary string `json:"redis_primary,omitempty"`
	// RedisNodes are the primary and its replicas, sorted by name.
	RedisNodes []RedisNodeStatus `json:"redis_nodes,omitempty"`
	// Sentinels are the Sentinels, in the order configured.
	Sentinels []ComponentStatus `json:"sentinels,omitempty"`
	// LoadBalancers are the load balancers, sorted by name.
	LoadBalancers []ComponentStatus `json:"load_balancers"`
	// Memcached are memcached mode's servers, in the order configured.
	Memcached []MemcachedStatus `json:"memcached,omitempty"`
}

// peerLog is the answer of GET /internal/requests.
type peerLog struct {
	Replica  string         `json:"replica"`
	Boot     string         `json:"boot"`
	Started  time.Time      `json:"started"`
	Entries  []reqlog.Entry `json:"entries"`
	Load     []int          `json:"load"`
	HungFor  int            `json:"hung_for,omitempty"`
	Sessions int            `json:"sessions"`
}

// cursor remembers how far a live view has read a replica's log.
type cursor struct {
	boot string
	seq  uint64
}

// cluster reads this replica's log and its peers', and the state of the
// load balancers and Redis.
type cluster struct {
	peers *peer.Client
	log   *reqlog.Log
	lbs   map[string]string // name -> host:port
	ping  func(context.Context) error
	redis RedisCluster // nil: no nodes to show
	// memcached shows memcached mode's servers (nil: none).
	memcached MemcachedServers
	local     func() peerLog
}

// fetchLog reads a replica's log after cur (or its newest limit entries
// when cur is from another run of it).
func (c *cluster) fetchLog(ctx context.Context, name string, cur cursor, limit int) (peerLog, error) {
	if name == c.peers.Self() {
		pl := c.local()
		after := cur.seq
		if cur.boot != pl.Boot {
			after = 0
		}
		pl.Entries = c.log.After(after, limit)
		return pl, nil
	}
	q := url.Values{"boot": {cur.boot}, "after": {strconv.FormatUint(cur.seq, 10)}, "limit": {strconv.Itoa(limit)}}
	var pl peerLog
	err := c.peers.Call(ctx, name, "GET", "/internal/requests?"+q.Encode(), nil, &pl)
	return pl, err
}

// describeFailure turns a failed call into a state and a phrase.
func describeFailure(err error) (state, detail string) {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var ne net.Error
	var refused *peer.RefusedError
	switch {
	case errors.As(err, &refused):
		return StateDown, "refused: " + refused.Message
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return StateNotAnswered, "accepts connections but does not answer"
	case errors.As(err, &dnsErr):
		return StateDown, "is not running (its name does not resolve)"
	case errors.As(err, &opErr):
		return StateDown, "refuses connections"
	}
	return StateDown, "is unreachable"
}

// collect reads every replica's new log entries (advancing cursors, which
// may be nil for a one-off read) and the state of the topology, all in
// parallel, within the peers' call timeout.
func (c *cluster) collect(ctx context.Context, cursors map[string]cursor, limit int) ([]reqlog.Entry, Status) {
	members := c.peers.Members()
	logs := make([]peerLog, len(members))
	errs := make([]error, len(members))
	st := Status{Time: time.Now().UTC(), Served: c.peers.Self()}
	var wg sync.WaitGroup
	for i, m := range members {
		if !m.Left.IsZero() {
			continue
		}
		wg.Go(func() {
			logs[i], errs[i] = c.fetchLog(ctx, m.Name, cursors[m.Name], limit)
		})
	}
	wg.Go(func() {
		st.Redis = ComponentStatus{Name: "redis", State: StateUp}
		if c.ping == nil {
			st.Redis = ComponentStatus{Name: "redis", State: StateDown, Detail: "not configured"}
		} else if err := c.pingRedis(ctx); err != nil {
			st.Redis.State, st.Redis.Detail = StateDown, "does not answer PING"
		}
	})
	if c.redis != nil {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, c.peers.Timeout())
			defer cancel()
			t, _ := c.redis.Topology(ctx)
			st.RedisPrimary, st.RedisNodes, st.Sentinels = t.Primary, t.Nodes, t.Sentinels
		})
	}
	if c.memcached != nil {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, c.peers.Timeout())
			defer cancel()
			st.Memcached = c.memcached.Stats(ctx)
		})
	}
	lbNames := make([]string, 0, len(c.lbs))
	for n := range c.lbs {
		lbNames = append(lbNames, n)
	}
	sort.Strings(lbNames)
	st.LoadBalancers = make([]ComponentStatus, len(lbNames))
	for i, n := range lbNames {
		wg.Go(func() {
			st.LoadBalancers[i] = ComponentStatus{Name: n, State: StateUp}
			d := net.Dialer{Timeout: c.peers.Timeout()}
			conn, err := d.DialContext(ctx, "tcp", c.lbs[n])
			if err != nil {
				st.LoadBalancers[i].State, st.LoadBalancers[i].Detail = describeFailure(err)
				return
			}
			conn.Close()
		})
	}
	wg.Wait()
	var all []reqlog.Entry
	for i, m := range members {
		name := m.Name
		rs := ReplicaStatus{Name: name, State: StateUp, Self: name == c.peers.Self(), Load: make([]int, len(session.Modes))}
		if !m.Left.IsZero() {
			rs.Change, rs.ChangedAt = ChangeLeft, &m.Left
		}
		switch {
		case !m.Left.IsZero():
			rs.State, rs.Detail = StateDown, "left: no longer in DNS (scaled in, stopped, or being restarted)"
		case errs[i] != nil:
			rs.State, rs.Detail = describeFailure(errs[i])
		default:
			pl := logs[i]
			rs.Boot, rs.HungFor, rs.Sessions = pl.Boot, pl.HungFor, pl.Sessions
			if !pl.Started.IsZero() {
				rs.Started = &pl.Started
			}
			copy(rs.Load, pl.Load)
			all = append(all, pl.Entries...)
			if cursors != nil {
				cur := cursor{boot: pl.Boot, seq: cursors[name].seq}
				if cursors[name].boot != pl.Boot {
					cur.seq = 0
				}
				for _, e := range pl.Entries {
					cur.seq = max(cur.seq, e.Seq)
				}
				cursors[name] = cur
			}
		}
		st.Replicas = append(st.Replicas, rs)
	}
	markJoined(st.Replicas, st.Time)
	return all, st
}

// markJoined marks the replicas that joined the service within
// recentChange: started then, and more than settle after the replica that
// has run longest, so the replicas of a stack that just started are not.
// Every replica reports its own start, so every admin page agrees.
func markJoined(replicas []ReplicaStatus, now time.Time) {
	var oldest time.Time
	for _, rs := range replicas {
		if rs.Started != nil && (oldest.IsZero() || rs.Started.Before(oldest)) {
			oldest = *rs.Started
		}
	}
	for i, rs := range replicas {
		if rs.Change == "" && rs.Started != nil && now.Sub(*rs.Started) < recentChange && rs.Started.Sub(oldest) > settle {
			replicas[i].Change, replicas[i].ChangedAt = ChangeJoined, rs.Started
		}
	}
}

func (c *cluster) pingRedis(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.peers.Timeout())
	defer cancel()
	return c.ping(ctx)
}
