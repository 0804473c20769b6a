package loadgen

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestZipf(t *testing.T) {
	const draws = 200_000
	tests := []struct {
		name string
		n    int
		s    float64
	}{
		{"uniform", 50, 0},
		{"s=0.8", 100, 0.8},
		{"s=1", 100, 1},
		{"s=1.5", 1000, 1.5},
		{"one rank", 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z, err := NewZipf(tc.n, tc.s)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(7, 7))
			counts := make([]int, tc.n)
			for range draws {
				k := z.Draw(rng)
				if k < 0 || k >= tc.n {
					t.Fatalf("rank %d outside [0, %d)", k, tc.n)
				}
				counts[k]++
			}
			var h float64
			for k := range tc.n {
				h += math.Pow(float64(k+1), -tc.s)
			}
			// The three hottest ranks get their share within 5 standard
			// deviations of a binomial count (the seed is fixed, so this is
			// deterministic; the margin only says how exact the sampler is).
			for k := range min(3, tc.n) {
				p := math.Pow(float64(k+1), -tc.s) / h
				want := p * draws
				if sd := math.Sqrt(draws * p * (1 - p)); math.Abs(float64(counts[k])-want) > 5*sd+1 {
					t.Errorf("rank %d drawn %d times, want %.0f ± %.0f", k, counts[k], want, 5*sd)
				}
			}
		})
	}
}

func TestZipfErrors(t *testing.T) {
	for _, tc := range []struct {
		n int
		s float64
	}{{0, 1}, {-1, 0}, {10, -0.5}, {10, math.NaN()}, {10, math.Inf(1)}} {
		if _, err := NewZipf(tc.n, tc.s); err == nil {
			t.Errorf("NewZipf(%d, %v): got no error", tc.n, tc.s)
		}
	}
}

func TestZipfDeterministic(t *testing.T) {
	z, err := NewZipf(1000, 1)
	if err != nil {
		t.Fatal(err)
	}
	a, b := rand.New(rand.NewPCG(3, 4)), rand.New(rand.NewPCG(3, 4))
	for i := range 1000 {
		if x, y := z.Draw(a), z.Draw(b); x != y {
			t.Fatalf("draw %d: %d then %d from the same seed", i, x, y)
		}
	}
}
