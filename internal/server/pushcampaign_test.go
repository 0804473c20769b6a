package server_test

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/recsys-dev/recsys/internal/pushsched"
	"github.com/recsys-dev/recsys/internal/redistest"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

const holdout = recsysv1.PushEmptyReason_PUSH_EMPTY_REASON_HOLDOUT

// TestBatchRecommendHoldout: held-out users get nothing (even users with
// items to push), the share holds, the draw is deterministic per campaign,
// and the campaign's users are stored for its report.
func TestBatchRecommendHoldout(t *testing.T) {
	e := newEnv(t, true)
	pushUsers(t, e)
	ctx := context.Background()
	const share = 0.2
	// A campaign in which alice (who has items to push) is held out, and
	// bob is not.
	campaign := ""
	for i := 0; campaign == ""; i++ {
		if c := "spring-" + strconv.Itoa(i); pushsched.HeldOut(c, "alice", share) && !pushsched.HeldOut(c, "bob", share) {
			campaign = c
		}
	}
	users := []string{"alice", "bob"}
	for i := range 2000 {
		users = append(users, "u"+strconv.Itoa(i))
	}
	req := &recsysv1.BatchRecommendRequest{UserIds: users, Count: 3, CampaignId: campaign, HoldoutShare: share}
	got := e.mustBatch(t, req)
	if len(got) != len(users) {
		t.Fatalf("%d answers for %d users", len(got), len(users))
	}
	held := map[string]bool{}
	for i, m := range got {
		want := pushsched.HeldOut(campaign, users[i], share)
		if (m.GetEmptyReason() == holdout) != want || (want && len(m.GetItems()) > 0) {
			t.Errorf("%s: reason %v with %d items; held out by the hash: %v", users[i], m.GetEmptyReason(), len(m.GetItems()), want)
		}
		if want {
			held[users[i]] = true
		}
	}
	if !held["alice"] || held["bob"] || len(got[1].GetItems()) != 3 {
		t.Errorf("alice held out %v, bob held out %v with %d items", held["alice"], held["bob"], len(got[1].GetItems()))
	}
	// 2,002 draws at p = 0.2: mean 400, sd 17.9; 5 sd either side.
	if n := len(held); n < 310 || n > 490 {
		t.Errorf("%d of %d users held out at share %v", n, len(users), share)
	}
	// The same call holds out the same users; another campaign others.
	again := e.mustBatch(t, req)
	for i, m := range again {
		if (m.GetEmptyReason() == holdout) != held[users[i]] {
			t.Fatalf("second call: %s held out %v, first call %v", users[i], m.GetEmptyReason() == holdout, held[users[i]])
		}
	}
	other := e.mustBatch(t, &recsysv1.BatchRecommendRequest{UserIds: users, Count: 3, CampaignId: campaign + "-b", HoldoutShare: share})
	same := 0
	for i, m := range other {
		if (m.GetEmptyReason() == holdout) == held[users[i]] {
			same++
		}
	}
	if same == len(users) {
		t.Error("another campaign held out exactly the same users")
	}

	// The store: share, counts, and the members of each group.
	c, err := e.campaigns.Get(ctx, campaign)
	if err != nil {
		t.Fatal(err)
	}
	if c.HoldoutShare != share || c.HeldOutUsers != int64(len(held)) || c.TargetedUsers != int64(len(users)-len(held)) ||
		c.HeldOutAnswers != 2*int64(len(held)) || c.TargetedAnswers != 2*int64(len(users)-len(held)) || c.First.IsZero() {
		t.Errorf("campaign record %+v; want share %v, %d held out, %d targeted, answered twice", c, share, len(held), len(users)-len(held))
	}
	stored := map[string]bool{}
	if err := e.campaigns.Members(ctx, campaign, pushsched.HeldOutG, func(ids []string) error {
		for _, id := range ids {
			stored[id] = true
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(stored, held) {
		t.Errorf("stored held-out users differ from the answers: %d stored, %d answered", len(stored), len(held))
	}
	list, err := e.campaigns.List(ctx, e.clock.Now().Add(-1))
	if err != nil || !slices.Contains(list, campaign) || !slices.Contains(list, campaign+"-b") {
		t.Errorf("List: %v %v", list, err)
	}
	rdb := redistest.Client(t)
	if ttl := rdb.PTTL(ctx, e.campaigns.MembersKey(campaign, pushsched.HeldOutG)).Val(); ttl <= 0 {
		t.Errorf("held-out set TTL %v, want one", ttl)
	}

	// A campaign keeps its share.
	_, err = e.batch(t, &recsysv1.BatchRecommendRequest{UserIds: users[:3], Count: 3, CampaignId: campaign, HoldoutShare: 0.1})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("another share for the campaign: got %v, want FailedPrecondition", err)
	}
}

func TestBatchRecommendCampaignBadInput(t *testing.T) {
	e := newEnv(t, true)
	for _, tc := range []struct {
		name  string
		req   *recsysv1.BatchRecommendRequest
		field string
	}{
		{"share without campaign", &recsysv1.BatchRecommendRequest{UserIds: []string{"u"}, HoldoutShare: 0.1}, "holdout_share"},
		{"share over half", &recsysv1.BatchRecommendRequest{UserIds: []string{"u"}, CampaignId: "c", HoldoutShare: 0.6}, "holdout_share"},
		{"negative share", &recsysv1.BatchRecommendRequest{UserIds: []string{"u"}, CampaignId: "c", HoldoutShare: -0.1}, "holdout_share"},
		{"long campaign", &recsysv1.BatchRecommendRequest{UserIds: []string{"u"}, CampaignId: string(make([]byte, 129))}, "campaign_id"},
		{"padded campaign", &recsysv1.BatchRecommendRequest{UserIds: []string{"u"}, CampaignId: " c"}, "campaign_id"},
		{"unknown channel", &recsysv1.BatchRecommendRequest{UserIds: []string{"u"}, Channel: 9}, "channel"},
		{"negative brand cap", &recsysv1.BatchRecommendRequest{UserIds: []string{"u"}, MaxPerBrand: -1}, "max_per_brand"},
		{"negative seller cap", &recsysv1.BatchRecommendRequest{UserIds: []string{"u"}, MaxPerSeller: -1}, "max_per_seller"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.batch(t, tc.req)
			st := status.Convert(err)
			if st.Code() != codes.InvalidArgument || !containsField(st.Message(), tc.field) {
				t.Errorf("got %v, want InvalidArgument naming %s", err, tc.field)
			}
		})
	}
}

func containsField(msg, field string) bool {
	return len(msg) >= len(field) && msg[:len(field)] == field
}

// TestBatchRecommendChannel: a count of 0 takes the channel's default, and
// the answers are counted per channel.
func TestBatchRecommendChannel(t *testing.T) {
	e := newEnv(t, true)
	pushUsers(t, e)
	def := pushsched.DefaultChannelCounts
	for _, tc := range []struct {
		channel recsysv1.PushChannel
		label   string
		want    int
	}{
		{recsysv1.PushChannel_PUSH_CHANNEL_APP_PUSH, "app_push", def.AppPush},
		{recsysv1.PushChannel_PUSH_CHANNEL_EMAIL, "email", def.Email},
		{recsysv1.PushChannel_PUSH_CHANNEL_SMS, "sms", def.SMS},
		{recsysv1.PushChannel_PUSH_CHANNEL_UNSPECIFIED, "other", def.Other},
	} {
		got := e.mustBatch(t, &recsysv1.BatchRecommendRequest{UserIds: []string{"alice", "ghost"}, Channel: tc.channel})
		if n := len(got[0].GetItems()); n != tc.want {
			t.Errorf("%v: %d items, want the channel's default %d", tc.channel, n, tc.want)
		}
		if n := pushAnswers(t, e.push, tc.label, "items"); n != 1 {
			t.Errorf("%v: answers{channel=%s,outcome=items} = %v, want 1", tc.channel, tc.label, n)
		}
		if n := pushAnswers(t, e.push, tc.label, "unknown_user"); n != 1 {
			t.Errorf("%v: answers{channel=%s,outcome=unknown_user} = %v, want 1", tc.channel, tc.label, n)
		}
	}
	// An explicit count wins over the channel's.
	if got := e.mustBatch(t, &recsysv1.BatchRecommendRequest{UserIds: []string{"alice"}, Count: 2,
		Channel: recsysv1.PushChannel_PUSH_CHANNEL_EMAIL}); len(got[0].GetItems()) != 2 {
		t.Errorf("count 2 by e-mail: %d items", len(got[0].GetItems()))
	}
}

// pushAnswers reads recsys_push_answers_total{channel, outcome}.
func pushAnswers(t *testing.T, s *pushsched.Scheduler, channel, outcome string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "recsys_push_answers_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["channel"] == channel && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestBatchRecommendBrandAndSellerCaps: the per-brand and per-seller caps
// of Recommend hold in push answers too (hard: no filler over the cap).
func TestBatchRecommendBrandAndSellerCaps(t *testing.T) {
	e := newEnv(t, true)
	now := e.clock.Now()
	items := plantedCatalog(now)
	for _, it := range items {
		it.Brand = "brand-" + it.GetItemId()[:1]   // a, b, c
		it.Seller = "seller-" + it.GetItemId()[1:] // 0..9
	}
	e.upsert(t, items...)
	pushUsers(t, e)
	for _, tc := range []struct {
		name    string
		req     *recsysv1.BatchRecommendRequest
		key     func(id string) string
		maxPer  int
		wantLen int
	}{
		{"brand", &recsysv1.BatchRecommendRequest{UserIds: []string{"alice"}, Count: 5, MaxPerBrand: 1},
			func(id string) string { return id[:1] }, 1, 3},
		{"seller", &recsysv1.BatchRecommendRequest{UserIds: []string{"alice"}, Count: 20, MaxPerSeller: 1},
			func(id string) string { return id[1:] }, 1, 10},
		{"brand 2", &recsysv1.BatchRecommendRequest{UserIds: []string{"alice"}, Count: 6, MaxPerBrand: 2},
			func(id string) string { return id[:1] }, 2, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.mustBatch(t, tc.req)[0].GetItems()
			counts := map[string]int{}
			for _, it := range got {
				counts[tc.key(it.GetItemId())]++
			}
			for k, n := range counts {
				if n > tc.maxPer {
					t.Errorf("%d items of %s %q: %v", n, tc.name, k, ids(got))
				}
			}
			if len(got) != tc.wantLen {
				t.Errorf("%d items, want %d: %v", len(got), tc.wantLen, ids(got))
			}
		})
	}
}

// TestCampaignLiftInTheReport plants visits and purchases after a
// campaign: every pushed user visits and buys one item twice (two orders),
// every other held-out user visits, none buys; events before the campaign
// and after its window do not count. GetReport counts exactly that and
// finds the buyers' lift significant and the right way round.
func TestCampaignLiftInTheReport(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, envOptions{model: true, experiments: true, attribution: true})
	e.upsert(t, plantedCatalog(e.clock.Now())...)
	ctx := context.Background()
	const campaign, share = "winter", 0.5
	users := make([]string, 80)
	for i := range users {
		users[i] = "cu" + strconv.Itoa(i)
	}
	e.record(t, ev(users[0], "a1", view, e.clock.Now().Add(-time.Hour))) // before the campaign
	e.mustBatch(t, &recsysv1.BatchRecommendRequest{UserIds: users, Count: 3, CampaignId: campaign, HoldoutShare: share})
	start := e.clock.Now()
	e.clock.Advance(10 * 24 * time.Hour)
	var pushed, held, heldVisitors int64
	for i, u := range users {
		at := start.Add(time.Duration(i+1) * time.Minute)
		if !pushsched.HeldOut(campaign, u, share) {
			pushed++
			e.record(t, ev(u, "a2", view, at), ev(u, "a2", purchase, at.Add(time.Second)), ev(u, "a3", purchase, at.Add(2*time.Second)))
			continue
		}
		held++
		if held%2 == 0 {
			heldVisitors++
			e.record(t, ev(u, "b2", view, at))
		}
		e.record(t, ev(u, "b3", purchase, start.Add(8*24*time.Hour))) // after the 7-day window
	}
	if pushed < 10 || held < 10 {
		t.Fatalf("%d pushed, %d held out: the planted data needs both sides", pushed, held)
	}
	rep, err := e.xp.GetReport(ctx, &recsysv1.GetReportRequest{FromDate: start.Format(time.DateOnly), Campaign: campaign})
	if err != nil {
		t.Fatal(err)
	}
	c := rep.GetCampaign()
	p, h := c.GetPushed(), c.GetHeldOut()
	if c.GetDays() != 7 || c.GetHoldoutShare() != share || !c.GetStartedAt().AsTime().Equal(start) {
		t.Errorf("campaign %v: want 7 days from %v at share %v", c, start, share)
	}
	for _, tc := range []struct {
		name      string
		got, want int64
	}{
		{"pushed users", p.GetUsers(), pushed}, {"pushed visitors", p.GetVisitors(), pushed},
		{"pushed buyers", p.GetBuyers(), pushed}, {"pushed purchases", p.GetPurchases(), 2 * pushed},
		{"held-out users", h.GetUsers(), held}, {"held-out visitors", h.GetVisitors(), heldVisitors},
		{"held-out buyers", h.GetBuyers(), 0}, {"held-out purchases", h.GetPurchases(), 0},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, tc.got, tc.want)
		}
	}
	if l := c.GetBuyerLift(); l.GetDifference() != 1 || l.GetPValue() > 1e-6 {
		t.Errorf("buyer lift %v: want a difference of 1 (all vs none), p < 1e-6", l)
	}
	if l := c.GetVisitLift(); l.GetDifference() <= 0 || l.GetLow() <= 0 {
		t.Errorf("visit lift %v: want positive with its interval above 0", l)
	}
	if p.GetRevenuePerUser().GetValue() <= 0 {
		t.Errorf("pushed revenue per user %v: want the planted purchases' prices", p.GetRevenuePerUser())
	}

	for _, bad := range []*recsysv1.GetReportRequest{
		{FromDate: "2026-11-01", Campaign: campaign, CampaignDays: 91},
		{FromDate: "2026-11-01", Campaign: campaign, CampaignDays: -1},
	} {
		if _, err := e.xp.GetReport(ctx, bad); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "campaign_days") {
			t.Errorf("%v: %v, want InvalidArgument naming campaign_days", bad, err)
		}
	}
	if _, err := e.xp.GetReport(ctx, &recsysv1.GetReportRequest{FromDate: "2026-11-01", Campaign: "never"}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown campaign: %v, want NotFound", err)
	}
}
