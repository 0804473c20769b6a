package recommend

import (
	"testing"
	"time"
)

func TestNextRoundUsers(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		k             int
		compute, send time.Duration
		want          int
	}{
		{32, 10 * ms, ms, 64},            // the reader keeps up: double
		{128, 10 * ms, 0, pushLoadBlock}, // at most a load block
		{128, 10 * ms, 1280 * ms, 1},     // 1 message per 10 ms: one user per compute time
		{64, 10 * ms, 20 * ms, 32},       // half as fast as compute: half the users
		{32, 10 * ms, time.Hour, 1},      // never fewer than one
		{0, 0, 0, 2},
	} {
		if got := nextRoundUsers(tc.k, tc.compute, tc.send); got != tc.want {
			t.Errorf("nextRoundUsers(%d, %v, %v) = %d, want %d", tc.k, tc.compute, tc.send, got, tc.want)
		}
	}
}
