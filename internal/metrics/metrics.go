// Package metrics holds recsysd's operational Prometheus metrics: what
// answers it gives and why, what it ingests, which model serves and how old
// it is, how the last retraining went, and how fast Redis answers.
//
// Every labelled series whose label values are known in advance is created
// at zero when the set is built, so a dashboard or an alert sees it from the
// first scrape (a counter that appears only at its first increment makes
// rate() and absent() lie). The names are a contract with the dashboard and
// alert rules in deploy/monitoring, whose README lists every one.
package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/recsys-dev/recsys/internal/access"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/recommend"
	"github.com/recsys-dev/recsys/internal/registry"
)

// Degradation causes (the cause label of DegradedAnswers).
const (
	CauseUnavailable = "unavailable"    // Redis down or unreachable
	CauseBudget      = "profile_budget" // the profile load exceeded --profile-budget
	CauseBreaker     = "breaker"        // the profile store's breaker was open (recent failures)
)

// AnswerMethods are the RPCs whose answers are counted by source.
var AnswerMethods = []string{"Recommend", "SimilarItems", "BoughtTogether", "RankItems"}

// DegradableMethods are the RPCs that may answer degraded.
var DegradableMethods = []string{"Recommend", "BoughtTogether", "RankItems"}

// Set is every metric of one recsysd. The zero value is not usable; build
// one with New. Its counters are safe for concurrent use.
type Set struct {
	// RateLimited counts calls refused by the per-caller rate limit, by the
	// role that set the caller's limit.
	RateLimited *prometheus.CounterVec
	// DegradedAnswers counts answers given without the profile store, by
	// method and cause.
	DegradedAnswers *prometheus.CounterVec
	// Answers counts answers by method and source (the path that produced
	// the answer's first items: personalized, popular, similar, ...).
	Answers *prometheus.CounterVec
	// Events counts events in accepted RecordEvents calls by type (stored
	// or recognised as duplicates); EventDuplicates counts the duplicates.
	Events          *prometheus.CounterVec
	EventDuplicates prometheus.Counter
	// ModelLoads counts model versions the watcher tried to load, by result.
	ModelLoads *prometheus.CounterVec
	// RedisLatency observes every Redis command's duration, by command
	// (pipelines as "pipeline"); see RedisHook.
	RedisLatency *prometheus.HistogramVec
	// RedisErrors counts failed Redis commands (not redis.Nil), by command.
	RedisErrors *prometheus.CounterVec

	state *stateCollector
}

// New builds a Set with every known series at zero. now is the clock of the
// model age (nil: time.Now).
func New(now func() time.Time) *Set {
	if now == nil {
		now = time.Now
	}
	s := &Set{
		RateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recsys_rate_limited_total",
			Help: "Calls refused with ResourceExhausted by the per-caller rate limit, by the role that set the caller's limit.",
		}, []string{"role"}),
		DegradedAnswers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recsys_degraded_answers_total",
			Help: "Answers given without the profile store, by method and cause (unavailable: Redis down; profile_budget: the profile load was too slow).",
		}, []string{"method", "cause"}),
		Answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recsys_answers_total",
			Help: "Answers given, by method and source (personalized, popular, similar, trending, bought_together, caller_order).",
		}, []string{"method", "source"}),
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recsys_events_total",
			Help: "Events in accepted RecordEvents calls, by type (duplicates included; see recsys_event_duplicates_total).",
		}, []string{"type"}),
		EventDuplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "recsys_event_duplicates_total",
			Help: "Events recognised as already recorded (same event_id) and not counted again.",
		}),
		ModelLoads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recsys_model_loads_total",
			Help: "Model versions the watcher tried to load, by result (ok, error).",
		}, []string{"result"}),
		RedisLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "recsys_redis_command_duration_seconds",
			Help:    "Duration of Redis commands as the client saw them (retries included), by command; a pipeline counts once as \"pipeline\".",
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1},
		}, []string{"command"}),
		RedisErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recsys_redis_errors_total",
			Help: "Redis commands that failed (a missing key is not a failure), by command.",
		}, []string{"command"}),
		state: newStateCollector(now),
	}
	for _, r := range access.RoleNames() {
		s.RateLimited.WithLabelValues(r)
	}
	for _, m := range DegradableMethods {
		for _, c := range []string{CauseUnavailable, CauseBudget, CauseBreaker} {
			s.DegradedAnswers.WithLabelValues(m, c)
		}
	}
	for _, m := range AnswerMethods {
		for src := recommend.SourcePersonalized; src <= recommend.SourceCallerOrder; src++ {
			if src == recommend.SourceExploration {
				continue // per item only, never an answer's source
			}
			s.Answers.WithLabelValues(m, src.String())
		}
	}
	for t := event.TypeUnspecified + 1; t.Valid(); t++ {
		s.Events.WithLabelValues(t.String())
	}
	for _, r := range []string{"ok", "error"} {
		s.ModelLoads.WithLabelValues(r)
	}
	return s
}

// Collectors returns every collector of the set, to register on /metrics.
func (s *Set) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.RateLimited, s.DegradedAnswers, s.Answers, s.Events, s.EventDuplicates,
		s.ModelLoads, s.RedisLatency, s.RedisErrors, s.state}
}

// Answer counts one answer of method from source.
func (s *Set) Answer(method string, source recommend.Source) {
	s.Answers.WithLabelValues(method, source.String()).Inc()
}

// Degraded counts one degraded answer of method for cause.
func (s *Set) Degraded(method, cause string) {
	s.DegradedAnswers.WithLabelValues(method, cause).Inc()
}

// Limited counts one call refused for a caller whose limit role set.
func (s *Set) Limited(role string) { s.RateLimited.WithLabelValues(role).Inc() }

// Recorded counts the events of an accepted RecordEvents call.
func (s *Set) Recorded(evs []event.Event, duplicates int) {
	var byType [event.Wishlist + 1]int
	for _, e := range evs {
		if e.Type.Valid() {
			byType[e.Type]++
		}
	}
	for t, n := range byType {
		if n > 0 {
			s.Events.WithLabelValues(event.Type(t).String()).Add(float64(n))
		}
	}
	s.EventDuplicates.Add(float64(duplicates))
}

// ServingModel records the model that now serves.
func (s *Set) ServingModel(version string, trainedAt, loadedAt time.Time) {
	s.state.model.Store(&servingModel{version: version, trainedAt: trainedAt, loadedAt: loadedAt})
}

// LastRun records the last retraining run read from the registry.
func (s *Set) LastRun(r registry.Run) {
	s.state.run.Store(&r)
}

// servingModel is what the state collector exports about the model.
type servingModel struct {
	version             string
	trainedAt, loadedAt time.Time
}

// stateCollector exports the serving model and the last retraining run as
// they are at scrape time (the model age grows between loads).
type stateCollector struct {
	now   func() time.Time
	model atomic.Pointer[servingModel]
	run   atomic.Pointer[registry.Run]

	info, trained, loaded, age                *prometheus.Desc
	runTime, runOutcome, runDuration, runGate *prometheus.Desc
}

func newStateCollector(now func() time.Time) *stateCollector {
	return &stateCollector{
		now: now,
		info: prometheus.NewDesc("recsys_model_info",
			"1 for the model version this server serves (absent before the first model).", []string{"version"}, nil),
		trained: prometheus.NewDesc("recsys_model_trained_timestamp_seconds",
			"When the serving model was trained (Unix time; 0 before the first model).", nil, nil),
		loaded: prometheus.NewDesc("recsys_model_loaded_timestamp_seconds",
			"When this server started serving its model (Unix time; 0 before the first model).", nil, nil),
		age: prometheus.NewDesc("recsys_model_age_seconds",
			"Seconds since the serving model was trained (0 before the first model).", nil, nil),
		runTime: prometheus.NewDesc("recsys_retrain_last_run_timestamp_seconds",
			"When the last retraining run recorded in the registry ended (Unix time; 0: none recorded).", nil, nil),
		runOutcome: prometheus.NewDesc("recsys_retrain_last_outcome",
			"1 for the outcome of the last retraining run (published, refused, failed), 0 for the others.", []string{"outcome"}, nil),
		runDuration: prometheus.NewDesc("recsys_retrain_last_duration_seconds",
			"How long the last retraining run took (0: none recorded).", nil, nil),
		runGate: prometheus.NewDesc("recsys_retrain_last_gate_value",
			"The new model's value of the quality gate's metric in the last run that reached the gate.", []string{"metric"}, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.info, c.trained, c.loaded, c.age, c.runTime, c.runOutcome, c.runDuration,
		c.runGate} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	unix := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.UnixNano()) / 1e9
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	var trained, loaded time.Time
	age := 0.0
	if m := c.model.Load(); m != nil {
		gauge(c.info, 1, m.version)
		trained, loaded = m.trainedAt, m.loadedAt
		if !trained.IsZero() {
			age = max(c.now().Sub(trained).Seconds(), 0)
		}
	}
	gauge(c.trained, unix(trained))
	gauge(c.loaded, unix(loaded))
	gauge(c.age, age)

	var run registry.Run
	if r := c.run.Load(); r != nil {
		run = *r
	}
	gauge(c.runTime, unix(run.Finished))
	for _, o := range registry.Outcomes {
		v := 0.0
		if o == run.Outcome {
			v = 1
		}
		gauge(c.runOutcome, v, o)
	}
	gauge(c.runDuration, run.Duration.Seconds())
	if run.GateMetric != "" {
		gauge(c.runGate, run.GateValue, run.GateMetric)
	}
}
