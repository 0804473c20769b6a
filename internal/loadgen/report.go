package loadgen

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what one interval, or the whole measured run (Final), did.
type Report struct {
	Final bool `json:"final"`
	// Elapsed is the measured time from the end of the warmup to this
	// report, in seconds.
	Elapsed float64 `json:"elapsed_s"`
	// Interval is the time the counts cover, in seconds (for the final
	// report: the whole measured run).
	Interval float64      `json:"interval_s"`
	Kinds    []KindReport `json:"kinds"`
	Total    KindReport   `json:"total"`
}

// KindReport is one kind of call, or all of them (Kind "total").
type KindReport struct {
	Kind string `json:"kind"`
	// Issued counts the calls the schedule called for: sent (OK + Errors)
	// or Dropped. In the final report Issued = OK + Errors + Dropped; an
	// interval's calls may still be in flight when it is reported.
	Issued  int64 `json:"issued"`
	OK      int64 `json:"ok"`
	Errors  int64 `json:"errors"`
	Dropped int64 `json:"dropped"`
	// Degraded counts the OK answers marked degraded (answered without the
	// profile store: Redis down or slower than the profile budget).
	Degraded int64 `json:"degraded"`
	// QPS is the rate of answers (OK and errors) over the interval; OKQPS
	// only the successful ones.
	QPS        float64          `json:"qps"`
	OKQPS      float64          `json:"ok_qps"`
	Latency    Latency          `json:"latency_ms"`
	ErrorCodes map[string]int64 `json:"error_codes,omitempty"` // by gRPC status code name
}

// Latency summarises successful calls, in milliseconds. Quantiles are
// bucket upper bounds (at most 1.6% high); Max and Mean are exact.
type Latency struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func latencyOf(h *Histogram) Latency {
	return Latency{Count: h.Count(), P50: ms(h.Quantile(0.50)), P95: ms(h.Quantile(0.95)),
		P99: ms(h.Quantile(0.99)), Max: ms(h.Max()), Mean: ms(h.Mean())}
}

func kindReport(name string, s *kindStats, interval time.Duration) KindReport {
	kr := KindReport{Kind: name, Issued: s.issued, OK: s.ok, Dropped: s.dropped, Degraded: s.degraded, Latency: latencyOf(&s.hist)}
	for c, n := range s.errs {
		kr.Errors += n
		if kr.ErrorCodes == nil {
			kr.ErrorCodes = map[string]int64{}
		}
		kr.ErrorCodes[c.String()] += n
	}
	if sec := interval.Seconds(); sec > 0 {
		kr.QPS = float64(kr.OK+kr.Errors) / sec
		kr.OKQPS = float64(kr.OK) / sec
	}
	return kr
}

func makeReport(st [numKinds]kindStats, elapsed, interval time.Duration, final bool) Report {
	r := Report{Final: final, Elapsed: elapsed.Seconds(), Interval: interval.Seconds()}
	var all kindStats
	for _, k := range Kinds() {
		r.Kinds = append(r.Kinds, kindReport(k.String(), &st[k], interval))
		all.merge(&st[k])
	}
	r.Total = kindReport("total", &all, interval)
	return r
}

// WriteText writes r as a small table.
func WriteText(w io.Writer, r Report) error {
	title := fmt.Sprintf("--- %.1fs: last %.1fs", r.Elapsed, r.Interval)
	if r.Final {
		title = fmt.Sprintf("=== final: %.1fs measured", r.Interval)
	}
	var b strings.Builder
	b.WriteString(title + "\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\tissued\tok\tdegraded\terrors\tdropped\tqps\tp50 ms\tp95 ms\tp99 ms\tmax ms\t")
	for _, k := range append(slices.Clone(r.Kinds), r.Total) {
		l := k.Latency
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t\n",
			k.Kind, k.Issued, k.OK, k.Degraded, k.Errors, k.Dropped, k.QPS, l.P50, l.P95, l.P99, l.Max)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, k := range r.Kinds {
		if len(k.ErrorCodes) == 0 {
			continue
		}
		codes := slices.Sorted(maps.Keys(k.ErrorCodes))
		parts := make([]string, len(codes))
		for i, c := range codes {
			parts[i] = fmt.Sprintf("%s=%d", c, k.ErrorCodes[c])
		}
		fmt.Fprintf(&b, "errors %s: %s\n", k.Kind, strings.Join(parts, " "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
