package loadgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// Zipf draws ranks 0..n-1 with P(k) ∝ 1/(k+1)^s: rank 0 is the hottest user
// or item. s = 0 is uniform; real shops are near s = 1. Unlike
// math/rand.Zipf it accepts any s >= 0 (that one needs s > 1), at the cost
// of a table of n float64 (8 MB for a million ids) searched per draw.
type Zipf struct {
	n   int
	cdf []float64 // nil when uniform
}

// NewZipf returns a sampler of n ranks with exponent s.
func NewZipf(n int, s float64) (*Zipf, error) {
	if n < 1 {
		return nil, fmt.Errorf("zipf: need at least 1 rank, got %d", n)
	}
	if s < 0 || math.IsNaN(s) || math.IsInf(s, 0) {
		return nil, fmt.Errorf("zipf: skew must be a finite number >= 0, got %v", s)
	}
	z := &Zipf{n: n}
	if s == 0 {
		return z, nil
	}
	z.cdf = make([]float64, n)
	var sum float64
	for k := range n {
		sum += math.Pow(float64(k+1), -s)
		z.cdf[k] = sum
	}
	for k := range z.cdf {
		z.cdf[k] /= sum
	}
	z.cdf[n-1] = 1 // no rounding gap at the top
	return z, nil
}

// Draw returns a rank in [0, n).
func (z *Zipf) Draw(r *rand.Rand) int {
	if z.cdf == nil {
		return r.IntN(z.n)
	}
	u := r.Float64() // [0, 1)
	return sort.Search(z.n, func(i int) bool { return z.cdf[i] > u })
}
