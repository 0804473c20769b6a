package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/recsys-dev/recsys/internal/redistest"
)

// A tiny run of the whole benchmark (without ghz, which would be built):
// model of 2000 items served whole, events imported, every open-loop phase
// answered without errors, the table and the JSON written.
func TestSmallRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a recsysd and drives it for a few seconds")
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{
		"--redis-addr", redistest.Addr(), "--items", "2000", "--users", "300", "--events-per-user", "10",
		"--duration", "500ms", "--warmup", "100ms", "--rates", "100", "--push-streams", "1", "--push-users", "100",
		"--push-rate", "50", "--similar-rate", "50", "--ghz", "", "--out", out,
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(filepath.Join(out, "serve.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res Result
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.ModelItems != 2000 || res.Events != 3000 {
		t.Errorf("got a model of %d items and %d events, want 2000 and 3000", res.ModelItems, res.Events)
	}
	wantPhases := []string{"Recommend open loop", "Recommend alone", "Recommend with 1 BatchRecommend streams", "SimilarItems open loop"}
	if len(res.Rows) != len(wantPhases) {
		t.Fatalf("got %d phases, want %d: %+v", len(res.Rows), len(wantPhases), res.Rows)
	}
	for i, r := range res.Rows {
		if r.Phase != wantPhases[i] || r.Errors != 0 || r.Rate <= 0 {
			t.Errorf("phase %d: got %+v, want %q answered without errors", i, r, wantPhases[i])
		}
	}
	if !strings.Contains(stdout.String(), "| SimilarItems open loop | loadgen |") {
		t.Errorf("the table lacks the SimilarItems row:\n%s", stdout.String())
	}
}
