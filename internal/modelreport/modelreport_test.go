package modelreport

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/recsys-dev/recsys/internal/eval"
)

func report() *eval.Report {
	return &eval.Report{Split: "last event per user", Cases: 120, Models: []eval.ModelResult{
		{Name: "als", Metrics: map[string]float64{"ndcg@5": 0.21, "ndcg@10": 0.26, "recall@5": 0.3, "recall@10": 0.42, "coverage@10": 0.6}},
		{Name: "popularity", Metrics: map[string]float64{"ndcg@5": 0.08, "ndcg@10": 0.1, "recall@5": 0.12, "recall@10": 0.2, "coverage@10": 0.02}},
		{Name: "item-knn <b>", Metrics: map[string]float64{"ndcg@5": 0.15, "ndcg@10": 0.19, "recall@5": 0.22, "recall@10": 0.31, "coverage@10": 0.4}},
	}}
}

// chart is what a test reads back from one rendered chart: the texts
// gonum/plot drew in its SVG (legend, axes) and its numbers table.
type chart struct {
	texts []string
	rows  [][]string
}

// parseCharts parses a report and returns its charts by data-metric,
// failing the test on anything that would load from elsewhere.
func parseCharts(t *testing.T, out []byte) map[string]*chart {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	charts := map[string]*chart{}
	var cur *chart
	var walk func(n *html.Node, inText bool)
	walk = func(n *html.Node, inText bool) {
		if n.Type == html.ElementNode {
			attr := map[string]string{}
			for _, a := range n.Attr {
				attr[a.Key] = a.Val
			}
			for _, k := range []string{"src", "href", "xlink:href"} {
				if v, ok := attr[k]; ok {
					t.Errorf("<%s %s=%q>: the report must be self-contained", n.Data, k, v)
				}
			}
			switch n.Data {
			case "svg":
				cur = &chart{}
				charts[attr["data-metric"]] = cur
			case "text":
				inText = true
			case "tr":
				if cur != nil {
					var row []string
					for c := n.FirstChild; c != nil; c = c.NextSibling {
						if c.FirstChild != nil {
							row = append(row, c.FirstChild.Data)
						} else {
							row = append(row, "")
						}
					}
					cur.rows = append(cur.rows, row)
				}
			}
		}
		if n.Type == html.TextNode && inText && cur != nil {
			cur.texts = append(cur.texts, n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inText)
		}
	}
	walk(doc, false)
	return charts
}

// column is the first cell of each row after the header.
func column(rows [][]string) []string {
	var out []string
	for _, r := range rows[1:] {
		out = append(out, r[0])
	}
	return out
}

// The report parses as HTML, has a chart per metric with a legend entry
// and a table row per model (baselines included), the gate's decision,
// escapes model names and loads nothing from elsewhere.
func TestWrite(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, Input{Title: "v1", Report: report(), Gate: "passed: ndcg@10 0.26 >= popularity 0.10"}); err != nil {
		t.Fatal(err)
	}
	charts := parseCharts(t, b.Bytes())
	want := []string{"als", "popularity", "item-knn <b>"}
	for _, m := range []string{"ndcg", "recall", "coverage@10"} {
		c := charts[m]
		if c == nil {
			t.Errorf("no %s chart", m)
			continue
		}
		for _, name := range want {
			if !slices.Contains(c.texts, name) {
				t.Errorf("chart %s: no legend entry %q in %q", m, name, c.texts)
			}
		}
		if got := column(c.rows); !slices.Equal(got, want) {
			t.Errorf("chart %s has rows %q, want %q", m, got, want)
		}
	}
	if got := charts["ndcg"].rows; !slices.Equal(got[0], []string{"model", "ndcg@5", "ndcg@10"}) || !slices.Equal(got[1], []string{"als", "0.2100", "0.2600"}) {
		t.Errorf("ndcg table = %q", got)
	}
	out := b.String()
	if strings.Contains(out, "item-knn <b>") {
		t.Error("a model name is not escaped")
	}
	if !strings.Contains(out, "Quality gate:</b> passed") {
		t.Error("the gate's decision is missing")
	}
}

func TestWriteRefusesAnEmptyReport(t *testing.T) {
	for _, r := range []*eval.Report{nil, {}} {
		if err := Write(&bytes.Buffer{}, Input{Report: r}); err == nil {
			t.Errorf("Write(%v) = nil error", r)
		}
	}
}

// The loss of every fit is a line of the loss chart; without losses
// there is no such chart.
func TestLossChart(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, Input{Report: report(), Loss: []LossSeries{
		{Name: "holdout", Values: []float64{900, 400, 300}}, {Name: "final", Values: []float64{1000, 450, 320}}}}); err != nil {
		t.Fatal(err)
	}
	c := parseCharts(t, b.Bytes())["loss"]
	if c == nil {
		t.Fatal("no loss chart")
	}
	if got, want := c.rows[1:], [][]string{{"holdout", "3", "900.0000", "300.0000"}, {"final", "3", "1000.0000", "320.0000"}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("loss rows = %q, want %q", got, want)
	}
	for _, name := range []string{"holdout", "final", "iteration"} {
		if !slices.Contains(c.texts, name) {
			t.Errorf("loss chart lacks the text %q", name)
		}
	}
	if !strings.Contains(b.String(), "training loss per iteration") {
		t.Error("the loss chart has no caption")
	}
	b.Reset()
	if err := Write(&b, Input{Report: report(), Loss: []LossSeries{{Name: "nan", Values: []float64{math.NaN()}}}}); err != nil {
		t.Fatal(err)
	}
	if parseCharts(t, b.Bytes())["loss"] != nil {
		t.Error("a loss chart without finite losses")
	}
}

// Models with activity buckets get the activity chart: a group per
// bucket, a series per model.
func TestActivityChart(t *testing.T) {
	r := report()
	for i := range r.Models {
		r.Models[i].Activity = []eval.ActivityBucket{{Label: "0-4 items", Users: 70, K: 10, NDCG: 0.1 * float64(i+1)},
			{Label: "5-19 items", Users: 50, K: 10, NDCG: 0.2}}
	}
	var b bytes.Buffer
	if err := Write(&b, Input{Report: r}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "ndcg@10 by the test users") {
		t.Error("the activity chart has no caption")
	}
	c := parseCharts(t, b.Bytes())["activity"]
	if c == nil {
		t.Fatal("no activity chart")
	}
	if got, want := c.rows[0], []string{"model", "0-4 items, 70 users", "5-19 items, 50 users"}; !slices.Equal(got, want) {
		t.Errorf("activity header = %q, want %q", got, want)
	}
	if got, want := c.rows[2], []string{"popularity", "0.2000", "0.2000"}; !slices.Equal(got, want) {
		t.Errorf("activity row = %q, want %q", got, want)
	}
	for _, text := range []string{"0-4 items (70)", "5-19 items (50)", "als", "popularity", "item-knn <b>"} {
		if !slices.Contains(c.texts, text) {
			t.Errorf("activity chart lacks the text %q in %q", text, c.texts)
		}
	}
}

// Models with a popularity bias get the popularity chart.
func TestPopularityChart(t *testing.T) {
	r := report()
	for i := range r.Models {
		r.Models[i].Popularity = eval.PopularityBias{K: 10, MeanPercentile: 0.5 + 0.1*float64(i), TopDecileShare: 0.2}
	}
	var b bytes.Buffer
	if err := Write(&b, Input{Report: r}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "popularity of the recommended items @10") {
		t.Error("the popularity chart has no caption")
	}
	c := parseCharts(t, b.Bytes())["popularity"]
	if c == nil {
		t.Fatal("no popularity chart")
	}
	if got, want := c.rows[2], []string{"popularity", "0.6000", "0.2000"}; !slices.Equal(got, want) {
		t.Errorf("popularity row = %q, want %q", got, want)
	}
	b.Reset()
	if err := Write(&b, Input{Report: report()}); err != nil {
		t.Fatal(err)
	}
	if parseCharts(t, b.Bytes())["popularity"] != nil {
		t.Error("a popularity chart without figures")
	}
}

// The first model's top-K scores are drawn as a histogram.
func TestScoreChart(t *testing.T) {
	r := report()
	r.Models[0].Scores = eval.ScoreHistogram{K: 10, Min: 0.1, Max: 0.9, Counts: []int{1, 3, 0, 4}}
	var b bytes.Buffer
	if err := Write(&b, Input{Report: r}); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, html.EscapeString("score distribution of als's top-10 items")) {
		t.Error("the score chart has no caption")
	}
	c := parseCharts(t, b.Bytes())["scores"]
	if c == nil {
		t.Fatal("no score chart")
	}
	if got, want := c.rows[4], []string{"0.7000", "0.9000", "4", "50.0%"}; !slices.Equal(got, want) {
		t.Errorf("last bin = %q, want %q", got, want)
	}
}
