package recommend

import (
	"math/rand/v2"
	"testing"
)

// TestBitsetSizedEmpties checks that sized leaves an empty set whatever was
// set before — a few rows (only their words are cleared), many rows (all
// are), and a new size — and that has sees exactly the rows set since.
func TestBitsetSizedEmpties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var b bitset
	for _, c := range []struct{ n, rows int }{{1000, 3}, {1000, 500}, {1000, 0}, {64, 64}, {70, 2}, {100_000, 40}, {100_000, 40}, {1, 1}} {
		b.sized(c.n)
		if got := b.count(); got != 0 {
			t.Fatalf("n=%d: %d rows set after sized", c.n, got)
		}
		want := map[int32]bool{}
		for range c.rows {
			r := int32(rng.IntN(c.n))
			b.set(r)
			want[r] = true
		}
		for r := range int32(c.n) {
			if b.has(r) != want[r] {
				t.Fatalf("n=%d: has(%d) = %v, want %v", c.n, r, b.has(r), want[r])
			}
		}
	}
}
