package deploy

import (
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/recsys-dev/recsys/internal/daemon"
)

// exportedNames are the metric names recsysd exports (histograms with their
// _bucket, _count and _sum series).
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	// A recsysd as the command builds it (on the embedded store, not
	// serving): its collectors are what /metrics exports.
	d, err := daemon.New(daemon.Config{GRPCAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	cs := d.Collectors()
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	names := map[string]bool{}
	for _, c := range cs {
		ch := make(chan *prometheus.Desc, 64)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			m := fq.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("no name in %v", d)
			}
			for _, suffix := range []string{"", "_bucket", "_count", "_sum"} {
				names[m[1]+suffix] = true
			}
		}
	}
	return names
}

// metricRef finds names of recsysd's metrics in a query.
var metricRef = regexp.MustCompile(`\b(?:recsys|grpc_server)_[a-zA-Z0-9_]+`)

type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("monitoring/dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	if len(d.Panels) == 0 {
		t.Fatal("dashboard.json has no panels")
	}
	return d
}

// Every metric the dashboard, the alert rules and the metric reference name
// is one recsysd exports, and the reference lists every recsys_ metric.
func TestMonitoringNamesExportedMetrics(t *testing.T) {
	names := exportedNames(t)
	check := func(where, text string) {
		t.Helper()
		refs := metricRef.FindAllString(text, -1)
		if len(refs) == 0 {
			t.Errorf("%s names no recsysd metric", where)
		}
		for _, n := range refs {
			if !names[n] {
				t.Errorf("%s uses %s, which recsysd does not export", where, n)
			}
		}
	}
	for _, p := range readDashboard(t).Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			check("dashboard panel "+p.Title, q.Expr)
		}
	}
	rules, err := os.ReadFile("monitoring/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	check("alerts.yaml", string(rules))
	doc, err := os.ReadFile("monitoring/README.md")
	if err != nil {
		t.Fatal(err)
	}
	check("monitoring/README.md", string(doc))
	for n := range names {
		if strings.HasPrefix(n, "recsys_") && !strings.HasSuffix(n, "_bucket") && !strings.HasSuffix(n, "_count") &&
			!strings.HasSuffix(n, "_sum") && !strings.Contains(string(doc), "`"+n+"`") {
			t.Errorf("monitoring/README.md does not document %s", n)
		}
	}
}

// promtool finds promtool (Debian's prometheus package). CI installs it
// (.ci/run); a developer machine without it skips.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is missing (apt-get install prometheus); CI must run the rule tests")
		}
		t.Skip("promtool not installed (apt-get install prometheus)")
	}
	return p
}

// The alert rules are valid and their unit tests pass; every dashboard
// query parses (promtool checks them as recording rules, with Grafana's
// variables replaced).
func TestPromtool(t *testing.T) {
	bin := promtool(t)
	run := func(args ...string) {
		t.Helper()
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("check", "rules", "monitoring/alerts.yaml")
	run("test", "rules", "monitoring/alerts_test.yaml")

	grafana := strings.NewReplacer("$__rate_interval", "5m", "$__range", "1h", "$job", ".*")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for _, p := range readDashboard(t).Panels {
		for _, q := range p.Targets {
			expr, err := json.Marshal(grafana.Replace(q.Expr)) // a JSON string is a YAML string
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString("      - record: dashboard:query\n        expr: " + string(expr) + "\n")
		}
	}
	f := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
	if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run("check", "rules", f)
}

// The optional PrometheusRule component renders on top of the base and
// carries exactly the rules of alerts.yaml.
func TestPrometheusRuleComponent(t *testing.T) {
	// kustomize takes only relative paths: an overlay of the test's own
	// beside the others.
	dir, err := os.MkdirTemp("k8s", ".test-overlay-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	kust := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../base\n" +
		"components:\n  - ../components/prometheus-rule\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kust), 0o644); err != nil {
		t.Fatal(err)
	}
	r := render(t, dir)
	doc, ok := r.docs["PrometheusRule/recsysd"]
	if !ok {
		t.Fatal("no PrometheusRule/recsysd in the rendered output")
	}
	var rule struct {
		Spec struct {
			Groups any `yaml:"groups"`
		} `yaml:"spec"`
	}
	if err := doc.Decode(&rule); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("monitoring/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups any `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rule.Spec.Groups, file.Groups) {
		t.Error("the PrometheusRule's groups differ from monitoring/alerts.yaml: copy them over")
	}
	if _, ok := render(t, "k8s/base").docs["PrometheusRule/recsysd"]; ok {
		t.Error("the base has a PrometheusRule: clusters without the CRD would reject it")
	}
}

// Every label and every label value of the series a fresh recsysd exports
// (the pre-initialised ones, which dashboards and alerts select on) is
// named in its metric's row of the reference.
func TestMonitoringDocumentsLabelValues(t *testing.T) {
	d, err := daemon.New(daemon.Config{GRPCAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	reg := prometheus.NewRegistry()
	reg.MustRegister(d.Collectors()...)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("monitoring/README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{} // metric -> its row's labels column
	for line := range strings.Lines(string(doc)) {
		cols := strings.Split(line, "|")
		if len(cols) > 4 && strings.HasPrefix(strings.TrimSpace(cols[1]), "`recsys_") {
			rows[strings.Trim(strings.TrimSpace(cols[1]), "`")] = cols[3]
		}
	}
	labelled, reported := 0, map[string]bool{}
	for _, f := range families {
		row, ok := rows[f.GetName()]
		if !ok {
			continue // TestMonitoringNamesExportedMetrics reports it
		}
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				labelled++
				if !strings.Contains(row, "`"+lp.GetName()+"`") && !reported[f.GetName()+" "+lp.GetName()] {
					reported[f.GetName()+" "+lp.GetName()] = true
					t.Errorf("%s: label %s is not in its row of monitoring/README.md", f.GetName(), lp.GetName())
				}
				key := f.GetName() + " " + lp.GetName() + "=" + lp.GetValue()
				if !reported[key] && !regexp.MustCompile(`\b`+regexp.QuoteMeta(lp.GetValue())+`\b`).MatchString(row) {
					reported[key] = true
					t.Errorf("%s: %s=%q is exported but not listed in its row of monitoring/README.md",
						f.GetName(), lp.GetName(), lp.GetValue())
				}
			}
		}
	}
	if labelled == 0 {
		t.Fatal("no labelled series found: the reference's rows were not read")
	}
}
