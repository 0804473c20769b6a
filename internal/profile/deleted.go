package profile

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// maxTombstones bounds the set of deleted users. Tombstones older than the
// stream's retention are dropped too: the events they hide are gone.
const maxTombstones = 1_000_000

// tombstone queues, on p, the record that userID was deleted now.
func (s *Store) tombstone(ctx context.Context, p redis.Pipeliner, userID string) {
	now := s.cfg.Now().UnixMilli()
	p.ZAdd(ctx, s.deleted, redis.Z{Score: float64(now), Member: userID})
	if age := s.cfg.StreamMaxAge; age > 0 {
		p.ZRemRangeByScore(ctx, s.deleted, "-inf", "("+strconv.FormatInt(now-age.Milliseconds(), 10))
	}
	p.ZRemRangeByRank(ctx, s.deleted, 0, -maxTombstones-1)
}

// tombstones returns deleted users with the time (Unix ms) of their
// deletion.
func (s *Store) tombstones(ctx context.Context) (map[string]int64, error) {
	zs, err := s.rdb.ZRangeWithScores(ctx, s.deleted, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("read deleted users: %w", err)
	}
	out := make(map[string]int64, len(zs))
	for _, z := range zs {
		if id, ok := z.Member.(string); ok {
			out[id] = int64(z.Score)
		}
	}
	return out, nil
}

// deletedAfter reports whether the stream entry streamID of user was
// recorded at or before the user's deletion.
func deletedAfter(deleted map[string]int64, user, streamID string) bool {
	at, ok := deleted[user]
	if !ok {
		return false
	}
	msPart, _, _ := strings.Cut(streamID, "-")
	ms, err := strconv.ParseInt(msPart, 10, 64)
	return err != nil || ms <= at
}
