package main

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/recsys-dev/recsys/internal/redistest"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// A small run of the whole benchmark (without ghz, which would be built):
// a model of 10,000 items served whole through the forced index, events
// imported, push alone and under Recommend, every phase answered without
// errors (the swap phase too) and its degraded answers counted, the table
// and the JSON written. A few seconds.
func TestSmallRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a recsysd and drives it for a few seconds")
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{
		"--redis-addr", redistest.Addr(), "--items", "10000", "--users", "300", "--events-per-user", "10",
		"--duration", "500ms", "--warmup", "100ms", "--rates", "100", "--push-streams", "1", "--push-users", "100",
		"--push-rate", "50", "--similar-rate", "50", "--ghz", "", "--out", out, "--swaps", "2", "--index-min-items", "0",
		// A loaded test machine may answer a few calls degraded; that
		// the run counts them is what is tested here.
		"--max-degraded-share", "1",
	}, os.Getenv, &stdout, &stderr)
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
	if res.ModelItems != 10000 || res.Events != 3000 {
		t.Errorf("got a model of %d items and %d events, want 10000 and 3000", res.ModelItems, res.Events)
	}
	wantPhases := []string{"Recommend open loop", "BatchRecommend alone, 1 streams", "Recommend alone", "Recommend with 1 BatchRecommend streams",
		"SimilarItems open loop", "Recommend during 2 model swaps"}
	if len(res.Rows) != len(wantPhases) {
		t.Fatalf("got %d phases, want %d: %+v", len(res.Rows), len(wantPhases), res.Rows)
	}
	for i, r := range res.Rows {
		if r.Phase != wantPhases[i] || r.Errors != 0 || r.Rate <= 0 || r.OK <= 0 {
			t.Errorf("phase %d: got %+v, want %q answered without errors", i, r, wantPhases[i])
		}
		if r.Degraded < 0 || r.Degraded > r.OK || r.DegradedShare != float64(r.Degraded)/float64(r.OK) || r.Flagged {
			t.Errorf("phase %d: %d degraded of %d OK, share %v, flagged %v", i, r.Degraded, r.OK, r.DegradedShare, r.Flagged)
		}
	}
	if solo, with := res.Rows[1], res.Rows[3]; solo.PushUsers <= 0 || with.PushUsers <= 0 || !strings.Contains(with.Note, "% of solo") {
		t.Errorf("push users/s alone %v, with Recommend %v (%q)", solo.PushUsers, with.PushUsers, with.Note)
	}
	// Every swap was served; no call failed (checked above).
	if swaps := res.Rows[5]; swaps.Swaps != 2 {
		t.Errorf("swap phase: %d of 2 swaps done: %+v", swaps.Swaps, swaps)
	}
	if !strings.Contains(stdout.String(), "| SimilarItems open loop | loadgen |") || !strings.Contains(stdout.String(), "| degraded |") {
		t.Errorf("the table lacks the SimilarItems row:\n%s", stdout.String())
	}
}

func TestParseDegraded(t *testing.T) {
	text := `# HELP recsys_degraded_answers_total Answers given without the profile store.
# TYPE recsys_degraded_answers_total counter
recsys_degraded_answers_total{cause="profile_budget",method="Recommend"} 12
recsys_degraded_answers_total{cause="unavailable",method="Recommend"} 3
recsys_degraded_answers_total{cause="unavailable",method="RankItems"} 1
recsys_answers_total{method="Recommend",source="popular"} 99
`
	got, err := parseDegraded(text)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int64{"profile_budget": 12, "unavailable": 4}; !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := parseDegraded(`recsys_degraded_answers_total{cause="x"} many`); err == nil {
		t.Error("a sample that is not a number parsed")
	}
}

func TestFlag(t *testing.T) {
	tests := []struct {
		name         string
		ok, degraded int64
		wantShare    float64
		wantFlag     bool
	}{
		{"none", 1000, 0, 0, false},
		{"at the limit", 1000, 10, 0.01, false},
		{"above", 1000, 11, 0.011, true},
		{"no answers", 0, 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Row{Phase: "p", OK: tc.ok, Degraded: tc.degraded}
			r.flag(0.01)
			if r.DegradedShare != tc.wantShare || r.Flagged != tc.wantFlag || strings.Contains(r.Note, "DEGRADED") != tc.wantFlag {
				t.Errorf("got share %v flagged %v note %q, want %v %v", r.DegradedShare, r.Flagged, r.Note, tc.wantShare, tc.wantFlag)
			}
			if got := len(Result{Rows: []Row{r}}.flagged()); got != map[bool]int{false: 0, true: 1}[tc.wantFlag] {
				t.Errorf("flagged lists %d phases", got)
			}
		})
	}
}

// flakyEvents fails RecordEvents with the codes in fail, then answers.
type flakyEvents struct {
	recsysv1.EventServiceClient
	fail  []codes.Code
	calls int
}

func (f *flakyEvents) RecordEvents(context.Context, *recsysv1.RecordEventsRequest, ...grpc.CallOption) (*recsysv1.RecordEventsResponse, error) {
	f.calls++
	if len(f.fail) > 0 {
		c := f.fail[0]
		f.fail = f.fail[1:]
		return nil, status.Error(c, "injected")
	}
	return &recsysv1.RecordEventsResponse{}, nil
}

func TestRecordWithRetry(t *testing.T) {
	tests := []struct {
		name      string
		fail      []codes.Code
		wantErr   bool
		wantCalls int
	}{
		{"answers", nil, false, 1},
		{"transient failures are retried", []codes.Code{codes.Unavailable, codes.DeadlineExceeded}, false, 3},
		{"a bad request is not", []codes.Code{codes.InvalidArgument}, true, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &flakyEvents{fail: tc.fail}
			err := recordWithRetry(t.Context(), f, &recsysv1.RecordEventsRequest{})
			if (err != nil) != tc.wantErr || f.calls != tc.wantCalls {
				t.Errorf("got %v after %d calls, want error %v after %d", err, f.calls, tc.wantErr, tc.wantCalls)
			}
		})
	}
}
