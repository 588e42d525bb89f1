package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiondemo/shop/web/session"
)

// UserEndsPrefix starts the key that says when an admin ended every
// session of a user.
const UserEndsPrefix = "user:ended:"

// UserEnds keeps, in Redis, when an admin ended every session of a user,
// for as long as a session begun before that could live (the absolute
// timeout). It implements session.UserEnds for redis, jwt and memcached
// mode.
type UserEnds struct {
	client redis.UniversalClient
	repl   Replication
	ttl    time.Duration
}

var _ session.UserEnds = (*UserEnds)(nil)

// NewUserEnds returns the record over client; each end is kept for ttl
// (the longest a session lives) and acknowledged once rp.Replicas
// replicas have it.
func NewUserEnds(client redis.UniversalClient, rp Replication, ttl time.Duration) *UserEnds {
	return &UserEnds{client: client, repl: rp, ttl: ttl}
}

// EndUser records that every session of user begun no later than at is
// over.
func (u *UserEnds) EndUser(ctx context.Context, user string, at time.Time) error {
	err := writeOnOneConnection(ctx, u.client, func(tx *redis.Tx) error {
		if err := tx.Set(ctx, UserEndsPrefix+user, at.Unix(), u.ttl).Err(); err != nil {
			return err
		}
		return u.repl.forRequest(nil).wait(ctx, tx)
	})
	if err != nil {
		return unavailable("end the sessions of a user", err)
	}
	return nil
}

// UserEndedAt returns when the user's sessions were last ended, or zero.
func (u *UserEnds) UserEndedAt(ctx context.Context, user string) (time.Time, error) {
	v, err := u.client.Get(ctx, UserEndsPrefix+user).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, fmt.Errorf("%w: read when a user's sessions were ended: %v", session.ErrUnavailable, err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("user end of %q: %q is not a time", user, v)
	}
	return time.Unix(n, 0), nil
}
