package reportview_test

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/recsys-dev/recsys/internal/reportview"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func est(v, lo, hi float64) *recsysv1.Estimate {
	return &recsysv1.Estimate{Value: v, Low: lo, High: hi}
}

// fixed is a report as GetReport answers it: arm "model" converts and
// sells significantly more than the control, its CTR is not significantly
// different, and the control's revenue per answer is 0 (no relative lift).
func fixed() *recsysv1.GetReportResponse {
	return &recsysv1.GetReportResponse{
		Arms: []*recsysv1.ArmReport{
			{Arm: "popular", Control: true, Users: 1500, Answers: 1500, ItemsShown: 12000, Clicks: 600, Carts: 40, Purchases: 70,
				Revenue: 0, Buyers: 63, Conversion: est(0.042, 0.0330, 0.0534), Ctr: est(0.05, 0.046, 0.054),
				RevenuePerUser: est(2.5, 1.9, 3.1), RevenuePerAnswer: est(0, 0, 0)},
			{Arm: "model", Users: 1490, Answers: 1490, ItemsShown: 11920, Clicks: 650, Carts: 55, Purchases: 101,
				Revenue: 5512.4, Buyers: 90, Conversion: est(0.0604, 0.0494, 0.0737), Ctr: est(0.0545, 0.050, 0.059),
				RevenuePerUser: est(3.7, 3.0, 4.4), RevenuePerAnswer: est(3.7, 3.0, 4.4),
				ConversionLift:       &recsysv1.Lift{Relative: 0.438, Low: 0.05, High: 0.83, Difference: 0.0184, PValue: 0.0223},
				CtrLift:              &recsysv1.Lift{Relative: 0.09, Low: -0.02, High: 0.2, Difference: 0.0045, PValue: 0.12},
				RevenuePerUserLift:   &recsysv1.Lift{Relative: 0.48, Low: 0.12, High: 0.84, Difference: 1.2, PValue: 0.00004},
				RevenuePerAnswerLift: &recsysv1.Lift{Relative: math.NaN(), Low: math.NaN(), High: math.NaN(), Difference: 3.7, PValue: 0.001}},
		},
		Rows: []*recsysv1.ReportRow{
			{Placement: "home", Source: "popular", ModelVersion: "v1", Experiment: "demo-home", Arm: "popular", Answers: 1500,
				ItemsShown: 12000, Clicks: 600, Carts: 40, Purchases: 70, Revenue: 3750, UserDays: 1500,
				Ctr: est(0.05, 0.046, 0.054), PurchasesPerAnswer: est(0.0467, 0.037, 0.058)},
			{Placement: "pdp", Source: "personalized", ModelVersion: "v1", Answers: 10, ItemsShown: 80,
				Ctr: est(0, 0, 0.045), PurchasesPerAnswer: est(0, 0, 0.28)},
		},
	}
}

// fixedCampaign: the push brings more users back and makes more buy;
// purchases per user do not differ significantly.
func fixedCampaign() *recsysv1.CampaignReport {
	return &recsysv1.CampaignReport{
		Campaign: "winter", HoldoutShare: 0.1, Days: 7, StartedAt: timestamppb.New(time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)),
		Pushed: &recsysv1.CampaignGroup{Users: 9000, Visitors: 2700, Buyers: 450, Purchases: 600, Revenue: 18000,
			VisitRate: est(0.3, 0.29, 0.31), BuyerRate: est(0.05, 0.046, 0.055), PurchasesPerUser: est(0.0667, 0.06, 0.073),
			RevenuePerUser: est(2, 1.8, 2.2)},
		HeldOut: &recsysv1.CampaignGroup{Users: 1000, Visitors: 250, Buyers: 35, Purchases: 60, Revenue: 1500,
			VisitRate: est(0.25, 0.224, 0.278), BuyerRate: est(0.035, 0.025, 0.048), PurchasesPerUser: est(0.06, 0.04, 0.08),
			RevenuePerUser: est(1.5, 1.1, 1.9)},
		VisitLift:            &recsysv1.Lift{Relative: 0.2, Low: 0.08, High: 0.32, Difference: 0.05, PValue: 0.0009},
		BuyerLift:            &recsysv1.Lift{Relative: 0.4286, Low: 0.01, High: 0.85, Difference: 0.015, PValue: 0.034},
		PurchasesPerUserLift: &recsysv1.Lift{Relative: 0.111, Low: -0.25, High: 0.47, Difference: 0.0067, PValue: 0.55},
		RevenuePerUserLift:   &recsysv1.Lift{Relative: 0.333, Low: -0.02, High: 0.69, Difference: 0.5, PValue: 0.051},
	}
}

func TestWriteGolden(t *testing.T) {
	for _, tc := range []struct {
		name, experiment string
		rep              *recsysv1.GetReportResponse
	}{
		{"experiment", "demo-home", fixed()},
		{"rows-only", "", &recsysv1.GetReportResponse{Rows: fixed().Rows}},
		{"empty", "", &recsysv1.GetReportResponse{}},
		{"campaign", "", &recsysv1.GetReportResponse{Campaign: fixedCampaign()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := reportview.Write(&b, tc.experiment, tc.rep); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got := b.String(); got != string(want) {
				t.Errorf("got\n%s\nwant (%s; go test -run TestWriteGolden -update rewrites it)\n%s", got, golden, want)
			}
		})
	}
}

// The verdicts follow the lift and the p-value, whatever the layout.
func TestVerdicts(t *testing.T) {
	var b bytes.Buffer
	if err := reportview.Write(&b, "demo-home", fixed()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"→ arm model converted more users than popular: +43.8 % [+5.0 %, +83.0 %], p=0.022",
		"→ arm model vs popular: no significant difference (p=0.12)",
		"→ arm model sold more than popular: +48.0 % [+12.0 %, +84.0 %], p<0.0001",
		"→ arm model sold more per answer than popular: +3.7, p=0.001",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	rep := fixed()
	rep.Arms[1].ConversionLift.Relative, rep.Arms[1].ConversionLift.Difference = -0.3, -0.01
	b.Reset()
	if err := reportview.Write(&b, "demo-home", rep); err != nil {
		t.Fatal(err)
	}
	if want := "arm model converted fewer users than popular: -30.0 %"; !strings.Contains(b.String(), want) {
		t.Errorf("missing %q", want)
	}
}

func TestCampaignVerdicts(t *testing.T) {
	var b bytes.Buffer
	if err := reportview.Write(&b, "", &recsysv1.GetReportResponse{Campaign: fixedCampaign()}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"→ visitors / users: the push brought more users back than the holdout: +20.0 % [+8.0 %, +32.0 %], p=0.0009",
		"→ buyers / users: the push made more users buy than the holdout: +42.9 % [+1.0 %, +85.0 %], p=0.034",
		"→ purchases per user: the push vs the holdout: no significant difference (p=0.55)",
		"→ revenue per user: the push vs the holdout: no significant difference (p=0.051)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in\n%s", want, b.String())
		}
	}
}
