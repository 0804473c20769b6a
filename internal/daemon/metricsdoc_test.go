package daemon_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/recsys-dev/recsys/internal/daemon"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// family is the metric family of a series name: labels and the _bucket,
// _count, _sum series of histograms removed.
func family(series string) string {
	name, _, _ := strings.Cut(series, "{")
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && !strings.HasSuffix(base, "_total") {
			return base
		}
	}
	return name
}

// Every recsys_* and grpc_server_* family a real recsysd exports is listed
// in the metric reference (deploy/monitoring/README.md), which the
// dashboard and alert rules depend on; and the index figures follow the
// serving model.
func TestEveryExportedMetricIsDocumented(t *testing.T) {
	r := start(t, func(c *daemon.Config) { c.IndexMinItems, c.HTTPAddr = -1, "127.0.0.1:0" })
	ctx := context.Background()
	v, err := r.reg.Publish(ctx, model(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the model", func() bool { return r.servingVersion(t) == v.Name() })
	if _, err := r.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "u1", Count: 3}); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "deploy", "monitoring", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, n := range regexp.MustCompile(`\b(?:recsys|grpc_server)_[a-z0-9_]+`).FindAllString(string(doc), -1) {
		documented[n] = true
	}
	got := r.scrape(t)
	seen := map[string]bool{}
	for series := range got {
		f := family(series)
		if !strings.HasPrefix(f, "recsys_") && !strings.HasPrefix(f, "grpc_server_") || seen[f] {
			continue
		}
		seen[f] = true
		if !documented[f] {
			t.Errorf("%s is exported but not listed in deploy/monitoring/README.md", f)
		}
	}
	if len(seen) < 20 {
		t.Fatalf("only %d families scraped", len(seen))
	}
	if got["recsys_index_active"] != 1 || got["recsys_index_partitions"] <= 0 || got["recsys_index_probe"] <= 0 {
		t.Errorf("index figures with the index forced: active %v, partitions %v, probe %v",
			got["recsys_index_active"], got["recsys_index_partitions"], got["recsys_index_probe"])
	}
	for _, how := range []string{"alone", "in_block", "abandoned"} {
		if _, ok := got[`recsys_coalesce_requests_total{how="`+how+`"}`]; !ok {
			t.Errorf("no recsys_coalesce_requests_total series for how=%q", how)
		}
	}
}
