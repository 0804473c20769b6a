package experiment_test

import (
	"math/rand/v2"
	"testing"

	"github.com/recsys-dev/recsys/internal/experiment"
)

// simulate gives n users per arm, each buying with the arm's rate (one
// purchase of price 20, a few answers and clicks).
func simulate(rng *rand.Rand, n int, rates map[string]float64, names []string) []experiment.ArmTotals {
	out := make([]experiment.ArmTotals, len(names))
	for i, name := range names {
		out[i].Name = name
		for range n {
			u := experiment.UserTotals{Answers: 1 + rng.Int64N(3)}
			u.Items = 5 * u.Answers
			u.Clicks = rng.Int64N(u.Items/2 + 1)
			if rng.Float64() < rates[name] {
				u.Purchases, u.Revenue = 1, 20
			}
			out[i].Add(u)
		}
	}
	return out
}

// TestDetectsATwentyPercentLift: 20,000 users per arm, 5 % base
// conversion, B converts 20 % better. Over 20 seeds the lift has the
// right sign, its 95 % interval covers the true 0.2 in at least 17 of 20
// (expected 19), and the test rejects "no difference" in most seeds
// (power about 0.8 at this size).
func TestDetectsATwentyPercentLift(t *testing.T) {
	const seeds = 20
	covered, significant := 0, 0
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(uint64(seed), 11))
		arms := simulate(rng, 20000, map[string]float64{"A": 0.05, "B": 0.06}, []string{"A", "B"})
		res := experiment.Analyze(arms, "A")
		if !res[0].Control || res[0].Name != "A" || res[1].ConversionLift == nil {
			t.Fatalf("report %+v: want control A first, B compared", res)
		}
		l := res[1].ConversionLift
		if l.Lift.Estimate <= 0 || l.Diff.Estimate <= 0 {
			t.Errorf("seed %d: lift %v, want positive", seed, l.Lift)
		}
		if l.Lift.Low <= 0.2 && 0.2 <= l.Lift.High {
			covered++
		}
		if l.PValue < 0.05 {
			significant++
		}
		// Revenue per user follows conversion here (one purchase of 20).
		if r := res[1].RevenuePerUserLift; r.Diff.Estimate <= 0 {
			t.Errorf("seed %d: revenue per user lift %v, want positive", seed, r.Diff)
		}
	}
	if covered < 17 {
		t.Errorf("the interval covered the true lift in %d of %d seeds", covered, seeds)
	}
	if significant < 10 {
		t.Errorf("significant in %d of %d seeds, want most", significant, seeds)
	}
}

// TestAAFalsePositiveRate: two identical arms (5 % conversion, 5,000 users
// each) are significant at α = 0.05 in 2–9 % of 200 seeds.
func TestAAFalsePositiveRate(t *testing.T) {
	const seeds = 200
	hits := 0
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		res := experiment.Analyze(simulate(rng, 5000, map[string]float64{"A": 0.05, "A2": 0.05}, []string{"A", "A2"}), "A")
		if res[1].ConversionLift.PValue < 0.05 {
			hits++
		}
	}
	if hits < 4 || hits > 18 {
		t.Errorf("A/A significant in %d of %d seeds, want 4 to 18 (2–9 %%)", hits, seeds)
	}
	t.Logf("A/A significant in %d of %d seeds", hits, seeds)
}
