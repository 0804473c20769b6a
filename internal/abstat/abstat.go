// Package abstat holds the statistics an online experiment report needs:
// confidence intervals for proportions (Wilson score) and for means and
// ratios of per-user totals (normal approximation; the delta method for a
// ratio of two sums), the two-proportion z-test and Welch's t-test for the
// difference between two arms, and the relative lift with its interval.
// Everything works from sufficient statistics (counts, sums, sums of
// squares and cross products), so the per-user totals never need to be
// read back.
package abstat

import "math"

// Z95 is the standard normal quantile of a two-sided 95 % interval.
const Z95 = 1.959963984540054

// Interval is an estimate with its 95 % confidence interval.
type Interval struct{ Estimate, Low, High float64 }

// Wilson is the Wilson score interval of k successes in n trials (n = 0
// gives the empty estimate 0 with interval [0, 1]).
func Wilson(k, n int64) Interval {
	if n <= 0 {
		return Interval{0, 0, 1}
	}
	p := float64(k) / float64(n)
	nf := float64(n)
	z2 := Z95 * Z95
	den := 1 + z2/nf
	center := (p + z2/(2*nf)) / den
	half := Z95 * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf)) / den
	return Interval{p, math.Max(0, center-half), math.Min(1, center+half)}
}

// Sums are the sufficient statistics of per-user totals of two metrics X
// (for example revenue) and Y (for example answers): the number of users
// and the sums of X, Y, X², Y² and XY.
type Sums struct {
	N                   int64
	SumX, SumY          float64
	SumXX, SumYY, SumXY float64
}

// Mean is the mean of X per user with a normal-approximation interval.
func (s Sums) Mean() Interval {
	if s.N <= 0 {
		return Interval{}
	}
	m := s.SumX / float64(s.N)
	se := math.Sqrt(s.varX() / float64(s.N))
	return Interval{m, m - Z95*se, m + Z95*se}
}

// varX is the sample variance of X (0 for fewer than 2 users).
func (s Sums) varX() float64 {
	if s.N < 2 {
		return 0
	}
	n := float64(s.N)
	return math.Max(0, (s.SumXX-s.SumX*s.SumX/n)/(n-1))
}

// Ratio is ΣX/ΣY (for example revenue per answer) with the delta-method
// interval for a ratio of means of per-user totals, which accounts for
// answers of one user not being independent.
func (s Sums) Ratio() Interval {
	if s.N <= 0 || s.SumY == 0 {
		return Interval{}
	}
	if s.N < 2 {
		r := s.SumX / s.SumY
		return Interval{r, r, r}
	}
	r, v := s.ratioVar()
	se := math.Sqrt(v)
	return Interval{r, r - Z95*se, r + Z95*se}
}

// Comparison is the difference of a treatment against the control.
type Comparison struct {
	Diff Interval // treatment − control, absolute
	// Lift is (treatment − control) / control with its interval (delta
	// method on the ratio of two independent estimates); NaN when the
	// control's estimate is 0.
	Lift   Interval
	PValue float64 // two-sided
}

// TwoProportions compares k1/n1 (treatment) with k0/n0 (control) with the
// pooled two-proportion z-test; the interval of the difference is the
// unpooled Wald interval.
func TwoProportions(k1, n1, k0, n0 int64) Comparison {
	if n1 <= 0 || n0 <= 0 {
		return Comparison{Lift: nanInterval(), PValue: math.NaN()}
	}
	p1, p0 := float64(k1)/float64(n1), float64(k0)/float64(n0)
	v1, v0 := p1*(1-p1)/float64(n1), p0*(1-p0)/float64(n0)
	d := p1 - p0
	se := math.Sqrt(v1 + v0)
	pool := float64(k1+k0) / float64(n1+n0)
	sePool := math.Sqrt(pool * (1 - pool) * (1/float64(n1) + 1/float64(n0)))
	p := 1.0
	if sePool > 0 {
		p = twoSidedNormal(d / sePool)
	}
	return Comparison{Diff: Interval{d, d - Z95*se, d + Z95*se}, Lift: lift(p1, v1, p0, v0), PValue: p}
}

// Welch compares the means of X per user of two arms with Welch's t-test
// (the t distribution with the Welch–Satterthwaite degrees of freedom).
func Welch(treatment, control Sums) Comparison {
	if treatment.N < 2 || control.N < 2 {
		return Comparison{Lift: nanInterval(), PValue: math.NaN()}
	}
	m1, m0 := treatment.SumX/float64(treatment.N), control.SumX/float64(control.N)
	v1, v0 := treatment.varX()/float64(treatment.N), control.varX()/float64(control.N)
	d := m1 - m0
	se := math.Sqrt(v1 + v0)
	if se == 0 {
		p := 1.0
		if d != 0 {
			p = 0
		}
		return Comparison{Diff: Interval{d, d, d}, Lift: lift(m1, v1, m0, v0), PValue: p}
	}
	df := (v1 + v0) * (v1 + v0) / (v1*v1/float64(treatment.N-1) + v0*v0/float64(control.N-1))
	tq := tQuantile975(df)
	return Comparison{Diff: Interval{d, d - tq*se, d + tq*se}, Lift: lift(m1, v1, m0, v0), PValue: twoSidedT(d/se, df)}
}

// Ratios compares ΣX/ΣY of two arms (for example clicks per item shown)
// with a z-test on the difference of the two delta-method estimates
// (Ratio's standard errors; the arms' users are independent).
func Ratios(treatment, control Sums) Comparison {
	if treatment.N < 2 || control.N < 2 || treatment.SumY == 0 || control.SumY == 0 {
		return Comparison{Lift: nanInterval(), PValue: math.NaN()}
	}
	r1, v1 := treatment.ratioVar()
	r0, v0 := control.ratioVar()
	d := r1 - r0
	se := math.Sqrt(v1 + v0)
	p := 1.0
	switch {
	case se > 0:
		p = twoSidedNormal(d / se)
	case d != 0:
		p = 0
	}
	return Comparison{Diff: Interval{d, d - Z95*se, d + Z95*se}, Lift: lift(r1, v1, r0, v0), PValue: p}
}

// ratioVar is ΣX/ΣY and the delta-method variance of it (N ≥ 2, ΣY ≠ 0).
func (s Sums) ratioVar() (r, v float64) {
	n := float64(s.N)
	r = s.SumX / s.SumY
	mx, my := s.SumX/n, s.SumY/n
	vx := (s.SumXX - n*mx*mx) / (n - 1)
	vy := (s.SumYY - n*my*my) / (n - 1)
	cxy := (s.SumXY - n*mx*my) / (n - 1)
	return r, math.Max(0, (vx-2*r*cxy+r*r*vy)/(my*my*n))
}

// lift is m1/m0 − 1 with the delta-method interval of the ratio of two
// independent estimates with variances v1, v0.
func lift(m1, v1, m0, v0 float64) Interval {
	if m0 == 0 {
		return nanInterval()
	}
	r := m1 / m0
	se := math.Sqrt(v1/(m0*m0) + m1*m1*v0/(m0*m0*m0*m0))
	return Interval{r - 1, r - 1 - Z95*se, r - 1 + Z95*se}
}

func nanInterval() Interval { return Interval{math.NaN(), math.NaN(), math.NaN()} }

// twoSidedNormal is P(|Z| >= |z|).
func twoSidedNormal(z float64) float64 { return math.Erfc(math.Abs(z) / math.Sqrt2) }

// twoSidedT is P(|T| >= |t|) for Student's t with df degrees of freedom:
// the regularized incomplete beta I_{df/(df+t²)}(df/2, 1/2).
func twoSidedT(t, df float64) float64 {
	if math.IsInf(df, 1) || df > 1e7 {
		return twoSidedNormal(t)
	}
	return regIncBeta(df/2, 0.5, df/(df+t*t))
}

// tQuantile975 is the 97.5 % quantile of Student's t with df degrees of
// freedom, by bisection on twoSidedT.
func tQuantile975(df float64) float64 {
	lo, hi := 0.0, 1000.0
	for range 100 {
		mid := (lo + hi) / 2
		if twoSidedT(mid, df) > 0.05 {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// regIncBeta is the regularized incomplete beta function I_x(a, b), by the
// continued fraction of Numerical Recipes (betacf).
func regIncBeta(a, b, x float64) float64 {
	if x <= 0 {
		return 0
	}
	if x >= 1 {
		return 1
	}
	la, _ := math.Lgamma(a + b)
	lb, _ := math.Lgamma(a)
	lc, _ := math.Lgamma(b)
	front := math.Exp(la - lb - lc + a*math.Log(x) + b*math.Log(1-x))
	if x < (a+1)/(a+b+2) {
		return front * betaCF(a, b, x) / a
	}
	return 1 - front*betaCF(b, a, 1-x)/b
}

func betaCF(a, b, x float64) float64 {
	const eps, tiny = 1e-15, 1e-300
	qab, qap, qam := a+b, a+1, a-1
	c, d := 1.0, 1-qab*x/qap
	if math.Abs(d) < tiny {
		d = tiny
	}
	d = 1 / d
	h := d
	for m := 1; m <= 300; m++ {
		mf := float64(m)
		m2 := 2 * mf
		aa := mf * (b - mf) * x / ((qam + m2) * (a + m2))
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		h *= d * c
		aa = -(a + mf) * (qab + mf) * x / ((a + m2) * (qap + m2))
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < eps {
			break
		}
	}
	return h
}
