package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketBounds(t *testing.T) {
	// Every value lies in its bucket, buckets are ordered and contiguous,
	// and a bucket is at most 1/64 of its lower bound wide.
	values := []uint64{0, 1, 63, 64, 65, 127, 128, 129, 1000, 1 << 20, 1<<20 + 12345, 1e9, 3.6e12, math.MaxInt64}
	for _, v := range values {
		i := bucketOf(v)
		lower := uint64(0)
		if i > 0 {
			lower = bucketUpper(i-1) + 1
		}
		if v < lower || v > bucketUpper(i) {
			t.Errorf("value %d in bucket %d = [%d, %d]", v, i, lower, bucketUpper(i))
		}
		if width := bucketUpper(i) - lower; v >= 64 && float64(width) > float64(lower)/64 {
			t.Errorf("bucket %d of %d is %d wide, more than 1/64 of %d", i, v, width, lower)
		}
		if i >= numBuckets {
			t.Errorf("value %d: bucket %d past the end (%d)", v, i, numBuckets)
		}
	}
	for i := 1; i < numBuckets; i++ {
		if bucketOf(bucketUpper(i-1)+1) != i {
			t.Fatalf("bucket %d does not start right after bucket %d", i, i-1)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name string
		gen  func() time.Duration
		n    int
	}{
		{"one value", func() time.Duration { return 1234 * time.Microsecond }, 1},
		{"constant", func() time.Duration { return 5 * time.Millisecond }, 1000},
		{"uniform 0-10ms", func() time.Duration { return time.Duration(rng.Int64N(int64(10 * time.Millisecond))) }, 10_000},
		{"log-normal", func() time.Duration { return time.Duration(math.Exp(rng.NormFloat64()*1.5 + 14)) }, 100_000},
		{"tiny", func() time.Duration { return time.Duration(rng.IntN(100)) }, 1000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Histogram
			vals := make([]time.Duration, tc.n)
			var sum float64
			for i := range vals {
				vals[i] = tc.gen()
				h.Record(vals[i])
				sum += float64(vals[i])
			}
			slices.Sort(vals)
			if h.Count() != uint64(tc.n) || h.Max() != vals[len(vals)-1] || h.Min() != vals[0] {
				t.Errorf("count %d max %v min %v, want %d %v %v", h.Count(), h.Max(), h.Min(), tc.n, vals[len(vals)-1], vals[0])
			}
			if got, want := h.Mean(), time.Duration(math.Round(sum/float64(tc.n))); got != want {
				t.Errorf("mean %v, want %v", got, want)
			}
			for _, q := range []float64{0, 0.5, 0.9, 0.95, 0.99, 0.999, 1} {
				rank := max(int(math.Ceil(q*float64(tc.n))), 1)
				want := vals[rank-1] // the exact quantile of the sorted samples
				got := h.Quantile(q)
				if got < want || float64(got-want) > float64(want)/64+1 {
					t.Errorf("q%v: got %v, want %v (at most 1/64 above)", q, got, want)
				}
			}
		})
	}
}

func TestHistogramMergeAndEmpty(t *testing.T) {
	var a, b, all, empty Histogram
	for i := range 1000 {
		d := time.Duration(i) * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	a.Merge(&empty)
	if a.Count() != all.Count() || a.Min() != all.Min() || a.Max() != all.Max() || a.Mean() != all.Mean() {
		t.Errorf("merged: %d %v %v %v, want %d %v %v %v", a.Count(), a.Min(), a.Max(), a.Mean(), all.Count(), all.Min(), all.Max(), all.Mean())
	}
	for _, q := range []float64{0.5, 0.99} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf("q%v: merged %v, whole %v", q, a.Quantile(q), all.Quantile(q))
		}
	}
	if empty.Quantile(0.5) != 0 || empty.Max() != 0 || empty.Mean() != 0 {
		t.Errorf("empty histogram: %v %v %v, want zeros", empty.Quantile(0.5), empty.Max(), empty.Mean())
	}
	var neg Histogram
	neg.Record(-time.Second)
	if neg.Max() != 0 || neg.Quantile(1) != 0 {
		t.Errorf("negative value: max %v, want it counted as 0", neg.Max())
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	d := time.Duration(1)
	for b.Loop() {
		h.Record(d)
		d = d*3 + 7&(1<<40-1)
	}
}
