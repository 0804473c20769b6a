package experiment

import (
	"time"

	"github.com/recsys-dev/recsys/internal/abstat"
)

// UserTotals are what one user of an arm was shown and did over the
// experiment: the unit of analysis (assignment is per user, so a user's
// answers are not independent trials).
type UserTotals struct {
	Answers, Items, Clicks, Carts, Purchases int64
	Revenue                                  float64
	// First is the time of the user's first answer in the arm (zero when
	// unknown).
	First time.Time
}

// ArmTotals accumulates the sufficient statistics of an arm's users.
type ArmTotals struct {
	Name                                     string
	Users, Buyers                            int64
	Answers, Items, Clicks, Carts, Purchases int64
	Revenue                                  float64
	ctr, rpa, rpu                            abstat.Sums // clicks/items, revenue/answers, revenue per user
}

// Add counts one user.
func (a *ArmTotals) Add(u UserTotals) {
	a.Users++
	if u.Purchases > 0 {
		a.Buyers++
	}
	a.Answers += u.Answers
	a.Items += u.Items
	a.Clicks += u.Clicks
	a.Carts += u.Carts
	a.Purchases += u.Purchases
	a.Revenue += u.Revenue
	add := func(s *abstat.Sums, x, y float64) {
		s.N++
		s.SumX += x
		s.SumY += y
		s.SumXX += x * x
		s.SumYY += y * y
		s.SumXY += x * y
	}
	add(&a.ctr, float64(u.Clicks), float64(u.Items))
	add(&a.rpa, u.Revenue, float64(u.Answers))
	add(&a.rpu, u.Revenue, 0)
}

// ArmResult is one arm's report with the user as the unit.
type ArmResult struct {
	ArmTotals
	Control bool
	// Conversion is buyers / users (Wilson); CTR clicks / items shown and
	// RevenuePerAnswer revenue / answers (delta method on per-user
	// totals); RevenuePerUser the mean revenue per user (normal).
	Conversion, CTR, RevenuePerUser, RevenuePerAnswer abstat.Interval
	// Against the control (nil for the control): the two-proportion
	// z-test on converted users, Welch's t-test on revenue per user and
	// z-tests on the delta-method intervals of CTR and revenue per answer.
	ConversionLift, RevenuePerUserLift, CTRLift, RevenuePerAnswerLift *abstat.Comparison
}

// Analyze reports every arm, the control first, each other arm compared
// with it. control must name one of arms (else the first is the control).
func Analyze(arms []ArmTotals, control string) []ArmResult {
	ci := 0
	for i, a := range arms {
		if a.Name == control {
			ci = i
		}
	}
	order := []int{ci}
	for i := range arms {
		if i != ci {
			order = append(order, i)
		}
	}
	out := make([]ArmResult, 0, len(arms))
	c := arms[ci]
	for _, i := range order {
		a := arms[i]
		r := ArmResult{ArmTotals: a, Control: i == ci,
			Conversion: abstat.Wilson(a.Buyers, a.Users), CTR: a.ctr.Ratio(),
			RevenuePerUser: a.rpu.Mean(), RevenuePerAnswer: a.rpa.Ratio()}
		if i != ci {
			conv := abstat.TwoProportions(a.Buyers, a.Users, c.Buyers, c.Users)
			rev := abstat.Welch(a.rpu, c.rpu)
			ctr, rpa := abstat.Ratios(a.ctr, c.ctr), abstat.Ratios(a.rpa, c.rpa)
			r.ConversionLift, r.RevenuePerUserLift, r.CTRLift, r.RevenuePerAnswerLift = &conv, &rev, &ctr, &rpa
		}
		out = append(out, r)
	}
	return out
}
