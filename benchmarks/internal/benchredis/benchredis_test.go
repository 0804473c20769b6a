package benchredis

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestStart(t *testing.T) {
	ctx := context.Background()
	stop, addr, err := Start(ctx, "benchredis-test")
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer func() { _ = rdb.Close() }()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("the started server does not answer: %v", err)
	}
	stop()
	if err := rdb.Ping(ctx).Err(); err == nil {
		t.Error("the server still answers after stop")
	}
}
