package redisstore

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiondemo/shop/web/session"
)

// ReplicationHeader is the request header that picks how that request's
// session writes are replicated: "async" acknowledges a write the primary
// alone holds, "min" waits for the configured minimum of replicas
// (REDIS_MIN_REPLICAS_ACK) but not for every replica that is up; without
// it a write waits for every replica up (Replication.Live). The answer
// carries it too, saying what was used: "async", or "wait-N" for a write
// acknowledged only after N replicas had it. Like X-Write-Strategy, it
// needs no credentials: it changes how durable the caller's own session
// is, nothing else. The admin page's primary-kill experiment and the
// soak (e2e) use it to show what the weaker choices lose.
const ReplicationHeader = "X-Redis-Replication"

// Replication is how many Redis replicas must have a write before the
// store acknowledges it.
//
// Redis replicates asynchronously: the primary answers a write before any
// replica has it. When the primary dies, Sentinel promotes a replica, and
// whatever the primary had not yet sent is gone, though the client was
// told it was saved. WAIT closes that gap for the writes of one
// connection: it blocks until that many replicas acknowledged them, or the
// timeout. A write that WAIT could not confirm is answered as unavailable
// (a 503): it is on the primary and may yet reach a replica, or may be
// lost with the primary; the client does not know, so it retries, and the
// idempotency key keeps the retry from applying it twice.
//
// WAIT for one replica is not enough when faults overlap (issue 31; Redis
// documents that WAIT does not make Redis strongly consistent, and
// Jepsen's Redis analysis found the same). The sequence the soak found: the
// primary freezes for a little longer than the Sentinels' down-after; they
// start a failover and promote replica A; the primary comes back before
// they demote it, still takes writes, and replica B, not yet pointed at A,
// acknowledges them (WAIT 1). Then both follow A, and those acknowledged
// writes are gone. Waiting for every replica closes it: A no longer
// follows the old primary, so no write there is acknowledged. Waiting for
// every replica ever would stop all writes while one node is down, so a
// write waits for every replica the Sentinels see up (Live): a replica
// they count down cannot be promoted (Sentinel promotes only replicas it
// sees up), and when it comes back the count includes it again well
// before a failover could promote it, since a failover needs the primary
// gone for down-after first (see ReplicaWatch).
type Replication struct {
	// Replicas is the fewest replicas a write waits for (WAIT's
	// numreplicas); 0 acknowledges a write the primary alone holds
	// (asynchronous replication), and then Live is not asked.
	Replicas int
	// Timeout bounds the wait.
	Timeout time.Duration
	// Live, when set, counts the replicas the Sentinels see up
	// (ReplicaWatch.Live): a write waits for all of them, and at least
	// Replicas.
	Live func() int
}

// forRequest is the replication a write of r waits for, counted now:
// rp's, none when r sent ReplicationHeader: async, or only the minimum
// when it sent "min".
func (rp Replication) forRequest(r *http.Request) Replication {
	var choice string
	if r != nil {
		choice = strings.ToLower(r.Header.Get(ReplicationHeader))
	}
	n := rp.Replicas
	switch {
	case choice == "async":
		n = 0
	case choice != "min" && rp.Live != nil && n > 0:
		n = max(n, rp.Live())
	}
	return Replication{Replicas: n, Timeout: rp.Timeout}
}

// String is the value of ReplicationHeader in an answer.
func (rp Replication) String() string {
	if rp.Replicas == 0 {
		return "async"
	}
	return "wait-" + strconv.Itoa(rp.Replicas)
}

// NotReplicatedError is a write the primary holds but fewer replicas than
// asked acknowledged in time. It is a session.ErrUnavailable.
type NotReplicatedError struct {
	Got, Want int
	Timeout   time.Duration
}

// Error says how many replicas acknowledged the write, of how many, in what time.
func (e *NotReplicatedError) Error() string {
	return fmt.Sprintf("the write reached the Redis primary but only %d of %d replicas within %v", e.Got, e.Want, e.Timeout)
}

// Unwrap makes the error a session.ErrUnavailable.
func (e *NotReplicatedError) Unwrap() error { return session.ErrUnavailable }

// wait blocks until rp.Replicas replicas (as forRequest counted them)
// have every write made so far on c's connection (c must be one connection: a Tx, never the pool, whose
// next command may go out on another connection, where WAIT would have
// nothing to wait for).
func (rp Replication) wait(ctx context.Context, c *redis.Tx) error {
	if rp.Replicas == 0 {
		return nil
	}
	n, err := c.Wait(ctx, rp.Replicas, rp.Timeout).Result()
	if err != nil {
		return err
	}
	if int(n) < rp.Replicas {
		return &NotReplicatedError{Got: int(n), Want: rp.Replicas, Timeout: rp.Timeout}
	}
	return nil
}

// writeOnOneConnection runs fn on one connection (a Tx without WATCH), so
// that rp.wait after it waits for its writes.
func writeOnOneConnection(ctx context.Context, client redis.UniversalClient, fn func(tx *redis.Tx) error) error {
	return client.Watch(ctx, fn)
}
