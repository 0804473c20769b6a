package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// subBits sets the precision of a Histogram: 2^subBits buckets per power of
// two, so a value is known to within 1/64 (1.6%) of itself.
const subBits = 6

// numBuckets covers every non-negative int64 nanosecond count.
const numBuckets = (64 - subBits + 1) << subBits

// Histogram counts durations in log-linear buckets, like HdrHistogram: the
// values below 64 ns exactly, every larger value within 1.6% (its bucket's
// width is at most 1/64 of its lower bound). It costs 30 KB whatever the
// number of values, so a long soak keeps every sample without growing. The
// exact minimum, maximum and sum are kept besides. Not safe for concurrent
// use.
type Histogram struct {
	counts   [numBuckets]uint64
	n        uint64
	min, max time.Duration
	sum      float64 // nanoseconds
}

// bucketOf returns the bucket index of v >= 0.
func bucketOf(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	shift := bits.Len64(v) - 1 - subBits
	top := v >> shift // in [2^subBits, 2^(subBits+1))
	return (shift+1)<<subBits + int(top) - 1<<subBits
}

// bucketUpper is the largest value bucket i holds.
func bucketUpper(i int) uint64 {
	if i < 1<<subBits {
		return uint64(i)
	}
	shift := i>>subBits - 1
	top := uint64(i&(1<<subBits-1)) + 1<<subBits
	return (top+1)<<shift - 1
}

// Record adds one value; a negative one counts as 0.
func (h *Histogram) Record(d time.Duration) {
	d = max(d, 0)
	h.counts[bucketOf(uint64(d))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	h.max = max(h.max, d)
	h.n++
	h.sum += float64(d)
}

// Merge adds every value of o.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest value recorded, exactly; 0 when empty.
func (h *Histogram) Max() time.Duration { return h.max }

// Min is the smallest value recorded, exactly; 0 when empty.
func (h *Histogram) Min() time.Duration { return h.min }

// Mean is the exact mean; 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(math.Round(h.sum / float64(h.n)))
}

// Quantile returns the value below which a fraction q (0..1) of the values
// lie: the upper bound of the bucket holding the value of rank ⌈q·n⌉, kept
// within [Min, Max]. So it is never below the true quantile and at most
// 1.6% above it. 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(min(max(q, 0), 1) * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := time.Duration(min(bucketUpper(i), uint64(math.MaxInt64)))
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}
