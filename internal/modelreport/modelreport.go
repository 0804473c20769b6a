// Package modelreport renders an evaluation report (eval.Report: the model
// and the baselines on one split) as one self-contained HTML file: a chart of
// each metric against the cut-off K with one line per model, a bar chart of
// catalog coverage, the first model's score distribution, the popularity
// bias of each model's lists, NDCG by the
// test users' history size, the training loss per iteration of every fit,
// the numbers as a table, and the gate's decision. Charts
// are inline SVG drawn here (no script, no external file, nothing fetched),
// so the file opens anywhere and can be stored beside the model.
package modelreport

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/recsys-dev/recsys/internal/eval"
)

// Input is what a report shows.
type Input struct {
	Title  string
	Report *eval.Report
	// Gate is the quality gate's decision in words; empty: not shown.
	Gate string
	// Resources says what the run used (peak memory, search time); empty:
	// not shown.
	Resources string
	// Loss is the training loss per iteration of each fit (a chart with a
	// line per fit); none: no chart.
	Loss []LossSeries
}

// LossSeries is one fit's training loss, per iteration.
type LossSeries struct {
	Name   string
	Values []float64
}

// chart geometry (SVG user units).
const (
	width, height = 520, 300
	left, right   = 56, 130
	top, bottom   = 20, 40
)

// palette gives each model a colour, in Report.Models order.
var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}

// Chart is one rendered SVG chart.
type Chart struct {
	Title string
	SVG   template.HTML
}

// Write renders in as HTML to w.
func Write(w io.Writer, in Input) error {
	if in.Report == nil || len(in.Report.Models) == 0 {
		return fmt.Errorf("model report: no evaluation results")
	}
	if in.Title == "" {
		in.Title = "Model evaluation"
	}
	byMetric := map[string]map[int]bool{} // metric -> cut-offs
	for _, m := range in.Report.Models {
		for key := range m.Metrics {
			name, k, err := eval.ParseKey(key)
			if err != nil {
				continue
			}
			if byMetric[name] == nil {
				byMetric[name] = map[int]bool{}
			}
			byMetric[name][k] = true
		}
	}
	var charts []Chart
	for _, name := range []string{eval.MetricNDCG, eval.MetricRecall, eval.MetricHR, eval.MetricMAP, eval.MetricRecallCapped} {
		ks := sortedKeys(byMetric[name])
		if len(ks) == 0 {
			continue
		}
		charts = append(charts, Chart{Title: name + "@K", SVG: lineChart(in.Report, name, ks)})
	}
	if ks := sortedKeys(byMetric[eval.MetricCoverage]); len(ks) > 0 {
		k := ks[len(ks)-1]
		charts = append(charts, Chart{Title: fmt.Sprintf("catalog coverage@%d", k), SVG: barChart(in.Report, eval.Key(eval.MetricCoverage, k))})
	}
	if svg, title, ok := scoreChart(in.Report); ok {
		charts = append(charts, Chart{Title: title, SVG: svg})
	}
	if svg, title, ok := popularityChart(in.Report); ok {
		charts = append(charts, Chart{Title: title, SVG: svg})
	}
	if svg, title, ok := activityChart(in.Report); ok {
		charts = append(charts, Chart{Title: title, SVG: svg})
	}
	if svg, ok := lossChart(in.Loss); ok {
		charts = append(charts, Chart{Title: "training loss per iteration", SVG: svg})
	}
	var table strings.Builder
	if err := in.Report.WriteTable(&table); err != nil {
		return err
	}
	return page.Execute(w, struct {
		Input
		Charts []Chart
		Table  string
	}{in, charts, table.String()})
}

func sortedKeys(m map[int]bool) []int {
	var ks []int
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// lineChart draws metric against K, one polyline per model.
func lineChart(r *eval.Report, metric string, ks []int) template.HTML {
	maxV := 0.0
	for _, m := range r.Models {
		for _, k := range ks {
			maxV = math.Max(maxV, m.Metrics[eval.Key(metric, k)])
		}
	}
	maxV = niceCeil(maxV)
	pw, ph := float64(width-left-right), float64(height-top-bottom)
	x := func(i int) float64 {
		if len(ks) == 1 {
			return left + pw/2
		}
		return left + pw*float64(i)/float64(len(ks)-1)
	}
	y := func(v float64) float64 { return top + ph*(1-v/maxV) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="plot" data-metric="%s" width="%d" height="%d" viewBox="0 0 %d %d">`,
		metric, width, height, width, height)
	axes(&b, maxV)
	for i, k := range ks {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" font-size="11">%d</text>`, x(i), height-bottom+16, k)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" font-size="11">K</text>`, left+pw/2, height-6)
	for mi, m := range r.Models {
		color := palette[mi%len(palette)]
		var pts []string
		for i, k := range ks {
			v, ok := m.Metrics[eval.Key(metric, k)]
			if !ok || math.IsNaN(v) {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(v)))
		}
		if len(pts) == 0 {
			continue
		}
		fmt.Fprintf(&b, `<polyline class="series" data-model="%s" fill="none" stroke="%s" stroke-width="2" points="%s"/>`,
			template.HTMLEscapeString(m.Name), color, strings.Join(pts, " "))
		for _, p := range pts {
			xy := strings.Split(p, ",")
			fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`, xy[0], xy[1], color)
		}
		legend(&b, mi, m.Name, color)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // built from numbers and escaped names only
}

// scoreChart draws the distribution of the top-K scores of the report's
// first model (the candidate the job would publish; baselines score on
// other scales) as a histogram; false when it has none.
func scoreChart(r *eval.Report) (template.HTML, string, bool) {
	m := r.Models[0]
	h := m.Scores
	total, most := 0, 0
	for _, n := range h.Counts {
		total += n
		most = max(most, n)
	}
	if total == 0 {
		return "", "", false
	}
	maxV := niceCeil(float64(most) / float64(total))
	pw, ph := float64(width-left-right), float64(height-top-bottom)
	bw := pw / float64(len(h.Counts))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="plot" data-metric="scores" width="%d" height="%d" viewBox="0 0 %d %d">`,
		width, height, width, height)
	axes(&b, maxV)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-size="11">%.3g</text>`, left, height-bottom+16, h.Min)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-size="11">%.3g</text>`, width-right, height-bottom+16, h.Max)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" font-size="11">score</text>`, left+pw/2, height-6)
	fmt.Fprintf(&b, `<g class="series" data-model="%s">`, template.HTMLEscapeString(m.Name))
	for i, n := range h.Counts {
		share := float64(n) / float64(total)
		hh := ph * share / maxV
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%d scores (%.1f%%)</title></rect>`,
			left+bw*float64(i)+1, top+ph-hh, bw-2, hh, palette[0], n, 100*share)
	}
	b.WriteString(`</g>`)
	legend(&b, 0, m.Name, palette[0])
	b.WriteString(`</svg>`)
	return template.HTML(b.String()), fmt.Sprintf("score distribution of %s's top-%d items (share of scores)", m.Name, h.K), true
}

// popularityChart draws each model's popularity bias: the mean popularity
// percentile of the items it lists (0.5: as the catalog; popularity is
// near 1) and the share of them among the 10% most popular; false when
// no model has it.
func popularityChart(r *eval.Report) (template.HTML, string, bool) {
	k := 0
	for _, m := range r.Models {
		k = max(k, m.Popularity.K)
	}
	if k == 0 {
		return "", "", false
	}
	labels := []string{"mean percentile", "top-10% share"}
	pw, ph := float64(width-left-right), float64(height-top-bottom)
	group := pw / float64(len(labels))
	bar := group * 0.8 / float64(len(r.Models))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="plot" data-metric="popularity" width="%d" height="%d" viewBox="0 0 %d %d">`,
		width, height, width, height)
	axes(&b, 1)
	for gi, l := range labels {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" font-size="11">%s</text>`,
			left+group*(float64(gi)+0.5), height-bottom+16, l)
	}
	for mi, m := range r.Models {
		color := palette[mi%len(palette)]
		fmt.Fprintf(&b, `<g class="series" data-model="%s">`, template.HTMLEscapeString(m.Name))
		for gi, v := range []float64{m.Popularity.MeanPercentile, m.Popularity.TopDecileShare} {
			h := ph * v
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %.3f</title></rect>`,
				left+group*float64(gi)+group*0.1+bar*float64(mi), top+ph-h, bar, h, color, labels[gi], v)
		}
		b.WriteString(`</g>`)
		legend(&b, mi, m.Name, color)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()), fmt.Sprintf("popularity of the recommended items @%d (0.5: as the catalog)", k), true
}

// activityChart draws NDCG@K by the test users' history size: a group of
// bars per bucket, a bar per model; false when no model has buckets.
func activityChart(r *eval.Report) (template.HTML, string, bool) {
	var labels []string
	k := 0
	maxV := 0.0
	for _, m := range r.Models {
		for _, b := range m.Activity {
			if !slices.Contains(labels, b.Label) {
				labels = append(labels, b.Label)
			}
			k = b.K
			maxV = math.Max(maxV, b.NDCG)
		}
	}
	if len(labels) == 0 {
		return "", "", false
	}
	maxV = niceCeil(maxV)
	pw, ph := float64(width-left-right), float64(height-top-bottom)
	group := pw / float64(len(labels))
	bar := group * 0.8 / float64(len(r.Models))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="plot" data-metric="activity" width="%d" height="%d" viewBox="0 0 %d %d">`,
		width, height, width, height)
	axes(&b, maxV)
	for gi, l := range labels {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" font-size="11">%s</text>`,
			left+group*(float64(gi)+0.5), height-bottom+16, template.HTMLEscapeString(l))
	}
	for mi, m := range r.Models {
		color := palette[mi%len(palette)]
		fmt.Fprintf(&b, `<g class="series" data-model="%s">`, template.HTMLEscapeString(m.Name))
		for _, bk := range m.Activity {
			gi := slices.Index(labels, bk.Label)
			h := ph * bk.NDCG / maxV
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %d users, ndcg@%d %.4f</title></rect>`,
				left+group*float64(gi)+group*0.1+bar*float64(mi), top+ph-h, bar, h, color,
				template.HTMLEscapeString(bk.Label), bk.Users, bk.K, bk.NDCG)
		}
		b.WriteString(`</g>`)
		legend(&b, mi, m.Name, color)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()), fmt.Sprintf("ndcg@%d by the test users' history size", k), true
}

// lossChart draws each fit's loss against the iteration, one polyline per
// fit; false when there is no finite loss.
func lossChart(fits []LossSeries) (template.HTML, bool) {
	maxV, iters := 0.0, 0
	for _, f := range fits {
		iters = max(iters, len(f.Values))
		for _, v := range f.Values {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				maxV = math.Max(maxV, v)
			}
		}
	}
	if maxV <= 0 || iters == 0 {
		return "", false
	}
	maxV = niceCeil(maxV)
	pw, ph := float64(width-left-right), float64(height-top-bottom)
	x := func(i int) float64 { // i is 0-based; iterations count from 1
		if iters == 1 {
			return left + pw/2
		}
		return left + pw*float64(i)/float64(iters-1)
	}
	y := func(v float64) float64 { return top + ph*(1-v/maxV) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="plot" data-metric="loss" width="%d" height="%d" viewBox="0 0 %d %d">`,
		width, height, width, height)
	axes(&b, maxV)
	for _, i := range []int{0, iters - 1} {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" font-size="11">%d</text>`, x(i), height-bottom+16, i+1)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" font-size="11">iteration</text>`, left+pw/2, height-6)
	for fi, f := range fits {
		color := palette[fi%len(palette)]
		var pts []string
		for i, v := range f.Values {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(v)))
		}
		if len(pts) == 0 {
			continue
		}
		fmt.Fprintf(&b, `<polyline class="series" data-model="%s" fill="none" stroke="%s" stroke-width="2" points="%s"/>`,
			template.HTMLEscapeString(f.Name), color, strings.Join(pts, " "))
		legend(&b, fi, f.Name, color)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()), true
}

// barChart draws one value per model.
func barChart(r *eval.Report, key string) template.HTML {
	maxV := 0.0
	for _, m := range r.Models {
		maxV = math.Max(maxV, m.Metrics[key])
	}
	maxV = niceCeil(maxV)
	pw, ph := float64(width-left-right), float64(height-top-bottom)
	slot := pw / float64(len(r.Models))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="plot" data-metric="%s" width="%d" height="%d" viewBox="0 0 %d %d">`,
		template.HTMLEscapeString(key), width, height, width, height)
	axes(&b, maxV)
	for mi, m := range r.Models {
		color := palette[mi%len(palette)]
		v := m.Metrics[key]
		h := ph * v / maxV
		fmt.Fprintf(&b, `<rect class="series" data-model="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`,
			template.HTMLEscapeString(m.Name), left+slot*float64(mi)+slot*0.15, top+ph-h, slot*0.7, h, color)
		legend(&b, mi, m.Name, color)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func axes(b *strings.Builder, maxV float64) {
	ph := float64(height - top - bottom)
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`, left, top, left, height-bottom)
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`, left, height-bottom, width-right, height-bottom)
	for i := 0; i <= 4; i++ {
		v := maxV * float64(i) / 4
		yy := top + ph*(1-float64(i)/4)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`, left, yy, width-right, yy)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" font-size="11">%.3g</text>`, left-4, yy+4, v)
	}
}

func legend(b *strings.Builder, i int, name, color string) {
	yy := top + 14*i
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d" font-size="11">%s</text>`,
		width-right+10, yy, color, width-right+24, yy+9, template.HTMLEscapeString(name))
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (1 for v <= 0).
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

var page = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:1100px}figure{display:inline-block;margin:0 1em 1em 0}
figcaption{font-weight:bold}pre{background:#f6f6f6;padding:1em}</style></head>
<body><h1>{{.Title}}</h1>
<p>Split: {{.Report.Split}}, {{.Report.Cases}} test users. Every model, baselines included, is evaluated on the same split.</p>
{{if .Gate}}<p class="gate"><b>Quality gate:</b> {{.Gate}}</p>{{end}}
{{if .Resources}}<p class="resources"><b>Resources:</b> {{.Resources}}</p>{{end}}
{{range .Charts}}<figure><figcaption>{{.Title}}</figcaption>{{.SVG}}</figure>
{{end}}<h2>All numbers</h2><pre>{{.Table}}</pre>
</body></html>
`))
