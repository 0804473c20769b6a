package redistest_test

import (
	"context"
	"slices"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/redistest"
)

// TestKeysAndCleanupCoverEverySlot writes keys that hash to many slots (on a
// cluster: to every master) and checks that Keys finds all of them and that
// the Prefix cleanup deletes them.
func TestKeysAndCleanupCoverEverySlot(t *testing.T) {
	c := redistest.Client(t)
	if _, isCluster := c.(*redis.ClusterClient); isCluster != redistest.Cluster() {
		t.Fatalf("client %T, cluster mode %v", c, redistest.Cluster())
	}
	ctx := context.Background()
	var prefix string
	var want []string
	t.Run("write", func(t *testing.T) {
		prefix = redistest.Prefix(t, c)
		for i := range 200 {
			k := prefix + ":{" + strconv.Itoa(i) + "}:k"
			if err := c.Set(ctx, k, "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
			want = append(want, k)
		}
		got, err := redistest.Keys(ctx, c, prefix)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("Keys found %d keys, want %d", len(got), len(want))
		}
	})
	// The subtest's cleanup has run: nothing may be left.
	left, err := redistest.Keys(ctx, c, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("%d keys left after cleanup", len(left))
	}
}
