package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// restartRedis returns the admin's "restart Redis": a SHUTDOWN as the ops
// user, whose ACL allows nothing else (compose/compose.yaml). Redis saves
// its append-only file and exits, and its restart policy brings it back.
// Nil when no ops password is configured.
func restartRedis(cfg config) func(context.Context) error {
	if cfg.RedisOpsPassword == "" {
		return nil
	}
	return func(ctx context.Context) error {
		c := redis.NewClient(&redis.Options{
			Addr: cfg.RedisAddr, Username: cfg.RedisOpsUsername, Password: cfg.RedisOpsPassword,
			DialTimeout: time.Second, ReadTimeout: 5 * time.Second, MaxRetries: -1,
			// The ops user may not run CLIENT SETINFO or HELLO's extras.
			DisableIdentity: true, Protocol: 2,
		})
		defer c.Close()
		err := c.Shutdown(ctx).Err()
		// Redis closes the connection instead of answering a SHUTDOWN that worked.
		if err == nil || errors.Is(err, io.EOF) || strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "closed") {
			return nil
		}
		return err
	}
}
