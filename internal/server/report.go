package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/recsys-dev/recsys/internal/abstat"
	"github.com/recsys-dev/recsys/internal/attribution"
	"github.com/recsys-dev/recsys/internal/experiment"
	"github.com/recsys-dev/recsys/internal/kpi"
	"github.com/recsys-dev/recsys/internal/profile"
	"github.com/recsys-dev/recsys/internal/pushsched"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// DailyCounters reads the daily counters (implemented by *kpi.Store).
type DailyCounters interface {
	Read(ctx context.Context, from, to time.Time) ([]kpi.Row, error)
}

// ArmTallies reads an arm's per-user totals (implemented by
// *experiment.Tally).
type ArmTallies interface {
	Arm(ctx context.Context, xp, arm string) (experiment.ArmTotals, error)
}

// CampaignUsers reads push campaigns' groups (implemented by
// *pushsched.Campaigns).
type CampaignUsers interface {
	Get(ctx context.Context, campaign string) (pushsched.Campaign, error)
	Members(ctx context.Context, campaign string, g pushsched.Group, fn func(ids []string) error) error
}

// ProfileBatches loads profiles a block at a time (implemented by
// *profile.Store).
type ProfileBatches interface {
	LoadMany(ctx context.Context, ids []string) ([]profile.Profile, error)
}

// ArmUsers pages through an arm's users and their totals (implemented by
// *experiment.Tally).
type ArmUsers interface {
	Users(ctx context.Context, xp, arm string, fn func(ids []string, totals []experiment.UserTotals) error) error
}

// retention counts every arm's retention and repurchase from its users'
// profiles.
func (s *experimentService) retention(ctx context.Context, xp experiment.Experiment) (map[string][]experiment.RetentionCounts, error) {
	users, ok := s.tally.(ArmUsers)
	if !ok || s.profiles == nil {
		return nil, PreconditionError(errors.New("this server cannot read the experiment users' profiles"))
	}
	now := s.now()
	out := map[string][]experiment.RetentionCounts{}
	for _, a := range xp.Arms {
		var r experiment.Retention
		seen := map[string]bool{} // HSCAN may repeat a field
		err := users.Users(ctx, xp.Name, a.Name, func(ids []string, totals []experiment.UserTotals) error {
			var fresh []string
			firsts := map[string]time.Time{}
			for i, u := range ids {
				if !seen[u] && !totals[i].First.IsZero() {
					seen[u] = true
					fresh = append(fresh, u)
					firsts[u] = totals[i].First
				}
			}
			for len(fresh) > 0 {
				n := min(len(fresh), profile.MaxLoadMany)
				ps, err := s.profiles.LoadMany(ctx, fresh[:n])
				if err != nil {
					return err
				}
				for i, p := range ps {
					r.Add(p, firsts[fresh[i]], now)
				}
				fresh = fresh[n:]
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		out[a.Name] = r.Counts()
	}
	return out, nil
}

// DefaultCampaignDays is GetReport's default campaign_days.
const DefaultCampaignDays = 7

// campaignReport compares a campaign's pushed and held-out users over the
// days after its first call.
func (s *experimentService) campaignReport(ctx context.Context, id string, days int) (*recsysv1.CampaignReport, error) {
	if s.campaigns == nil || s.profiles == nil {
		return nil, PreconditionError(errors.New("this server keeps no push campaigns"))
	}
	c, err := s.campaigns.Get(ctx, id)
	if errors.Is(err, pushsched.ErrNoCampaign) {
		return nil, NotFoundError(err)
	}
	if err != nil {
		return nil, err
	}
	from := c.First
	to := from.Add(time.Duration(days) * 24 * time.Hour)
	var groups [2]experiment.CampaignGroup
	for i, g := range []pushsched.Group{pushsched.Targeted, pushsched.HeldOutG} {
		seen := map[string]bool{} // SSCAN may repeat a member
		err := s.campaigns.Members(ctx, id, g, func(ids []string) error {
			fresh := ids[:0:0]
			for _, u := range ids {
				if !seen[u] {
					seen[u] = true
					fresh = append(fresh, u)
				}
			}
			for len(fresh) > 0 { // an SSCAN page may exceed one LoadMany
				n := min(len(fresh), profile.MaxLoadMany)
				ps, err := s.profiles.LoadMany(ctx, fresh[:n])
				if err != nil {
					return err
				}
				for _, p := range ps {
					groups[i].Add(p, from, to)
				}
				fresh = fresh[n:]
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	pushed, held := groups[0], groups[1]
	l := experiment.CompareCampaign(pushed, held)
	return &recsysv1.CampaignReport{
		Campaign: id, HoldoutShare: c.HoldoutShare, StartedAt: timestamppb.New(from), Days: int32(days),
		Pushed: toCampaignGroup(pushed), HeldOut: toCampaignGroup(held),
		VisitLift: toLift(l.Visits), BuyerLift: toLift(l.Buyers),
		PurchasesPerUserLift: toLift(l.PurchasesPerUser), RevenuePerUserLift: toLift(l.RevenuePerUser),
	}, nil
}

func toCampaignGroup(g experiment.CampaignGroup) *recsysv1.CampaignGroup {
	return &recsysv1.CampaignGroup{Users: g.Users, Visitors: g.Visitors, Buyers: g.Buyers, Purchases: g.Purchases, Revenue: g.Revenue,
		VisitRate: toEstimate(g.VisitRate()), BuyerRate: toEstimate(g.BuyerRate()),
		PurchasesPerUser: toEstimate(g.PurchasesPerUser()), RevenuePerUser: toEstimate(g.RevenuePerUser())}
}

func parseDay(field, s string) (time.Time, error) {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, invalid(field, fmt.Sprintf("must be a date YYYY-MM-DD, got %q", s))
	}
	return d, nil
}

func (s *experimentService) GetReport(ctx context.Context, req *recsysv1.GetReportRequest) (*recsysv1.GetReportResponse, error) {
	if s.counters == nil {
		return nil, PreconditionError(fmt.Errorf("this server keeps no daily counters"))
	}
	from, err := parseDay("from_date", req.GetFromDate())
	if err != nil {
		return nil, err
	}
	to := from
	if req.GetToDate() != "" {
		if to, err = parseDay("to_date", req.GetToDate()); err != nil {
			return nil, err
		}
	}
	switch {
	case to.Before(from):
		return nil, invalid("to_date", "must not be before from_date")
	case to.Sub(from) > 400*24*time.Hour:
		return nil, invalid("to_date", "must be at most 400 days after from_date")
	}
	days := int(req.GetCampaignDays())
	switch {
	case req.GetCampaignDays() == 0:
		days = DefaultCampaignDays
	case days < 1 || days > 90:
		return nil, invalid("campaign_days", "must be 1 to 90")
	}
	var xp experiment.Experiment
	if name := req.GetExperiment(); name != "" {
		if s.store == nil || s.tally == nil {
			return nil, errNoExperiments
		}
		if xp, err = s.store.Get(ctx, name); err != nil {
			return nil, experimentError(err)
		}
	}
	rows, err := s.counters.Read(ctx, from, to)
	if err != nil {
		return nil, err
	}
	out := &recsysv1.GetReportResponse{}
	if id := req.GetCampaign(); id != "" {
		if out.Campaign, err = s.campaignReport(ctx, id, days); err != nil {
			return nil, err
		}
	}
	sums := map[attribution.Dims]*kpi.Counts{}
	var order []attribution.Dims
	for _, r := range rows {
		c, ok := sums[r.Dims]
		if !ok {
			c = &kpi.Counts{}
			sums[r.Dims] = c
			order = append(order, r.Dims)
		}
		c.Add(r.Counts)
	}
	for _, d := range order {
		c := sums[d]
		out.Rows = append(out.Rows, &recsysv1.ReportRow{
			Placement: d.Placement, Source: d.Source, ModelVersion: d.ModelVersion, Experiment: d.Experiment, Arm: d.Arm,
			Answers: c.Answers, ItemsShown: c.ItemsShown, Clicks: c.Clicks, Carts: c.Carts, Purchases: c.Purchases,
			Revenue: c.Revenue, UserDays: c.Users,
			Ctr:                toEstimate(abstat.Wilson(min(c.Clicks, c.ItemsShown), c.ItemsShown)),
			PurchasesPerAnswer: toEstimate(abstat.Wilson(min(c.Purchases, c.Answers), c.Answers)),
		})
	}
	if xp.Name == "" {
		return out, nil
	}
	arms := make([]experiment.ArmTotals, len(xp.Arms))
	for i, a := range xp.Arms {
		if arms[i], err = s.tally.Arm(ctx, xp.Name, a.Name); err != nil {
			return nil, err
		}
	}
	var retention map[string][]experiment.RetentionCounts
	if req.GetRetention() {
		if retention, err = s.retention(ctx, xp); err != nil {
			return nil, err
		}
	}
	for _, r := range experiment.Analyze(arms, xp.ControlArm) {
		ar := &recsysv1.ArmReport{
			Arm: r.Name, Control: r.Control, Users: r.Users, Answers: r.Answers, ItemsShown: r.Items,
			Clicks: r.Clicks, Carts: r.Carts, Purchases: r.Purchases, Revenue: r.Revenue, Buyers: r.Buyers,
			Conversion: toEstimate(r.Conversion), Ctr: toEstimate(r.CTR),
			RevenuePerUser: toEstimate(r.RevenuePerUser), RevenuePerAnswer: toEstimate(r.RevenuePerAnswer),
		}
		if r.ConversionLift != nil {
			ar.ConversionLift = toLift(*r.ConversionLift)
			ar.RevenuePerUserLift = toLift(*r.RevenuePerUserLift)
			ar.CtrLift = toLift(*r.CTRLift)
			ar.RevenuePerAnswerLift = toLift(*r.RevenuePerAnswerLift)
		}
		for _, c := range retention[r.Name] {
			ar.Retention = append(ar.Retention, &recsysv1.RetentionCounts{Segment: c.Segment, Days: int32(c.Days), Users: c.Users,
				Matured: c.Matured, Retained: c.Retained, Buyers: c.Buyers, Repurchasers: c.Repurchasers})
		}
		out.Arms = append(out.Arms, ar)
	}
	return out, nil
}

func toEstimate(i abstat.Interval) *recsysv1.Estimate {
	return &recsysv1.Estimate{Value: i.Estimate, Low: i.Low, High: i.High}
}

// toLift converts a comparison; NaN (no control value, too few users)
// is sent as is (protojson writes "NaN").
func toLift(c abstat.Comparison) *recsysv1.Lift {
	l := &recsysv1.Lift{Relative: c.Lift.Estimate, Low: c.Lift.Low, High: c.Lift.High, Difference: c.Diff.Estimate, PValue: c.PValue}
	if math.IsNaN(l.Difference) {
		l.Difference = 0
	}
	return l
}

// userTotals is an ArmTallies that can also forget a user
// (*experiment.Tally).
type userTotals interface {
	DeleteUser(ctx context.Context, userID string, xps []experiment.Experiment) error
}

// forgetter returns what DeleteUser calls to remove a user's experiment
// totals, or nil when there are none.
func forgetter(store ExperimentStore, tally ArmTallies) func(ctx context.Context, userID string) error {
	t, ok := tally.(userTotals)
	if store == nil || !ok {
		return nil
	}
	return func(ctx context.Context, userID string) error {
		xps, err := store.List(ctx)
		if err != nil {
			return err
		}
		return t.DeleteUser(ctx, userID, xps)
	}
}
