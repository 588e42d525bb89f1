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

// ReplicationHeader is the request header that asks for asynchronous
// replication of that request's session writes ("async"); the answer
// carries it too, saying what was used: "async", or "wait-N" for a write
// acknowledged only after N replicas had it. Like X-Write-Strategy, it
// needs no credentials: it changes how durable the caller's own session
// is, nothing else. The admin page's primary-kill experiment uses it to
// show what asynchronous replication loses.
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
type Replication struct {
	// Replicas is WAIT's numreplicas; 0 acknowledges a write the primary
	// alone holds (asynchronous replication).
	Replicas int
	// Timeout bounds the wait.
	Timeout time.Duration
}

// forRequest is the replication r asked for: rp, or none when it sent
// ReplicationHeader: async.
func (rp Replication) forRequest(r *http.Request) Replication {
	if r != nil && strings.EqualFold(r.Header.Get(ReplicationHeader), "async") {
		return Replication{}
	}
	return rp
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

func (e *NotReplicatedError) Error() string {
	return fmt.Sprintf("the write reached the Redis primary but only %d of %d replicas within %v", e.Got, e.Want, e.Timeout)
}

// Unwrap makes the error a session.ErrUnavailable.
func (e *NotReplicatedError) Unwrap() error { return session.ErrUnavailable }

// wait blocks until rp.Replicas replicas have every write made so far on
// c's connection (c must be one connection: a Tx, never the pool, whose
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
