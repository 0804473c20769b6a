// Package loadgen drives a running recsysd with an open-loop mix of
// Recommend, RecordEvents and SimilarItems calls and measures what it gets.
//
// Open loop: a scheduler issues calls at the target rate by the wall clock,
// whatever the latency of earlier calls, the way independent shoppers
// arrive. A closed loop (N workers each waiting for its answer) slows down
// with the server and hides exactly the queueing a slow server causes
// ("coordinated omission"). The number of calls in flight is bounded
// (Config.MaxInFlight) so a stalled server cannot make the generator grow
// without limit; a call due while the bound is reached is not sent and is
// counted as dropped, so the report shows that the target rate was not
// offered instead of quietly lowering it.
//
// Users and items are the synthetic shop's ids (synth.UserID, synth.ItemID)
// drawn with a Zipf skew, so the generator hits the ids a
// `recsysctl generate` shop has, with hot users and items.
//
// Latencies are those of successful calls, measured from just before the
// call to its answer, and kept in a log-bucket Histogram (1.6% resolution);
// failed calls are counted by gRPC status code. Successful Recommend and
// SimilarItems answers marked degraded (given without the profile store)
// are counted apart too: they are fast, so they would flatter the
// latencies of an overloaded server.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/recsys-dev/recsys/internal/synth"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// Config is one run.
type Config struct {
	Rate        float64       // calls per second, all kinds together
	Duration    time.Duration // the measured part of the run
	Warmup      time.Duration // calls before the measured part, not counted
	MaxInFlight int           // calls outstanding at once; more are dropped
	Mix         Mix           // share of each kind; zero: DefaultMix
	Users       int           // user ids synth.UserID(0..Users-1)
	Items       int           // item ids synth.ItemID(0..Items-1)
	UserSkew    float64       // Zipf exponent of users; 0 uniform
	ItemSkew    float64       // Zipf exponent of items; 0 uniform
	// EventsPerBatch is the number of events per RecordEvents call.
	EventsPerBatch int
	Count          int           // items asked for per Recommend/SimilarItems
	Seed           uint64        // the same seed makes the same sequence of calls
	Timeout        time.Duration // deadline of each call
	ReportEvery    time.Duration // interval reports; 0: only the final one
	// RunID makes event ids unique across runs (else the server would
	// deduplicate a second run's events); empty: derived from the start time.
	RunID string
	// UserID and ItemID name rank i; nil: synth.UserID and synth.ItemID.
	UserID, ItemID func(i int) string
}

func (c *Config) defaults() error {
	if c.Mix == (Mix{}) {
		c.Mix = DefaultMix()
	}
	if c.UserID == nil {
		c.UserID = synth.UserID
	}
	if c.ItemID == nil {
		c.ItemID = synth.ItemID
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	switch {
	case !(c.Rate > 0):
		return fmt.Errorf("rate must be > 0, got %v", c.Rate)
	case c.Duration <= 0:
		return fmt.Errorf("duration must be > 0, got %v", c.Duration)
	case c.Warmup < 0:
		return fmt.Errorf("warmup must be >= 0, got %v", c.Warmup)
	case c.MaxInFlight < 1:
		return fmt.Errorf("max in-flight must be >= 1, got %d", c.MaxInFlight)
	case c.Users < 1 || c.Items < 1:
		return fmt.Errorf("users and items must be >= 1, got %d and %d", c.Users, c.Items)
	case c.EventsPerBatch < 1:
		return fmt.Errorf("events per batch must be >= 1, got %d", c.EventsPerBatch)
	case c.Count < 1:
		return fmt.Errorf("count must be >= 1, got %d", c.Count)
	case c.ReportEvery < 0:
		return fmt.Errorf("report interval must be >= 0, got %v", c.ReportEvery)
	case c.Mix.total() <= 0:
		return errors.New("mix has no positive weight")
	}
	return nil
}

// Event types of generated batches, cumulative shares: 80% views, 15%
// add-to-cart, 5% purchases, roughly a shop's funnel.
const (
	viewShare = 0.80
	cartShare = 0.95
)

// call is one scheduled request.
type call struct {
	kind     Kind
	measured bool // issued after the warmup
	conn     int
	rec      *recsysv1.RecommendRequest
	sim      *recsysv1.SimilarItemsRequest
	events   *recsysv1.RecordEventsRequest
}

// generator builds the calls in schedule order from one seeded source, so
// a seed fixes the sequence of calls (not their timing).
type generator struct {
	cfg          Config
	rng          *rand.Rand
	users, items *Zipf
	seq          uint64
	nconn        int
}

func (g *generator) next(measured bool) call {
	c := call{kind: g.cfg.Mix.pick(g.rng.Float64()), measured: measured, conn: int(g.seq % uint64(g.nconn))}
	g.seq++
	switch c.kind {
	case Recommend:
		c.rec = &recsysv1.RecommendRequest{UserId: g.cfg.UserID(g.users.Draw(g.rng)), Count: int32(g.cfg.Count)}
	case Similar:
		c.sim = &recsysv1.SimilarItemsRequest{ItemId: g.cfg.ItemID(g.items.Draw(g.rng)), Count: int32(g.cfg.Count)}
	case Events:
		user := g.cfg.UserID(g.users.Draw(g.rng))
		now := timestamppb.Now()
		evs := make([]*recsysv1.Event, g.cfg.EventsPerBatch)
		for j := range evs {
			typ := recsysv1.EventType_EVENT_TYPE_VIEW
			switch u := g.rng.Float64(); {
			case u >= cartShare:
				typ = recsysv1.EventType_EVENT_TYPE_PURCHASE
			case u >= viewShare:
				typ = recsysv1.EventType_EVENT_TYPE_ADD_TO_CART
			}
			evs[j] = &recsysv1.Event{
				EventId:   "lg-" + g.cfg.RunID + "-" + strconv.FormatUint(g.seq, 10) + "-" + strconv.Itoa(j),
				UserId:    user,
				ItemId:    g.cfg.ItemID(g.items.Draw(g.rng)),
				Type:      typ,
				Timestamp: now,
				Quantity:  1,
			}
		}
		c.events = &recsysv1.RecordEventsRequest{Events: evs}
	}
	return c
}

// kindStats are the counts of one kind over one period.
type kindStats struct {
	issued, ok, dropped int64
	degraded            int64 // OK answers marked degraded
	errs                map[codes.Code]int64
	hist                Histogram
}

func (s *kindStats) merge(o *kindStats) {
	s.issued += o.issued
	s.ok += o.ok
	s.dropped += o.dropped
	s.degraded += o.degraded
	for c, n := range o.errs {
		if s.errs == nil {
			s.errs = map[codes.Code]int64{}
		}
		s.errs[c] += n
	}
	s.hist.Merge(&o.hist)
}

// recorder collects results from the calls' goroutines.
type recorder struct {
	mu       sync.Mutex
	interval [numKinds]kindStats
	total    [numKinds]kindStats
}

func (r *recorder) issued(k Kind, measured, dropped bool) {
	if !measured {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.interval[k].issued++
	if dropped {
		r.interval[k].dropped++
	}
}

func (r *recorder) done(k Kind, measured bool, lat time.Duration, degraded bool, err error) {
	if !measured {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.interval[k]
	if err == nil {
		s.ok++
		if degraded {
			s.degraded++
		}
		s.hist.Record(lat)
		return
	}
	if s.errs == nil {
		s.errs = map[codes.Code]int64{}
	}
	s.errs[status.Code(err)]++
}

// flush moves the interval into the totals and returns it.
func (r *recorder) flush() [numKinds]kindStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	iv := r.interval
	r.interval = [numKinds]kindStats{}
	for k := range iv {
		r.total[k].merge(&iv[k])
	}
	return iv
}

// Run drives the servers behind conns (calls go round-robin over them)
// until cfg.Warmup+cfg.Duration have passed or ctx ends, then waits for the
// calls in flight (each bounded by cfg.Timeout, not cut short by ctx) and
// returns the final report. Interval reports go to report as they are made.
// A run stopped early by ctx reports what it measured, with a nil error.
func Run(ctx context.Context, conns []grpc.ClientConnInterface, cfg Config, report func(Report)) (Report, error) {
	if err := cfg.defaults(); err != nil {
		return Report{}, fmt.Errorf("loadgen: %w", err)
	}
	if len(conns) == 0 {
		return Report{}, errors.New("loadgen: no connection")
	}
	users, err := NewZipf(cfg.Users, cfg.UserSkew)
	if err != nil {
		return Report{}, fmt.Errorf("loadgen: users: %w", err)
	}
	items, err := NewZipf(cfg.Items, cfg.ItemSkew)
	if err != nil {
		return Report{}, fmt.Errorf("loadgen: items: %w", err)
	}
	start := time.Now()
	if cfg.RunID == "" {
		cfg.RunID = strconv.FormatInt(start.UnixNano(), 36)
	}
	gen := &generator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x6c6f6164)), users: users, items: items, nconn: len(conns)}
	type clients struct {
		rec recsysv1.RecommendationServiceClient
		ev  recsysv1.EventServiceClient
	}
	cs := make([]clients, len(conns))
	for i, c := range conns {
		cs[i] = clients{recsysv1.NewRecommendationServiceClient(c), recsysv1.NewEventServiceClient(c)}
	}

	var rec recorder
	var wg sync.WaitGroup
	sem := make(chan struct{}, cfg.MaxInFlight)
	// The calls' contexts outlive ctx: stopping the run stops issuing, and
	// the calls already sent finish (or time out) and are counted.
	callCtx := context.WithoutCancel(ctx)
	issue := func(c call) {
		select {
		case sem <- struct{}{}:
		default:
			rec.issued(c.kind, c.measured, true)
			return
		}
		rec.issued(c.kind, c.measured, false)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(callCtx, cfg.Timeout)
			defer cancel()
			cl := cs[c.conn]
			t0 := time.Now()
			var err error
			degraded := false
			switch c.kind {
			case Recommend:
				var res *recsysv1.RecommendResponse
				res, err = cl.rec.Recommend(cctx, c.rec)
				degraded = res.GetDegraded()
			case Similar:
				var res *recsysv1.SimilarItemsResponse
				res, err = cl.rec.SimilarItems(cctx, c.sim)
				degraded = res.GetDegraded()
			case Events:
				_, err = cl.ev.RecordEvents(cctx, c.events)
			}
			rec.done(c.kind, c.measured, time.Since(t0), degraded, err)
		}()
	}

	warmEnd := start.Add(cfg.Warmup)
	end := warmEnd.Add(cfg.Duration)
	// due(t) is how many calls the schedule holds up to t; call k is due
	// at start + k/rate. Ticks only decide when to catch up, so their
	// jitter makes bursts, never a lower rate.
	due := func(t time.Time) uint64 { return uint64(t.Sub(start).Seconds() * cfg.Rate) }
	tick := min(max(time.Duration(float64(time.Second)/cfg.Rate), time.Millisecond), 50*time.Millisecond)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	var sent uint64
	lastReport, nextReport := warmEnd, warmEnd.Add(cfg.ReportEvery)
	stop := end
loop:
	for {
		now := time.Now()
		if !now.Before(end) {
			now = end
		}
		for n := due(now); sent < n; sent++ {
			at := start.Add(time.Duration(float64(sent) / cfg.Rate * float64(time.Second)))
			issue(gen.next(!at.Before(warmEnd)))
		}
		if now.Equal(end) {
			break
		}
		if cfg.ReportEvery > 0 && !now.Before(nextReport) && report != nil {
			report(makeReport(rec.flush(), now.Sub(warmEnd), now.Sub(lastReport), false))
			lastReport, nextReport = now, nextReport.Add(cfg.ReportEvery)
		}
		select {
		case <-ctx.Done():
			stop = time.Now()
			break loop
		case <-ticker.C:
		}
	}
	wg.Wait()
	rec.flush()
	if stop.After(end) {
		stop = end
	}
	measured := max(stop.Sub(warmEnd), 0)
	return makeReport(rec.total, measured, measured, true), nil
}
