package main

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	redisstore "github.com/trusthandoff/trusthandoff-go/store/redis"
)

// openRedisState connects to a shared Redis (redis://[user:password@]host:port[/db]) and
// waits until the revocation cache has synced, so the first verification already sees
// every revocation made by any node.
func openRedisState(ctx context.Context, url string, waitReplicas int) (*state, error) {
	opt, err := goredis.ParseURL(url)
	if err != nil {
		return nil, usageErr("--redis: %v", err)
	}
	if waitReplicas < 0 {
		return nil, usageErr("--redis-wait-replicas must not be negative")
	}
	st, err := redisstore.Open(redisstore.Config{Addr: opt.Addr, Username: opt.Username, Password: opt.Password, DB: opt.DB, WaitReplicas: waitReplicas})
	if err != nil {
		return nil, usageErr("--redis: %v", err)
	}
	wait, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := st.Ready(wait); err != nil {
		st.Close()
		return nil, unavailable(fmt.Errorf("redis %s: %w", opt.Addr, err))
	}
	return &state{replay: st, revocations: st, close: st.Close}, nil
}
