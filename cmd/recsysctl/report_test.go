package main

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/recsys-dev/recsys/internal/cli"
	"github.com/recsys-dev/recsys/internal/daemon"
	"github.com/recsys-dev/recsys/internal/eval"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/modelreport"
	"github.com/recsys-dev/recsys/internal/redistest"
	"github.com/recsys-dev/recsys/internal/registry"
)

// reportFixture publishes two versions to a running recsysd's registry, the
// first with a report (as recsys-train stores it), the second without; it
// returns the address, the versions and the stored report.
func reportFixture(t *testing.T) (addr, withReport, without string, stored []byte) {
	t.Helper()
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	d, err := daemon.New(daemon.Config{GRPCAddr: "127.0.0.1:0", RedisAddr: redistest.Addr(), Prefix: prefix,
		InsecureNoAuth: true, ModelPoll: 50 * time.Millisecond}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	reg, err := registry.NewRedis(rdb, registry.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	publish := func(shift float32) string {
		const n, f = 20, 4
		ids := make([]string, n)
		factors := make([]float32, n*f)
		for i := range ids {
			ids[i] = "i" + strconv.Itoa(i)
			for k := range f {
				factors[i*f+k] = float32((i*5+k*3)%7)/7 + shift
			}
		}
		m, err := mf.New(mf.Info{Hyper: mf.Hyperparameters{Factors: f, Regularization: 0.1, Alpha: 5}}, ids, factors)
		if err != nil {
			t.Fatal(err)
		}
		v, err := reg.Publish(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		return v.Name()
	}
	withReport = publish(0)
	var b bytes.Buffer
	if err := modelreport.Write(&b, modelreport.Input{Title: "recsys evaluation: time", Gate: "passed: ndcg@10 0.26 >= popularity 0.10",
		Report: &eval.Report{Split: "time", Cases: 120, Models: []eval.ModelResult{
			{Name: "als", Metrics: map[string]float64{"ndcg@10": 0.26, "ndcg@20": 0.3, "recall@10": 0.42, "recall@20": 0.5, "coverage@10": 0.6}},
			{Name: "popularity", Metrics: map[string]float64{"ndcg@10": 0.1, "ndcg@20": 0.12, "recall@10": 0.2, "recall@20": 0.26, "coverage@10": 0.02}},
		}}}); err != nil {
		t.Fatal(err)
	}
	if err := reg.PutReport(context.Background(), withReport, b.Bytes()); err != nil {
		t.Fatal(err)
	}
	without = publish(0.5)
	addr = d.Addr().String()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(recsysctl(nil, "model", "get", "--addr", addr).stdout, without) {
		if time.Now().After(deadline) {
			t.Fatalf("recsysd does not serve %s", without)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
	return addr, withReport, without, b.Bytes()
}

// `model report` writes the stored report to -o or stdout; a version
// without a report, or an unknown one, is an error that says so.
func TestModelReport(t *testing.T) {
	addr, withReport, without, stored := reportFixture(t)
	out := filepath.Join(t.TempDir(), "report.html")
	r := recsysctl(nil, "model", "report", withReport, "-o", out, "--addr", addr)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, stored) {
		t.Fatalf("-o file: %d bytes, %v; want the stored report (%d bytes)", len(got), err, len(stored))
	}
	if r := recsysctl(nil, "--addr", addr, "model", "report", withReport); r.code != 0 || r.stdout != string(stored) {
		t.Errorf("to stdout: exit %d, %d bytes, stderr %s", r.code, len(r.stdout), r.stderr)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"serving version has none", []string{"model", "report"}, cli.ExitFailure, "no report stored"},
		{"named version has none", []string{"model", "report", without}, cli.ExitFailure, "no report stored"},
		{"unknown version", []string{"model", "report", "v-nope"}, cli.ExitFailure, "unknown model version"},
		{"two versions", []string{"model", "report", withReport, without}, cli.ExitUsage, "at most 1 argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := recsysctl(nil, append(tc.args, "--addr", addr)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tc.code, tc.want)
			}
		})
	}

	t.Run("renders in chromium", func(t *testing.T) { renderInChromium(t, out) })
}

// chromium is the headless browser's path, or "" when none is installed.
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// renderInChromium opens the report in headless Chromium and checks what
// the browser built: the DOM after parsing holds a chart per metric with a
// line per model, and the screenshot is not blank (the charts are drawn).
func renderInChromium(t *testing.T, path string) {
	bin := chromium()
	if bin == "" {
		t.Skip("chromium is not installed (Debian package chromium; .ci/run installs it): the report is not rendered in a browser")
	}
	dir := t.TempDir()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--user-data-dir=" + filepath.Join(dir, "profile"), "--window-size=1200,2400"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := "file://" + path
	dom, err := exec.CommandContext(ctx, bin, append(args, "--dump-dom", url)...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	doc, err := html.Parse(bytes.NewReader(dom))
	if err != nil {
		t.Fatal(err)
	}
	texts := map[string][]string{} // chart (data-metric) -> the texts drawn in it (legend, axes)
	var walk func(n *html.Node, metric string, inText bool)
	walk = func(n *html.Node, metric string, inText bool) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "svg":
				for _, a := range n.Attr {
					if a.Key == "data-metric" {
						metric = a.Val
					}
				}
			case "text":
				inText = true
			}
		}
		if n.Type == html.TextNode && inText && metric != "" {
			texts[metric] = append(texts[metric], n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, metric, inText)
		}
	}
	walk(doc, "", false)
	for _, m := range []string{"ndcg", "recall", "coverage@10"} {
		if got := texts[m]; !slices.Contains(got, "als") || !slices.Contains(got, "popularity") {
			t.Errorf("rendered chart %s lacks a legend entry for als or popularity: %q", m, got)
		}
	}

	shot := filepath.Join(dir, "report.png")
	if err := exec.CommandContext(ctx, bin, append(args, "--screenshot="+shot, url)...).Run(); err != nil {
		t.Fatalf("chromium --screenshot: %v", err)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if colours := distinctColours(img); colours < 8 {
		t.Errorf("the screenshot has %d colours: the charts were not drawn", colours)
	}
}

// distinctColours counts the colours of img (up to 1000).
func distinctColours(img image.Image) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
			if len(seen) >= 1000 {
				return len(seen)
			}
		}
	}
	return len(seen)
}
