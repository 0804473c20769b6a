package daemon_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/daemon"
	"github.com/recsys-dev/recsys/internal/registry"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// scrape reads /metrics into "name{labels}" -> value ("name" alone for
// series without labels).
func (r *running) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + r.d.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// What an operator's dashboard and alerts read is on /metrics of a real
// recsysd: the series exist before any traffic, then follow events,
// answers, the serving model, the registry's last retraining run and Redis.
func TestMetricsAnOperatorNeeds(t *testing.T) {
	r := start(t)
	ctx := context.Background()
	got := r.scrape(t)
	for _, want := range []string{
		`recsys_rate_limited_total{role="pages"}`,
		`recsys_degraded_answers_total{cause="unavailable",method="Recommend"}`,
		`recsys_answers_total{method="Recommend",source="personalized"}`,
		`recsys_events_total{type="purchase"}`,
		`recsys_model_age_seconds`,
		`recsys_retrain_last_run_timestamp_seconds`,
		`recsys_retrain_last_outcome{outcome="failed"}`,
		`recsys_answer_records_dropped_total{kind="user"}`,
		`recsys_answer_records_dropped_total{kind="item_page"}`,
	} {
		if v, ok := got[want]; !ok || v != 0 {
			t.Errorf("%s = %g (present %v) before any traffic, want 0", want, v, ok)
		}
	}

	var evs []*recsysv1.Event
	for u := 0; u < 10; u++ {
		for k := 0; k < 3; k++ {
			evs = append(evs, &recsysv1.Event{EventId: "e" + strconv.Itoa(u*10+k), UserId: "u" + strconv.Itoa(u),
				ItemId: "i" + strconv.Itoa((u*3+k)%50), Type: recsysv1.EventType_EVENT_TYPE_VIEW})
		}
	}
	evs = append(evs, &recsysv1.Event{EventId: "p1", UserId: "u1", ItemId: "i7", Type: recsysv1.EventType_EVENT_TYPE_PURCHASE, Quantity: 1})
	if _, err := r.events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: evs}); err != nil {
		t.Fatal(err)
	}
	v, err := r.reg.Publish(ctx, model(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the model", func() bool { return r.servingVersion(t) == v.Name() })
	res, err := r.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "u1", Count: 5})
	if err != nil || res.GetSource() != recsysv1.Source_SOURCE_PERSONALIZED {
		t.Fatalf("Recommend = %v, %v; want a personalized answer", res, err)
	}
	if _, err := r.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "stranger", Count: 5}); err != nil {
		t.Fatal(err)
	}
	finished := time.Now().Truncate(time.Second)
	if err := r.reg.RecordRun(ctx, registry.Run{Finished: finished, Outcome: registry.OutcomeRefused,
		Duration: 42 * time.Second, GateMetric: "ndcg@10", GateValue: 0.2}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the retraining run on /metrics", func() bool {
		return r.scrape(t)[`recsys_retrain_last_outcome{outcome="refused"}`] == 1
	})

	got = r.scrape(t)
	for k, want := range map[string]float64{
		`recsys_events_total{type="view"}`:                               30,
		`recsys_events_total{type="purchase"}`:                           1,
		`recsys_answers_total{method="Recommend",source="personalized"}`: 1,
		`recsys_answers_total{method="Recommend",source="popular"}`:      1,
		`recsys_model_info{version="` + v.Name() + `"}`:                  1,
		`recsys_model_loads_total{result="ok"}`:                          1,
		`recsys_retrain_last_run_timestamp_seconds`:                      float64(finished.Unix()),
		`recsys_retrain_last_duration_seconds`:                           42,
		`recsys_retrain_last_gate_value{metric="ndcg@10"}`:               0.2,
		`recsys_retrain_last_outcome{outcome="published"}`:               0,
	} {
		if got[k] != want {
			t.Errorf("%s = %g, want %g", k, got[k], want)
		}
	}
	if got[`recsys_model_trained_timestamp_seconds`] != float64(modelTrainedAt.Unix()) ||
		got[`recsys_model_age_seconds`] < time.Since(modelTrainedAt).Seconds()-3600 ||
		got[`recsys_model_loaded_timestamp_seconds`] < float64(finished.Add(-time.Hour).Unix()) {
		t.Errorf("model times: trained %g (want %d), age %g, loaded %g", got[`recsys_model_trained_timestamp_seconds`],
			modelTrainedAt.Unix(), got[`recsys_model_age_seconds`], got[`recsys_model_loaded_timestamp_seconds`])
	}
	redisCalls := 0.0
	for k, n := range got {
		if strings.HasPrefix(k, "recsys_redis_command_duration_seconds_count{") {
			redisCalls += n
		}
	}
	if redisCalls == 0 {
		t.Error("no Redis command was observed")
	}
}

// TestMetricsToken: with --metrics-token-file, /metrics answers only the
// bearer of that token.
func TestMetricsToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics-token")
	if err := os.WriteFile(path, []byte("s3cret-metrics\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := start(t, func(c *daemon.Config) { c.MetricsTokenFile = path })
	for _, tc := range []struct {
		name, header string
		want         int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"wrong token", "Bearer nope", http.StatusUnauthorized},
		{"not bearer", "Basic s3cret-metrics", http.StatusUnauthorized},
		{"the token", "Bearer s3cret-metrics", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, "http://"+r.d.MetricsAddr().String()+"/metrics", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			_ = res.Body.Close()
			if res.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.want)
			}
			if tc.want == http.StatusOK && !strings.Contains(string(body), "recsys_") {
				t.Errorf("no recsys metrics in the answer")
			}
		})
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := daemon.New(daemon.Config{GRPCAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0", MetricsTokenFile: empty, InsecureNoAuth: true},
		slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty token file: %v, want refused", err)
	}
}
