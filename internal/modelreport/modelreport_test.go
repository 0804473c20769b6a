package modelreport

import (
	"bytes"
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

// The report parses as HTML, has a chart per metric with a series per model
// (baselines included), the gate's decision, escapes model names and loads
// nothing from elsewhere.
func TestWrite(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, Input{Title: "v1", Report: report(), Gate: "passed: ndcg@10 0.26 >= popularity 0.10"}); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	series := map[string][]string{} // data-metric -> data-model of its series
	var metric string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			attr := map[string]string{}
			for _, a := range n.Attr {
				attr[a.Key] = a.Val
			}
			if n.Data == "svg" {
				metric = attr["data-metric"]
			}
			if attr["class"] == "series" {
				series[metric] = append(series[metric], attr["data-model"])
			}
			for _, k := range []string{"src", "href"} {
				if v, ok := attr[k]; ok {
					t.Errorf("<%s %s=%q>: the report must be self-contained", n.Data, k, v)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	want := []string{"als", "popularity", "item-knn <b>"}
	for _, m := range []string{"ndcg", "recall", "coverage@10"} {
		if got := strings.Join(series[m], ","); got != strings.Join(want, ",") {
			t.Errorf("chart %s has series %q, want %q", m, got, want)
		}
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
	out := b.String()
	for _, want := range []string{`data-metric="loss"`, `data-model="holdout"`, `data-model="final"`, "training loss per iteration"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %s", want)
		}
	}
	b.Reset()
	if err := Write(&b, Input{Report: report()}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), `data-metric="loss"`) {
		t.Error("a loss chart without losses")
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
	out := b.String()
	for _, want := range []string{`data-metric="activity"`, "ndcg@10 by the test users", "0-4 items", "5-19 items", "70 users"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if got := strings.Count(out, `<g class="series"`); got != len(r.Models) {
		t.Errorf("%d activity series, want %d", got, len(r.Models))
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
	out := b.String()
	for _, want := range []string{`data-metric="popularity"`, "popularity of the recommended items @10", "mean percentile: 0.600"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	b.Reset()
	if err := Write(&b, Input{Report: report()}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), `data-metric="popularity"`) {
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
	out := b.String()
	for _, want := range []string{`data-metric="scores"`, "score distribution of als's top-10 items", "4 scores (50.0%)"} {
		if !strings.Contains(out, html.EscapeString(want)) && !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
