package metrics

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/recommend"
	"github.com/recsys-dev/recsys/internal/redistest"
	"github.com/recsys-dev/recsys/internal/registry"
)

// series gathers s and returns every sample as "name{k=v,...}" -> value
// (histograms as their _count).
func series(t *testing.T, s *Set) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			out[key(mf.GetName(), m)] = value(m)
		}
	}
	return out
}

func key(name string, m *dto.Metric) string {
	var ls []string
	for _, l := range m.GetLabel() {
		ls = append(ls, l.GetName()+"="+l.GetValue())
	}
	sort.Strings(ls)
	return name + "{" + strings.Join(ls, ",") + "}"
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return 0
}

// Every series an operator alerts on exists at zero before anything
// happened; the model info does not exist before a model serves.
func TestSeriesExistFromTheStart(t *testing.T) {
	got := series(t, New(nil))
	for _, want := range []string{
		"recsys_rate_limited_total{role=pages}",
		"recsys_rate_limited_total{role=operator}",
		"recsys_degraded_answers_total{cause=unavailable,method=Recommend}",
		"recsys_degraded_answers_total{cause=profile_budget,method=Recommend}",
		"recsys_degraded_answers_total{cause=unavailable,method=BoughtTogether}",
		"recsys_degraded_answers_total{cause=profile_budget,method=RankItems}",
		"recsys_answers_total{method=Recommend,source=personalized}",
		"recsys_answers_total{method=Recommend,source=popular}",
		"recsys_answers_total{method=Recommend,source=trending}",
		"recsys_answers_total{method=SimilarItems,source=similar}",
		"recsys_answers_total{method=BoughtTogether,source=bought_together}",
		"recsys_answers_total{method=RankItems,source=caller_order}",
		"recsys_events_total{type=view}",
		"recsys_events_total{type=cart}",
		"recsys_events_total{type=purchase}",
		"recsys_events_total{type=custom}",
		"recsys_events_total{type=impression}",
		"recsys_events_total{type=push}",
		"recsys_event_duplicates_total{}",
		"recsys_model_loads_total{result=ok}",
		"recsys_model_loads_total{result=error}",
		"recsys_model_trained_timestamp_seconds{}",
		"recsys_model_loaded_timestamp_seconds{}",
		"recsys_model_age_seconds{}",
		"recsys_retrain_last_run_timestamp_seconds{}",
		"recsys_retrain_last_outcome{outcome=published}",
		"recsys_retrain_last_outcome{outcome=refused}",
		"recsys_retrain_last_outcome{outcome=failed}",
		"recsys_retrain_last_duration_seconds{}",
	} {
		v, ok := got[want]
		if !ok {
			t.Errorf("series %s is missing", want)
		} else if v != 0 {
			t.Errorf("series %s = %g at the start, want 0", want, v)
		}
	}
	for k := range got {
		if strings.HasPrefix(k, "recsys_model_info{") || strings.HasPrefix(k, "recsys_retrain_last_gate_value{") {
			t.Errorf("%s exists before a model serves / a run is recorded", k)
		}
		if strings.Contains(k, "source=unspecified") || strings.Contains(k, "source=exploration") ||
			strings.Contains(k, "type=unspecified") {
			t.Errorf("%s: a label value no answer or event has", k)
		}
	}
}

func TestCounters(t *testing.T) {
	s := New(nil)
	s.Answer("Recommend", recommend.SourcePersonalized)
	s.Answer("Recommend", recommend.SourcePersonalized)
	s.Answer("Recommend", recommend.SourcePopular)
	s.Degraded("Recommend", CauseBudget)
	s.Limited("pages")
	s.Recorded([]event.Event{{Type: event.View}, {Type: event.View}, {Type: event.Purchase}, {Type: event.Type(99)}}, 1)
	got := series(t, s)
	for k, want := range map[string]float64{
		"recsys_answers_total{method=Recommend,source=personalized}":           2,
		"recsys_answers_total{method=Recommend,source=popular}":                1,
		"recsys_answers_total{method=SimilarItems,source=similar}":             0,
		"recsys_degraded_answers_total{cause=profile_budget,method=Recommend}": 1,
		"recsys_degraded_answers_total{cause=unavailable,method=Recommend}":    0,
		"recsys_rate_limited_total{role=pages}":                                1,
		"recsys_rate_limited_total{role=events}":                               0,
		"recsys_events_total{type=view}":                                       2,
		"recsys_events_total{type=purchase}":                                   1,
		"recsys_events_total{type=cart}":                                       0,
		"recsys_event_duplicates_total{}":                                      1,
	} {
		if got[k] != want {
			t.Errorf("%s = %g, want %g", k, got[k], want)
		}
	}
	for k := range got {
		if strings.Contains(k, "type=type(") {
			t.Errorf("an invalid event type got a series: %s", k)
		}
	}
}

// The model gauges follow the serving model and the age grows with the
// clock; the retraining gauges follow the last recorded run.
func TestServingModelAndLastRun(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	s := New(func() time.Time { return now })
	trained := now.Add(-3 * time.Hour)
	s.ServingModel("20260501-090000-ab", trained, now.Add(-time.Minute))
	got := series(t, s)
	for k, want := range map[string]float64{
		"recsys_model_info{version=20260501-090000-ab}":  1,
		"recsys_model_age_seconds{}":                     3 * 3600,
		"recsys_model_trained_timestamp_seconds{}":       float64(trained.Unix()),
		"recsys_model_loaded_timestamp_seconds{}":        float64(now.Add(-time.Minute).Unix()),
		"recsys_retrain_last_run_timestamp_seconds{}":    0,
		"recsys_retrain_last_outcome{outcome=published}": 0,
	} {
		if got[k] != want {
			t.Errorf("%s = %g, want %g", k, got[k], want)
		}
	}
	now = now.Add(time.Hour)
	s.ServingModel("v2", now.Add(-time.Minute), now)
	s.LastRun(registry.Run{Finished: now, Outcome: registry.OutcomeRefused, Duration: 90 * time.Second,
		GateMetric: "ndcg@10", GateValue: 0.25})
	got = series(t, s)
	for k, want := range map[string]float64{
		"recsys_model_info{version=v2}":                  1,
		"recsys_model_age_seconds{}":                     60,
		"recsys_retrain_last_run_timestamp_seconds{}":    float64(now.Unix()),
		"recsys_retrain_last_outcome{outcome=published}": 0,
		"recsys_retrain_last_outcome{outcome=refused}":   1,
		"recsys_retrain_last_outcome{outcome=failed}":    0,
		"recsys_retrain_last_duration_seconds{}":         90,
		"recsys_retrain_last_gate_value{metric=ndcg@10}": 0.25,
	} {
		if got[k] != want {
			t.Errorf("%s = %g, want %g", k, got[k], want)
		}
	}
	if _, ok := got["recsys_model_info{version=20260501-090000-ab}"]; ok {
		t.Error("the replaced model's info series is still exported")
	}
}

// The hook times commands and pipelines against a real Redis and counts
// failures, but not a missing key.
func TestRedisHook(t *testing.T) {
	c := redistest.Client(t)
	p := redistest.Prefix(t, c)
	s := New(nil)
	c.AddHook(s.RedisHook())
	ctx := context.Background()
	if err := c.Set(ctx, p+":s", "x", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, p+":missing").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET of a missing key = %v, want redis.Nil", err)
	}
	if err := c.Incr(ctx, p+":s").Err(); err == nil {
		t.Fatal("INCR of a non-number succeeded")
	}
	if _, err := c.Pipelined(ctx, func(pl redis.Pipeliner) error {
		pl.Get(ctx, p+":s")
		pl.Expire(ctx, p+":s", time.Minute)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got := series(t, s)
	for k, want := range map[string]float64{
		"recsys_redis_command_duration_seconds{command=set}":  1,
		"recsys_redis_command_duration_seconds{command=get}":  1,
		"recsys_redis_command_duration_seconds{command=incr}": 1,
		"recsys_redis_errors_total{command=incr}":             1,
	} {
		if got[k] != want {
			t.Errorf("%s = %g, want %g", k, got[k], want)
		}
	}
	// go-redis may send a connection's handshake as a pipeline too.
	if got["recsys_redis_command_duration_seconds{command=pipeline}"] < 1 {
		t.Error("the pipeline was not observed")
	}
	for _, k := range []string{"recsys_redis_errors_total{command=get}", "recsys_redis_errors_total{command=set}"} {
		if _, ok := got[k]; ok {
			t.Errorf("%s exists: a missing key or a success counted as an error", k)
		}
	}
}
