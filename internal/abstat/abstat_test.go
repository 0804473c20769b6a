package abstat

import (
	"math"
	"testing"
)

func near(t *testing.T, name string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s: got %.6f, want %.6f", name, got, want)
	}
}

// The expected values are computed by hand (see the comments) and agree
// with published tables.
func TestWilson(t *testing.T) {
	tests := []struct {
		k, n         int64
		p, low, high float64
	}{
		// z² = 3.841459; 5/10: center 0.5, half 1.959964·√(0.025+0.009604)/1.384146
		{5, 10, 0.5, 0.236593, 0.763407},
		// 0/10: center = half = 0.192073/1.384146
		{0, 10, 0, 0, 0.277530},
		{10, 10, 1, 0.722470, 1},
		{0, 0, 0, 0, 1},
	}
	for _, tt := range tests {
		got := Wilson(tt.k, tt.n)
		near(t, "estimate", got.Estimate, tt.p, 1e-9)
		near(t, "low", got.Low, tt.low, 1e-5)
		near(t, "high", got.High, tt.high, 1e-5)
	}
}

func TestTDistribution(t *testing.T) {
	// Table values: t(0.975; 10) = 2.228139, t(0.975; 1) = 12.706205.
	near(t, "t quantile df 10", tQuantile975(10), 2.228139, 1e-5)
	near(t, "t quantile df 1", tQuantile975(1), 12.706205, 1e-4)
	near(t, "p of t=2.228139 df=10", twoSidedT(2.228139, 10), 0.05, 1e-6)
	near(t, "p of t=0", twoSidedT(0, 5), 1, 1e-12)
	near(t, "large df is normal", twoSidedT(1.959964, 1e9), 0.05, 1e-6)
}

func TestTwoProportions(t *testing.T) {
	// 60/1000 vs 50/1000: pooled 0.055, se √(0.055·0.945·0.002) = 0.0101956,
	// z = 0.980809, p = erfc(z/√2) = 0.326686. Unpooled se
	// √(0.06·0.94/1000 + 0.05·0.95/1000) = √0.0001039 = 0.0101931.
	c := TwoProportions(60, 1000, 50, 1000)
	near(t, "diff", c.Diff.Estimate, 0.01, 1e-12)
	near(t, "diff low", c.Diff.Low, 0.01-Z95*0.0101931, 1e-6)
	near(t, "p", c.PValue, 0.326686, 1e-5)
	near(t, "lift", c.Lift.Estimate, 0.2, 1e-12)
	// Lift se: √(v1/p0² + p1²·v0/p0⁴) = √(0.02256 + 0.02736) = 0.223428
	near(t, "lift low", c.Lift.Low, 0.2-Z95*0.223428, 1e-4)
	if c := TwoProportions(1, 0, 1, 10); !math.IsNaN(c.PValue) {
		t.Errorf("no users: p = %v, want NaN", c.PValue)
	}
}

func sumsOf(xs, ys []float64) Sums {
	var s Sums
	for i, x := range xs {
		y := 0.0
		if ys != nil {
			y = ys[i]
		}
		s.N++
		s.SumX += x
		s.SumY += y
		s.SumXX += x * x
		s.SumYY += y * y
		s.SumXY += x * y
	}
	return s
}

func TestWelch(t *testing.T) {
	// {1,2,3,4}: mean 2.5, variance 5/3; {2,4,6}: mean 4, variance 4.
	// se = √(5/12 + 4/3) = 1.322876, t = −1.133893, Welch df = 3.234720;
	// p (numerical integration of the t density) = 0.333824.
	c := Welch(sumsOf([]float64{1, 2, 3, 4}, nil), sumsOf([]float64{2, 4, 6}, nil))
	near(t, "diff", c.Diff.Estimate, -1.5, 1e-12)
	near(t, "p", c.PValue, 0.333824, 1e-4)
	near(t, "lift", c.Lift.Estimate, 2.5/4-1, 1e-12)
	if c.Diff.Low > -1.5-2*1.322876 { // t(0.975; 3.23) > 3
		t.Errorf("interval %v too narrow for 3 degrees of freedom", c.Diff)
	}
}

func TestMeanAndRatio(t *testing.T) {
	// Users (X, Y): (1,2), (0,1), (3,3). Ratio 4/6; vx = 7/3, vy = 1,
	// cov = 1.5; delta-method variance (7/3 − 2·(2/3)·1.5 + (4/9)·1)/(2²·3)
	// = 0.0648148, se 0.254588.
	s := sumsOf([]float64{1, 0, 3}, []float64{2, 1, 3})
	r := s.Ratio()
	near(t, "ratio", r.Estimate, 2.0/3, 1e-12)
	near(t, "ratio low", r.Low, 2.0/3-Z95*0.254588, 1e-5)
	near(t, "ratio high", r.High, 2.0/3+Z95*0.254588, 1e-5)
	// Mean of X: 4/3, variance 7/3, se √(7/9) = 0.881917.
	m := s.Mean()
	near(t, "mean", m.Estimate, 4.0/3, 1e-12)
	near(t, "mean high", m.High, 4.0/3+Z95*0.881917, 1e-5)
}

func TestRatios(t *testing.T) {
	// Treatment as in TestMeanAndRatio: 2/3, variance 0.0648148. Control
	// (X, Y) (0,2), (1,2), (0,2), (1,2): ratio 1/4; vx = 1/3, vy = 0,
	// cov = 0; variance (1/3)/(2²·4) = 1/48. se √(0.0648148 + 1/48) =
	// 0.292657; z = (2/3 − 1/4)/se = 1.423737, p = 0.154523.
	tr := sumsOf([]float64{1, 0, 3}, []float64{2, 1, 3})
	co := sumsOf([]float64{0, 1, 0, 1}, []float64{2, 2, 2, 2})
	c := Ratios(tr, co)
	near(t, "diff", c.Diff.Estimate, 2.0/3-0.25, 1e-12)
	near(t, "diff low", c.Diff.Low, 2.0/3-0.25-Z95*0.292657, 1e-5)
	near(t, "p", c.PValue, 0.154523, 1e-5)
	near(t, "lift", c.Lift.Estimate, (2.0/3)/0.25-1, 1e-12)
	if got := Ratios(tr, Sums{N: 3}); !math.IsNaN(got.PValue) || !math.IsNaN(got.Lift.Estimate) {
		t.Errorf("control without denominator: %+v, want NaN", got)
	}
}
