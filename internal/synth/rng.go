package synth

import (
	"math"
	"math/bits"
	"math/rand/v2"
)

// rng is a PCG generator with the few distributions the generator needs,
// derived here from raw 64-bit outputs rather than taken from math/rand/v2,
// so that a seed keeps producing the same shop even if the standard
// library's derived distributions change. PCG itself is a fixed, documented
// algorithm.
type rng struct{ pcg rand.PCG }

// Streams: independent random streams derived from one seed, so that a user's
// events depend only on the seed and the user's index (not on the users
// generated before), and the activity pass can draw one number per user.
const (
	streamCatalog uint64 = iota + 1
	streamActivity
	streamUser
)

// seed points r at stream (kind, index) of seed.
func (r *rng) seed(seed, kind uint64, index int) {
	r.pcg.Seed(seed, splitmix64(kind<<56^uint64(index)))
}

// splitmix64 scrambles stream numbers so that neighbouring indices give
// unrelated PCG increments.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// float returns a uniform number in [0, 1).
func (r *rng) float() float64 { return float64(r.pcg.Uint64()>>11) * 0x1p-53 }

// open returns a uniform number in (0, 1), safe for logarithms.
func (r *rng) open() float64 { return (float64(r.pcg.Uint64()>>11) + 0.5) * 0x1p-53 }

// intn returns a uniform integer in [0, n) (Lemire's multiply-high; the bias
// is below n/2^64).
func (r *rng) intn(n int) int {
	hi, _ := bits.Mul64(r.pcg.Uint64(), uint64(n))
	return int(hi)
}

// norm returns a standard normal number (Box-Muller).
func (r *rng) norm() float64 {
	return math.Sqrt(-2*math.Log(r.open())) * math.Cos(2*math.Pi*r.float())
}

// exp returns an exponential number with mean 1.
func (r *rng) exp() float64 { return -math.Log(r.open()) }

// perm returns a random permutation of [0, n) (Fisher-Yates).
func (r *rng) perm(n int) []int32 {
	p := make([]int32, n)
	for i := range p {
		p[i] = int32(i)
	}
	for i := n - 1; i > 0; i-- {
		j := r.intn(i + 1)
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// pick returns the index i with cum[i-1] <= x < cum[i] for x uniform in
// [0, cum[len-1]): a draw proportional to the weights whose running sums cum
// holds. Binary search, no allocation.
func (r *rng) pick(cum []float64) int {
	x := r.float() * cum[len(cum)-1]
	lo, hi := 0, len(cum)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if cum[mid] > x {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}
