package daemon_test

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

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
