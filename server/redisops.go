package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiondemo/shop/web/admin"
)

// newRedisClient returns the client of the session store: through the
// Sentinels when REDIS_SENTINELS is set (go-redis asks them for the
// primary, and drops its connections when they announce a failover), or
// to the one server at REDIS_ADDR.
//
// The timeouts are short: a request in redis mode must fail fast with a
// 503 when Redis is gone, well within nginx's 1.5 s read timeout, not
// hang until nginx gives up on the replica. The request's context bounds
// every command too (ContextTimeoutEnabled; see web's storeBudget).
func newRedisClient(cfg config) redis.UniversalClient {
	opts := &redis.UniversalOptions{
		// With MasterName, Addrs are the Sentinels and go-redis builds a
		// failover client; without, Addrs is the one server.
		Addrs:       []string{cfg.RedisAddr},
		Username:    cfg.RedisUsername,
		Password:    cfg.RedisPassword,
		DialTimeout: 500 * time.Millisecond,
		// WAIT's own timeout must end before the read does.
		ReadTimeout:  max(500*time.Millisecond, cfg.RedisAckTimeout+200*time.Millisecond),
		WriteTimeout: 500 * time.Millisecond,
		PoolTimeout:  time.Second,
		// One retry: after a failover the first command may meet a
		// connection to the old primary.
		MaxRetries: 1,
		// One dial attempt per command: a down Redis must not cost
		// several dial timeouts per request.
		DialerRetries:         1,
		ContextTimeoutEnabled: true,
	}
	if len(cfg.RedisSentinels) > 0 {
		opts.Addrs, opts.MasterName = cfg.RedisSentinels, cfg.RedisMasterName
		// A dead primary's address answers nothing: give up on it sooner.
		opts.DialTimeout = 250 * time.Millisecond
	}
	return redis.NewUniversalClient(opts)
}

// redisOps is the admin page's view of the session store and its
// controls (admin.RedisCluster): the nodes and Sentinels as the Sentinels
// see them, and a SHUTDOWN of one node as the ops user, whose ACL allows
// nothing else (compose/redis-start). Without Sentinels it knows the one
// server at REDIS_ADDR.
type redisOps struct {
	cfg       config
	sentinels []*redis.SentinelClient
}

var _ admin.RedisCluster = (*redisOps)(nil)

func newRedisOps(cfg config) *redisOps {
	o := &redisOps{cfg: cfg}
	for _, addr := range cfg.RedisSentinels {
		o.sentinels = append(o.sentinels, redis.NewSentinelClient(&redis.Options{
			Addr: addr, DialTimeout: 300 * time.Millisecond, ReadTimeout: 500 * time.Millisecond,
			MaxRetries: -1, DisableIdentity: true, Protocol: 2,
		}))
	}
	return o
}

// Close closes the connections to the Sentinels.
func (o *redisOps) Close() {
	for _, s := range o.sentinels {
		s.Close()
	}
}

// hostOf is the host of a host:port (a compose service name).
func hostOf(hostport string) string {
	h, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	return h
}

// Topology asks every Sentinel at once: each one's state is whether it
// answered; the primary and the nodes come from the first one, in the
// order of REDIS_SENTINELS, that answered.
func (o *redisOps) Topology(ctx context.Context) (admin.RedisTopology, error) {
	if len(o.sentinels) == 0 {
		node := hostOf(o.cfg.RedisAddr)
		return admin.RedisTopology{Primary: node, Nodes: []admin.RedisNodeStatus{{Name: node, Role: admin.RolePrimary, State: admin.StateUp}}}, nil
	}
	type view struct {
		master   map[string]string
		replicas []map[string]string
		err      error
	}
	views := make([]view, len(o.sentinels))
	var wg sync.WaitGroup
	for i, s := range o.sentinels {
		wg.Go(func() {
			v := &views[i]
			if v.master, v.err = s.Master(ctx, o.cfg.RedisMasterName).Result(); v.err == nil {
				v.replicas, v.err = s.Replicas(ctx, o.cfg.RedisMasterName).Result()
			}
		})
	}
	wg.Wait()
	var t admin.RedisTopology
	var first *view
	for i, v := range views {
		st := admin.ComponentStatus{Name: hostOf(o.cfg.RedisSentinels[i]), State: admin.StateUp}
		if v.err != nil {
			st.State, st.Detail = admin.StateDown, "does not answer"
		} else if first == nil {
			first = &views[i]
		}
		t.Sentinels = append(t.Sentinels, st)
	}
	if first == nil {
		return t, errors.New("no Sentinel answers")
	}
	t.Primary = first.master["ip"]
	t.Nodes = append(t.Nodes, nodeStatus(first.master, admin.RolePrimary))
	for _, r := range first.replicas {
		t.Nodes = append(t.Nodes, nodeStatus(r, admin.RoleReplica))
	}
	slices.SortFunc(t.Nodes, func(a, b admin.RedisNodeStatus) int { return strings.Compare(a.Name, b.Name) })
	return t, nil
}

// nodeStatus reads a node's state from what a Sentinel says of it.
func nodeStatus(m map[string]string, role string) admin.RedisNodeStatus {
	n := admin.RedisNodeStatus{Name: m["ip"], Role: role, State: admin.StateUp}
	flags := strings.Split(m["flags"], ",")
	switch {
	case slices.Contains(flags, "o_down"):
		n.State, n.Detail = admin.StateDown, "down: the Sentinels agree it does not answer"
	case slices.Contains(flags, "s_down"),
		// A primary the Sentinel has just promoted is "disconnected" for
		// the moment its new link takes; a replica so marked is usually
		// the old primary, just killed, not yet s_down.
		role == admin.RoleReplica && slices.Contains(flags, "disconnected"):
		n.State, n.Detail = admin.StateDown, "does not answer the Sentinels"
	case role == admin.RoleReplica && m["master-link-status"] != "ok":
		n.Detail = "up, not in sync with the primary yet"
	}
	return n
}

// Shutdown makes node exit (SHUTDOWN as the ops user): restart saves and
// lets the replicas catch up first; kill (NOSAVE NOW) ends it at once, as
// close to a crash as a Redis command gets (a SIGKILL, `docker kill`, is
// closer: it does not even flush what the replicas were still to be sent).
// The restart policy brings the node back after REDIS_RESTART_DELAY.
// "primary" names the current primary.
func (o *redisOps) Shutdown(ctx context.Context, node string, kill bool) (string, error) {
	t, err := o.Topology(ctx)
	if err != nil {
		return "", fmt.Errorf("finding the nodes: %w", err)
	}
	if node == admin.RolePrimary {
		node = t.Primary
	}
	if !slices.ContainsFunc(t.Nodes, func(n admin.RedisNodeStatus) bool { return n.Name == node }) {
		return "", &admin.UnknownNodeError{Node: node, Known: t.NodeNames()}
	}
	c, err := o.opsClient(node)
	if err != nil {
		return "", err
	}
	defer c.Close()
	args := []any{"shutdown"}
	if kill {
		args = append(args, "nosave", "now")
	}
	err = c.Do(ctx, args...).Err()
	// Redis closes the connection instead of answering a SHUTDOWN that worked.
	if err != nil && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "connection reset") && !strings.Contains(err.Error(), "closed") {
		return "", err
	}
	return node, nil
}

// DropReplicaLinks closes the replicas' connections to node (CLIENT KILL
// TYPE replica, as the ops user).
func (o *redisOps) DropReplicaLinks(ctx context.Context, node string) error {
	c, err := o.opsClient(node)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.ClientKillByFilter(ctx, "TYPE", "replica").Err()
}

// opsClient connects to node as the ops user, whose ACL allows SHUTDOWN
// and CLIENT KILL only.
func (o *redisOps) opsClient(node string) (*redis.Client, error) {
	if o.cfg.RedisOpsPassword == "" {
		return nil, admin.ErrNoRedisControls
	}
	_, port, err := net.SplitHostPort(o.cfg.RedisAddr)
	if err != nil || len(o.sentinels) > 0 {
		port = "6379"
	}
	return redis.NewClient(&redis.Options{
		Addr: net.JoinHostPort(node, port), Username: o.cfg.RedisOpsUsername, Password: o.cfg.RedisOpsPassword,
		DialTimeout: time.Second, ReadTimeout: 12 * time.Second, MaxRetries: -1,
		// The ops user may not run CLIENT SETINFO or HELLO's extras.
		DisableIdentity: true, Protocol: 2,
	}), nil
}
