// Package reportview renders an ExperimentService report
// (GetReportResponse) for people: for an experiment, one table per metric
// (conversion, CTR, revenue per user, revenue per answer) with every arm's
// value, its 95 % interval, the lift over the control with its interval
// and p-value, and a one-line verdict per compared arm; then the daily
// counters per placement, source, model version and arm. It only formats:
// every number comes from the message, so what `recsysctl report` prints
// and what `--json` prints agree.
package reportview

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// Alpha is the significance level of the verdicts.
const Alpha = 0.05

// metric is one table of the experiment section.
type metric struct {
	title string
	// more is the verdict's verb phrase for an arm that beats the
	// control ("sold more"); less for one that trails it.
	more, less string
	percent    bool // a share: shown as a percentage; else an amount
	value      func(*recsysv1.ArmReport) *recsysv1.Estimate
	lift       func(*recsysv1.ArmReport) *recsysv1.Lift
}

var metrics = []metric{
	{"Conversion (users with an attributed purchase / users; two-proportion z-test)", "converted more users", "converted fewer users", true,
		(*recsysv1.ArmReport).GetConversion, (*recsysv1.ArmReport).GetConversionLift},
	{"CTR (attributed views / items shown; delta method on per-user totals)", "got more clicks", "got fewer clicks", true,
		(*recsysv1.ArmReport).GetCtr, (*recsysv1.ArmReport).GetCtrLift},
	{"Revenue per user (Welch's t-test)", "sold more", "sold less", false,
		(*recsysv1.ArmReport).GetRevenuePerUser, (*recsysv1.ArmReport).GetRevenuePerUserLift},
	{"Revenue per answer (delta method on per-user totals)", "sold more per answer", "sold less per answer", false,
		(*recsysv1.ArmReport).GetRevenuePerAnswer, (*recsysv1.ArmReport).GetRevenuePerAnswerLift},
}

// Write renders rep; experiment names the reported experiment (may be
// empty: then only the daily counters are shown).
func Write(w io.Writer, experiment string, rep *recsysv1.GetReportResponse) error {
	var b bytes.Buffer
	if arms := rep.GetArms(); len(arms) > 0 {
		writeArms(&b, experiment, arms)
	}
	if c := rep.GetCampaign(); c != nil {
		writeCampaign(&b, c)
	}
	writeRows(&b, rep.GetRows())
	// tabwriter pads empty trailing cells; trailing blanks help nobody.
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	_, err := io.WriteString(w, strings.Join(lines, "\n"))
	return err
}

func writeArms(b *bytes.Buffer, experiment string, arms []*recsysv1.ArmReport) {
	control := arms[0]
	for _, a := range arms {
		if a.GetControl() {
			control = a
		}
	}
	fmt.Fprintf(b, "Experiment %s: the user is the unit; 95 %% intervals; lift = (arm − control) / control; control arm %s\n\n",
		experiment, control.GetArm())
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "arm\tusers\tanswers\titems shown\tclicks\tcarts\tpurchases\tbuyers\trevenue\t")
	for _, a := range arms {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.2f\n", armName(a), a.GetUsers(), a.GetAnswers(), a.GetItemsShown(),
			a.GetClicks(), a.GetCarts(), a.GetPurchases(), a.GetBuyers(), a.GetRevenue())
	}
	_ = tw.Flush()
	for _, m := range metrics {
		fmt.Fprintf(b, "\n%s\n", m.title)
		tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "arm\tvalue\t95 % interval\tlift vs control\t95 % interval of lift\tp\t")
		for _, a := range arms {
			e := m.value(a)
			fmt.Fprintf(tw, "%s\t%s\t[%s, %s]\t", armName(a), m.format(e.GetValue()), m.format(e.GetLow()), m.format(e.GetHigh()))
			if l := m.lift(a); l != nil && !a.GetControl() {
				fmt.Fprintf(tw, "%s\t[%s, %s]\t%s\n", signedPercent(l.GetRelative()), signedPercent(l.GetLow()), signedPercent(l.GetHigh()), pValue(l.GetPValue()))
			} else {
				fmt.Fprint(tw, "—\t\t\n")
			}
		}
		_ = tw.Flush()
		for _, a := range arms {
			if l := m.lift(a); l != nil && !a.GetControl() {
				fmt.Fprintf(b, "→ %s\n", verdict(m, "arm "+a.GetArm(), control.GetArm(), l))
			}
		}
	}
	b.WriteString("\n")
}

// verdict is the one-line conclusion for an arm against the control.
func verdict(m metric, arm, control string, l *recsysv1.Lift) string {
	p := l.GetPValue()
	if math.IsNaN(p) || p >= Alpha || l.GetDifference() == 0 {
		return fmt.Sprintf("%s vs %s: no significant difference (%s)", arm, control, pIs(p))
	}
	what := m.more
	if l.GetDifference() < 0 {
		what = m.less
	}
	if math.IsNaN(l.GetRelative()) { // the control's value is 0: no relative lift
		return fmt.Sprintf("%s %s than %s: %+g, %s", arm, what, control, l.GetDifference(), pIs(p))
	}
	return fmt.Sprintf("%s %s than %s: %s [%s, %s], %s", arm, what, control,
		signedPercent(l.GetRelative()), signedPercent(l.GetLow()), signedPercent(l.GetHigh()), pIs(p))
}

// campaignMetrics are the rows of the campaign table.
var campaignMetrics = []struct {
	name, more, less string
	percent          bool
	value            func(*recsysv1.CampaignGroup) *recsysv1.Estimate
	lift             func(*recsysv1.CampaignReport) *recsysv1.Lift
}{
	{"visitors / users", "brought more users back", "brought fewer users back", true,
		(*recsysv1.CampaignGroup).GetVisitRate, (*recsysv1.CampaignReport).GetVisitLift},
	{"buyers / users", "made more users buy", "made fewer users buy", true,
		(*recsysv1.CampaignGroup).GetBuyerRate, (*recsysv1.CampaignReport).GetBuyerLift},
	{"purchases per user", "sold more", "sold less", false,
		(*recsysv1.CampaignGroup).GetPurchasesPerUser, (*recsysv1.CampaignReport).GetPurchasesPerUserLift},
	{"revenue per user", "sold more", "sold less", false,
		(*recsysv1.CampaignGroup).GetRevenuePerUser, (*recsysv1.CampaignReport).GetRevenuePerUserLift},
}

func writeCampaign(b *bytes.Buffer, c *recsysv1.CampaignReport) {
	p, h := c.GetPushed(), c.GetHeldOut()
	fmt.Fprintf(b, "Push campaign %s: pushed vs held out (%.0f %% held out), visits and purchases within %d days of %s; the user is the unit\n\n",
		c.GetCampaign(), 100*c.GetHoldoutShare(), c.GetDays(), c.GetStartedAt().AsTime().UTC().Format("2006-01-02 15:04 UTC"))
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "group\tusers\tvisitors\tbuyers\tpurchases\trevenue")
	for _, g := range []struct {
		name string
		g    *recsysv1.CampaignGroup
	}{{"pushed", p}, {"held out", h}} {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.2f\n", g.name, g.g.GetUsers(), g.g.GetVisitors(), g.g.GetBuyers(), g.g.GetPurchases(), g.g.GetRevenue())
	}
	_ = tw.Flush()
	b.WriteString("\n")
	tw = tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "metric\tpushed\theld out\tlift of push\t95 % interval of lift\tp")
	for _, m := range campaignMetrics {
		met := metric{percent: m.percent}
		pe, he, l := m.value(p), m.value(h), m.lift(c)
		fmt.Fprintf(tw, "%s\t%s [%s, %s]\t%s [%s, %s]\t%s\t[%s, %s]\t%s\n", m.name,
			met.format(pe.GetValue()), met.format(pe.GetLow()), met.format(pe.GetHigh()),
			met.format(he.GetValue()), met.format(he.GetLow()), met.format(he.GetHigh()),
			signedPercent(l.GetRelative()), signedPercent(l.GetLow()), signedPercent(l.GetHigh()), pValue(l.GetPValue()))
	}
	_ = tw.Flush()
	for _, m := range campaignMetrics {
		fmt.Fprintf(b, "→ %s: %s\n", m.name, verdict(metric{more: m.more, less: m.less}, "the push", "the holdout", m.lift(c)))
	}
	b.WriteString("\n")
}

func writeRows(b *bytes.Buffer, rows []*recsysv1.ReportRow) {
	b.WriteString("Daily counters over the range, per placement, source, model version and arm (Wilson 95 % intervals)\n\n")
	if len(rows) == 0 {
		b.WriteString("no answers in the range\n")
		return
	}
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "placement\tsource\tmodel\texperiment/arm\tanswers\titems\tclicks\tcarts\tpurchases\trevenue\tCTR\tpurchases/answer\t")
	for _, r := range rows {
		arm := "—"
		if r.GetExperiment() != "" {
			arm = r.GetExperiment() + "/" + r.GetArm()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%.2f\t%s\t%s\n", orDash(r.GetPlacement()), orDash(r.GetSource()),
			orDash(r.GetModelVersion()), arm, r.GetAnswers(), r.GetItemsShown(), r.GetClicks(), r.GetCarts(), r.GetPurchases(),
			r.GetRevenue(), estimatePercent(r.GetCtr()), estimatePercent(r.GetPurchasesPerAnswer()))
	}
	_ = tw.Flush()
}

func armName(a *recsysv1.ArmReport) string {
	if a.GetControl() {
		return a.GetArm() + " (control)"
	}
	return a.GetArm()
}

func (m metric) format(v float64) string {
	if m.percent {
		return percent(v)
	}
	return fmt.Sprintf("%.2f", v)
}

func percent(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f %%", 100*v)
}

func signedPercent(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	return fmt.Sprintf("%+.1f %%", 100*v)
}

func estimatePercent(e *recsysv1.Estimate) string {
	return fmt.Sprintf("%s [%s, %s]", percent(e.GetValue()), percent(e.GetLow()), percent(e.GetHigh()))
}

// pValue prints p with two significant digits, small ones as "<0.0001".
func pValue(p float64) string {
	switch {
	case math.IsNaN(p):
		return "n/a"
	case p < 0.0001:
		return "<0.0001"
	}
	return fmt.Sprintf("%.2g", p)
}

// pIs is "p=0.012" or "p<0.0001".
func pIs(p float64) string {
	if s := pValue(p); s[0] == '<' {
		return "p" + s
	}
	return "p=" + pValue(p)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
