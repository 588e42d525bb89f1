package redisstore

import (
	"fmt"
	"strings"

	"github.com/sessiondemo/shop/web/session"
)

// storeFull is what a person reads when Redis is full.
const storeFull = "Redis, where redis-mode sessions and the sign-out list live, is full: it has reached its memory limit (maxmemory) and refuses new writes rather than evict anyone's session. Nothing was saved and your session is as it was. Reading still works; writes work again once sessions expire or the limit is raised."

// unavailable wraps a failed Redis call as session.ErrUnavailable. A
// write refused because Redis is at its memory limit (maxmemory with the
// noeviction policy, compose/redis.conf) says so in its own words: the
// store is up, and full.
func unavailable(what string, err error) error {
	if strings.Contains(err.Error(), "OOM command not allowed") {
		return &session.UnavailableError{Title: "Session store full", Message: storeFull, Err: fmt.Errorf("%s: %w", what, err)}
	}
	return fmt.Errorf("%w: %s: %v", session.ErrUnavailable, what, err)
}
