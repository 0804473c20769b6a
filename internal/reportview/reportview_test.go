package reportview_test

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

func TestWriteGolden(t *testing.T) {
	for _, tc := range []struct {
		name, experiment string
		rep              *recsysv1.GetReportResponse
	}{
		{"experiment", "demo-home", fixed()},
		{"rows-only", "", &recsysv1.GetReportResponse{Rows: fixed().Rows}},
		{"empty", "", &recsysv1.GetReportResponse{}},
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
