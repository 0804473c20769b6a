package pushsched

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metricSet is the scheduler's Prometheus metrics.
type metricSet struct {
	answers    *prometheus.CounterVec
	collectors []prometheus.Collector
}

func newMetricSet(s *Scheduler) *metricSet {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	refused := prometheus.NewDesc("recsys_push_streams_refused_total",
		"BatchRecommend streams refused with ResourceExhausted, by the limit they hit.", []string{"limit"}, nil)
	answers := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recsys_push_answers_total",
		Help: "BatchRecommend answers sent, by channel and outcome (items, or the empty reason)."}, []string{"channel", "outcome"})
	// Every series exists from the start (at 0), so dashboards and alerts
	// see a channel or an empty reason before its first answer.
	for c := ChannelAppPush; c <= ChannelOther; c++ {
		for _, o := range outcomes {
			answers.WithLabelValues(c.String(), o)
		}
		answers.WithLabelValues(c.String(), outcome(-1))
	}
	return &metricSet{answers: answers, collectors: []prometheus.Collector{answers,
		gauge("recsys_push_bytes_in_flight", "Bytes reserved from the BatchRecommend memory budget now.",
			func() float64 { return float64(s.InFlight()) }),
		gauge("recsys_push_memory_budget_bytes", "The BatchRecommend memory budget (--push-memory-budget).",
			func() float64 { return float64(s.cfg.MemoryBudget) }),
		gauge("recsys_push_streams_open", "BatchRecommend streams admitted and running.",
			func() float64 { return float64(s.open.Load()) }),
		gauge("recsys_push_workers_busy", "Push workers scoring now (at most --push-workers).",
			func() float64 { return float64(s.running.Load()) }),
		collectorFunc{desc: refused, collect: func(ch chan<- prometheus.Metric) {
			ch <- prometheus.MustNewConstMetric(refused, prometheus.CounterValue, float64(s.refusedStreams.Load()), "streams_per_caller")
			ch <- prometheus.MustNewConstMetric(refused, prometheus.CounterValue, float64(s.refusedMemory.Load()), "memory_budget")
		}},
	}}
}

// collectorFunc is a collector of one labelled family computed on scrape.
type collectorFunc struct {
	desc    *prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

// Collectors are the scheduler's metrics, to register on /metrics.
func (s *Scheduler) Collectors() []prometheus.Collector { return s.m.collectors }
