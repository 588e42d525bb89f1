package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiondemo/shop/web/session"
)

// DenylistPrefix starts the key of every revoked token.
const DenylistPrefix = "jwt:revoked:"

// Denylist keeps revoked JWT ids in Redis, each until the token would have
// expired anyway. It implements jwtstore.Revocations.
type Denylist struct {
	client redis.UniversalClient
	repl   Replication
}

// NewDenylist returns a denylist over client. A revocation is
// acknowledged once rp.Replicas replicas have it: a sign-out must survive
// a failover like any other session write.
func NewDenylist(client redis.UniversalClient, rp Replication) *Denylist {
	return &Denylist{client: client, repl: rp}
}

// Revoke ends the token with this jti for ttl.
func (d *Denylist) Revoke(ctx context.Context, jti string, ttl time.Duration) error {
	err := writeOnOneConnection(ctx, d.client, func(tx *redis.Tx) error {
		if err := tx.Set(ctx, DenylistPrefix+jti, 1, ttl).Err(); err != nil {
			return err
		}
		return d.repl.forRequest(nil).wait(ctx, tx)
	})
	if err != nil {
		return unavailable("revoke token", err)
	}
	return nil
}

// Revoked reports whether the token with this jti was revoked.
func (d *Denylist) Revoked(ctx context.Context, jti string) (bool, error) {
	n, err := d.client.Exists(ctx, DenylistPrefix+jti).Result()
	if err != nil {
		return false, fmt.Errorf("%w: check revocation: %v", session.ErrUnavailable, err)
	}
	return n > 0, nil
}
