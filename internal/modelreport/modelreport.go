// Package modelreport renders an evaluation report (eval.Report: the model
// and the baselines on one split) as one self-contained HTML file: a chart of
// each metric against the cut-off K with one line per model, a bar chart of
// catalog coverage, the first model's score distribution, the popularity
// bias of each model's lists, NDCG by the
// test users' history size, the training loss per iteration of every fit,
// the numbers as a table, and the gate's decision. Charts
// are drawn with gonum/plot and inlined as SVG (no script, no external file,
// no embedded font, nothing fetched), so the file opens anywhere and can be
// stored beside the model.
package modelreport

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

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

// Chart is one rendered SVG chart and the numbers it draws (a header row,
// then a row per series or bucket), shown as a table under it.
type Chart struct {
	Title string
	SVG   template.HTML
	Data  [][]string
}

// figure is a chart before rendering.
type figure struct {
	metric, title string
	p             *plot.Plot
	data          [][]string
}

// Write renders in as HTML to w.
func Write(w io.Writer, in Input) error {
	if in.Report == nil || len(in.Report.Models) == 0 {
		return fmt.Errorf("model report: no evaluation results")
	}
	if in.Title == "" {
		in.Title = "Model evaluation"
	}
	charts, err := charts(in)
	if err != nil {
		return fmt.Errorf("model report: %w", err)
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

// charts draws every chart the report has data for.
func charts(in Input) ([]Chart, error) {
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
	var figs []func() (*figure, error)
	for _, name := range []string{eval.MetricNDCG, eval.MetricRecall, eval.MetricHR, eval.MetricMAP, eval.MetricRecallCapped} {
		if ks := sortedKeys(byMetric[name]); len(ks) > 0 {
			figs = append(figs, func() (*figure, error) { return metricChart(in.Report, name, ks) })
		}
	}
	if ks := sortedKeys(byMetric[eval.MetricCoverage]); len(ks) > 0 {
		figs = append(figs, func() (*figure, error) { return coverageChart(in.Report, eval.Key(eval.MetricCoverage, ks[len(ks)-1])) })
	}
	for _, c := range []func(*eval.Report) (*figure, error){scoreChart, popularityChart, activityChart} {
		figs = append(figs, func() (*figure, error) { return c(in.Report) })
	}
	figs = append(figs, func() (*figure, error) { return lossChart(in.Loss) })
	var out []Chart
	for _, f := range figs {
		fig, err := f()
		if err != nil || fig == nil {
			if err != nil {
				return nil, err
			}
			continue
		}
		svg, err := render(fig.p, fig.metric)
		if err != nil {
			return nil, fmt.Errorf("%s chart: %w", fig.metric, err)
		}
		out = append(out, Chart{Title: fig.title, SVG: svg, Data: fig.data})
	}
	return out, nil
}

// num formats a chart's value for its table.
func num(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }

func sortedKeys(m map[int]bool) []int {
	var ks []int
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// chart size.
const width, height = 7 * vg.Inch, 4 * vg.Inch

// palette gives each model a colour, in Report.Models order.
var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xd6, 0x27, 0x28, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0xff, 0x7f, 0x0e, 0xff},
	{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0xe3, 0x77, 0xc2, 0xff}, {0x7f, 0x7f, 0x7f, 0xff},
}

func colorOf(i int) color.Color { return palette[i%len(palette)] }

// newPlot is a plot with the report's common look: labelled axes, a
// y axis from 0, the legend outside the data at the top right.
func newPlot(x, y string) *plot.Plot {
	p := plot.New()
	p.X.Label.Text, p.Y.Label.Text = x, y
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = false
	return p
}

// render draws p as an inline SVG element that names its chart by
// data-metric: gonum/plot's SVG without the XML prolog, which HTML does not
// take inside a page. The y axis gets headroom for the legend, and the
// canvas a right margin: the browser's fallback font may be wider than the
// one gonum/plot measured the last tick label with.
func render(p *plot.Plot, metric string) (template.HTML, error) {
	p.Y.Max *= 1.35
	c := vgsvg.New(width, height)
	p.Draw(draw.Crop(draw.New(c), 0, -vg.Points(14), 0, 0))
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return "", err
	}
	s := b.String()
	i := strings.Index(s, "<svg")
	if i < 0 {
		return "", fmt.Errorf("gonum/plot wrote no <svg> element")
	}
	s = `<svg class="plot" data-metric="` + template.HTMLEscapeString(metric) + `"` + s[i+len("<svg"):]
	return template.HTML(s), nil // gonum/plot escapes every text it draws
}

// metricChart draws metric against K, a line with points per model.
func metricChart(r *eval.Report, metric string, ks []int) (*figure, error) {
	f := &figure{metric: metric, title: metric + "@K", p: newPlot("K", metric), data: [][]string{{"model"}}}
	ticks := make([]plot.Tick, len(ks))
	for i, k := range ks {
		ticks[i] = plot.Tick{Value: float64(k), Label: strconv.Itoa(k)}
		f.data[0] = append(f.data[0], eval.Key(metric, k))
	}
	f.p.X.Tick.Marker = plot.ConstantTicks(ticks)
	f.p.Legend.Left = true // metrics grow with K: the top left is free
	for mi, m := range r.Models {
		var xys plotter.XYs
		row := []string{m.Name}
		for _, k := range ks {
			v, ok := m.Metrics[eval.Key(metric, k)]
			if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
				row = append(row, "")
				continue
			}
			xys = append(xys, plotter.XY{X: float64(k), Y: v})
			row = append(row, num(v))
		}
		f.data = append(f.data, row)
		if err := addLine(f.p, mi, m.Name, xys); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// addLine adds a line with points in model mi's colour and its legend
// entry; nothing without points.
func addLine(p *plot.Plot, mi int, name string, xys plotter.XYs) error {
	if len(xys) == 0 {
		return nil
	}
	l, s, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	l.Color, l.Width = colorOf(mi), vg.Points(2)
	s.Color, s.Shape = colorOf(mi), draw.CircleGlyph{}
	p.Add(l, s)
	p.Legend.Add(name, l, s)
	return nil
}

// bars draws grouped bars: a group per label, a bar per series.
func bars(p *plot.Plot, labels []string, names []string, values [][]float64) error {
	w := vg.Points(math.Max(4, math.Min(40, 300/float64(len(labels)*len(names)))))
	for si, name := range names {
		b, err := plotter.NewBarChart(plotter.Values(values[si]), w)
		if err != nil {
			return err
		}
		b.Color, b.LineStyle.Width = colorOf(si), 0
		b.Offset = w * vg.Length(float64(si)-float64(len(names)-1)/2)
		p.Add(b)
		p.Legend.Add(name, b)
	}
	p.NominalX(labels...)
	return nil
}

// coverageChart draws each model's catalog coverage as a bar.
func coverageChart(r *eval.Report, key string) (*figure, error) {
	f := &figure{metric: key, title: "catalog " + key, p: newPlot("", key), data: [][]string{{"model", key}}}
	names, values := make([]string, len(r.Models)), make([][]float64, len(r.Models))
	for i, m := range r.Models {
		names[i], values[i] = m.Name, []float64{m.Metrics[key]}
		f.data = append(f.data, []string{m.Name, num(m.Metrics[key])})
	}
	return f, bars(f.p, []string{key}, names, values)
}

// scoreChart draws the distribution of the top-K scores of the report's
// first model (the candidate the job would publish; baselines score on
// other scales) as a histogram of shares; nil when it has none.
func scoreChart(r *eval.Report) (*figure, error) {
	m := r.Models[0]
	h := m.Scores
	total := 0
	for _, n := range h.Counts {
		total += n
	}
	if total == 0 {
		return nil, nil
	}
	width := (h.Max - h.Min) / float64(len(h.Counts))
	if !(width > 0) {
		width = 1
	}
	f := &figure{metric: "scores", p: newPlot("score", "share of scores"), data: [][]string{{"scores from", "to", "count", "share"}},
		title: fmt.Sprintf("score distribution of %s's top-%d items (share of scores)", m.Name, h.K)}
	hist := &plotter.Histogram{Width: width, FillColor: colorOf(0)}
	for i, n := range h.Counts {
		lo := h.Min + width*float64(i)
		share := float64(n) / float64(total)
		hist.Bins = append(hist.Bins, plotter.HistogramBin{Min: lo, Max: lo + width, Weight: share})
		f.data = append(f.data, []string{num(lo), num(lo + width), strconv.Itoa(n), fmt.Sprintf("%.1f%%", 100*share)})
	}
	f.p.Add(hist)
	f.p.Legend.Add(m.Name, hist)
	return f, nil
}

// popularityChart draws each model's popularity bias: the mean popularity
// percentile of the items it lists (0.5: as the catalog; popularity is
// near 1) and the share of them among the 10% most popular; nil when no
// model has it.
func popularityChart(r *eval.Report) (*figure, error) {
	k := 0
	for _, m := range r.Models {
		k = max(k, m.Popularity.K)
	}
	if k == 0 {
		return nil, nil
	}
	labels := []string{"mean percentile", "top-10% share"}
	f := &figure{metric: "popularity", p: newPlot("", "share"), data: [][]string{append([]string{"model"}, labels...)},
		title: fmt.Sprintf("popularity of the recommended items @%d (0.5: as the catalog)", k)}
	names, values := make([]string, len(r.Models)), make([][]float64, len(r.Models))
	for i, m := range r.Models {
		names[i], values[i] = m.Name, []float64{m.Popularity.MeanPercentile, m.Popularity.TopDecileShare}
		f.data = append(f.data, []string{m.Name, num(values[i][0]), num(values[i][1])})
	}
	return f, bars(f.p, labels, names, values)
}

// activityChart draws NDCG@K by the test users' history size: a group of
// bars per bucket, a bar per model; nil when no model has buckets.
func activityChart(r *eval.Report) (*figure, error) {
	var labels []string
	k := 0
	for _, m := range r.Models {
		for _, b := range m.Activity {
			if !slices.Contains(labels, b.Label) {
				labels = append(labels, b.Label)
			}
			k = b.K
		}
	}
	if len(labels) == 0 {
		return nil, nil
	}
	f := &figure{metric: "activity", p: newPlot("items in the user's history (users)", fmt.Sprintf("ndcg@%d", k)),
		title: fmt.Sprintf("ndcg@%d by the test users' history size", k), data: [][]string{{"model"}}}
	names, values := make([]string, len(r.Models)), make([][]float64, len(r.Models))
	users := make([]int, len(labels))
	for i, m := range r.Models {
		names[i], values[i] = m.Name, make([]float64, len(labels))
		for _, b := range m.Activity {
			gi := slices.Index(labels, b.Label)
			values[i][gi] = b.NDCG
			users[gi] = max(users[gi], b.Users)
		}
	}
	shown := make([]string, len(labels))
	for i, l := range labels {
		shown[i] = fmt.Sprintf("%s (%d)", l, users[i])
		f.data[0] = append(f.data[0], fmt.Sprintf("%s, %d users", l, users[i]))
	}
	for i, name := range names {
		row := []string{name}
		for _, v := range values[i] {
			row = append(row, num(v))
		}
		f.data = append(f.data, row)
	}
	return f, bars(f.p, shown, names, values)
}

// lossChart draws each fit's loss against the iteration (from 1), a line
// per fit; nil when there is no finite loss.
func lossChart(fits []LossSeries) (*figure, error) {
	f := &figure{metric: "loss", title: "training loss per iteration", p: newPlot("iteration", "loss"),
		data: [][]string{{"fit", "iterations", "first loss", "last loss"}}}
	for fi, s := range fits {
		var xys plotter.XYs
		for i, v := range s.Values {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				xys = append(xys, plotter.XY{X: float64(i + 1), Y: v})
			}
		}
		if len(xys) == 0 {
			continue
		}
		f.data = append(f.data, []string{s.Name, strconv.Itoa(len(s.Values)), num(xys[0].Y), num(xys[len(xys)-1].Y)})
		if err := addLine(f.p, fi, s.Name, xys); err != nil {
			return nil, err
		}
	}
	if len(f.data) == 1 {
		return nil, nil
	}
	return f, nil
}

var page = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:1100px}figure{display:inline-block;margin:0 1em 1em 0}
figcaption{font-weight:bold}pre{background:#f6f6f6;padding:1em}
table.data{border-collapse:collapse;font-size:small}table.data td,table.data th{border:1px solid #ccc;padding:2px 6px;text-align:right}</style></head>
<body><h1>{{.Title}}</h1>
<p>Split: {{.Report.Split}}, {{.Report.Cases}} test users. Every model, baselines included, is evaluated on the same split.</p>
{{if .Gate}}<p class="gate"><b>Quality gate:</b> {{.Gate}}</p>{{end}}
{{if .Resources}}<p class="resources"><b>Resources:</b> {{.Resources}}</p>{{end}}
{{range .Charts}}<figure><figcaption>{{.Title}}</figcaption>{{.SVG}}
{{with .Data}}<details><summary>numbers</summary><table class="data">{{range $i, $row := .}}<tr>{{range $row}}{{if eq $i 0}}<th>{{.}}</th>{{else}}<td>{{.}}</td>{{end}}{{end}}</tr>{{end}}</table></details>{{end}}</figure>
{{end}}<h2>All numbers</h2><pre>{{.Table}}</pre>
</body></html>
`))
