package experiment

import (
	"time"

	"github.com/recsys-dev/recsys/internal/abstat"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/profile"
)

// CampaignGroup accumulates one side of a push campaign (pushed or held
// out) over a window after the campaign's start, one user at a time, from
// the user's profile: a visit is a view, cart, purchase or custom event in
// the window, a purchase an order (purchase event) in it. The profile
// keeps the newest 200 events and 500 orders, so a user far more active
// than that in the window is undercounted alike on both sides.
type CampaignGroup struct {
	Users, Visitors, Buyers, Purchases int64
	Revenue                            float64
	purchases, revenue                 abstat.Sums // per user: X
}

// Add counts one user's profile within [from, to).
func (g *CampaignGroup) Add(p profile.Profile, from, to time.Time) {
	in := func(t time.Time) bool { return !t.Before(from) && t.Before(to) }
	g.Users++
	for _, e := range p.History {
		if in(e.Time) && (e.Type == event.View || e.Type == event.AddToCart || e.Type == event.Purchase || e.Type == event.Custom) {
			g.Visitors++
			break
		}
	}
	var n int64
	var spend float64
	for _, o := range p.Orders {
		if in(o.Time) {
			n++
			spend += o.Spend
		}
	}
	if n > 0 {
		g.Buyers++
	}
	g.Purchases += n
	g.Revenue += spend
	add := func(s *abstat.Sums, x float64) {
		s.N++
		s.SumX += x
		s.SumXX += x * x
	}
	add(&g.purchases, float64(n))
	add(&g.revenue, spend)
}

// VisitRate, BuyerRate (Wilson), PurchasesPerUser and RevenuePerUser
// (normal) are the group's rates with 95 % intervals.
func (g CampaignGroup) VisitRate() abstat.Interval        { return abstat.Wilson(g.Visitors, g.Users) }
func (g CampaignGroup) BuyerRate() abstat.Interval        { return abstat.Wilson(g.Buyers, g.Users) }
func (g CampaignGroup) PurchasesPerUser() abstat.Interval { return g.purchases.Mean() }
func (g CampaignGroup) RevenuePerUser() abstat.Interval   { return g.revenue.Mean() }

// CampaignLift compares the pushed users with the held-out ones: the
// two-proportion z-test on visitors and buyers, Welch's t-test on
// purchases and revenue per user.
type CampaignLift struct {
	Visits, Buyers, PurchasesPerUser, RevenuePerUser abstat.Comparison
}

// CompareCampaign compares pushed (treatment) with heldOut (control).
func CompareCampaign(pushed, heldOut CampaignGroup) CampaignLift {
	return CampaignLift{
		Visits:           abstat.TwoProportions(pushed.Visitors, pushed.Users, heldOut.Visitors, heldOut.Users),
		Buyers:           abstat.TwoProportions(pushed.Buyers, pushed.Users, heldOut.Buyers, heldOut.Users),
		PurchasesPerUser: abstat.Welch(pushed.purchases, heldOut.purchases),
		RevenuePerUser:   abstat.Welch(pushed.revenue, heldOut.revenue),
	}
}
