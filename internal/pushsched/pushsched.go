// Package pushsched is the one scheduler of BatchRecommend (push) calls:
// it admits streams, bounds the memory they hold together, runs their
// scoring on a small worker pool so that push never takes the cores product
// pages need, and wraps the engine's Push with what a campaign adds.
//
// Admission. A caller (the identity the access layer authenticated; with
// authentication off, everyone is "anonymous") may hold at most
// StreamsPerCaller streams at once. Each admitted stream reserves a base
// from the memory budget for what gRPC holds of it (the transport's send
// quota and one message); the bases of all streams together stay within
// half the budget, so the other half is always there for the work of the
// streams already admitted. A stream over either limit is refused with a
// *LimitError (ResourceExhausted with a RetryInfo detail at the edge).
//
// Memory. The engine's Push works in rounds of up to 128 users: before
// loading a round's profiles it reserves their estimated bytes plus an
// upper bound of their answers from the budget (waiting, first come first
// served, while the budget is full), measures what it loaded (a profile
// larger than the estimate is reserved on top when free, otherwise the
// round is cut short), releases the profiles once scored and each answer
// once gRPC has taken it. Bytes in flight (Scheduler.InFlight) therefore
// never exceed MemoryBudget, and a stream whose reader is slow is paused
// by gRPC's flow control in Send: it computes nothing further and holds
// only its unsent answers (accounted), never profiles or score buffers.
//
// Outages. The engine loads profiles through Profiles, which retries a
// load that failed because Redis is unreachable (up to OutageWait): a
// stream paused by flow control, or one reading while Redis restarts,
// finishes once Redis is back instead of ending Unavailable.
//
// CPU. Scoring (fold-in, the score product, selection, explanations) runs
// only inside Stream.Work, at most Workers at a time across all streams;
// profile loads (Redis round trips) do not hold a worker.
package pushsched

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recsys-dev/recsys/internal/access"
	"github.com/recsys-dev/recsys/internal/recommend"
)

// Defaults of Config.
const (
	DefaultMemoryBudget     = 256 << 20
	DefaultStreamsPerCaller = 4
	DefaultWorkers          = 1
	DefaultRetryAfter       = 5 * time.Second
	DefaultOutageWait       = 30 * time.Second
	// transportBytes is what gRPC may hold of one stream beyond the
	// message being sent: its default per-stream send quota (64 KiB).
	transportBytes = 64 << 10
	// messageItemBytes bounds one item of a BatchRecommendResponse, as a
	// Go message and encoded (ids are at most 256 bytes, reasons name at
	// most 8 boost rules).
	messageItemBytes = 1 << 10
)

// Config tunes the scheduler; zero fields get the defaults.
type Config struct {
	// MemoryBudget bounds the bytes all streams hold together (profiles
	// being scored, answers not yet sent, the transport's share).
	MemoryBudget int64
	// StreamsPerCaller bounds one caller's concurrent streams.
	StreamsPerCaller int
	// Workers bounds the scorings running at once across all streams.
	Workers int
	// RetryAfter is the delay a refused caller is told to wait.
	RetryAfter time.Duration
	// Counts are the default items per user of each channel (a request
	// with count 0); zero: DefaultChannelCounts.
	Counts ChannelCounts
	// OutageWait bounds how long a stream's profile load waits for Redis
	// to come back before the stream fails (Unavailable); see Profiles.
	OutageWait time.Duration
}

// WithDefaults returns c with its zero fields set to the defaults.
func (c Config) WithDefaults() Config {
	if c.MemoryBudget == 0 {
		c.MemoryBudget = DefaultMemoryBudget
	}
	if c.StreamsPerCaller == 0 {
		c.StreamsPerCaller = DefaultStreamsPerCaller
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = DefaultRetryAfter
	}
	if c.Counts == (ChannelCounts{}) {
		c.Counts = DefaultChannelCounts
	}
	if c.OutageWait == 0 {
		c.OutageWait = DefaultOutageWait
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.MemoryBudget < 1<<20:
		return fmt.Errorf("push memory budget must be at least 1 MiB, got %d bytes", c.MemoryBudget)
	case c.StreamsPerCaller < 1:
		return fmt.Errorf("push streams per caller must be >= 1, got %d", c.StreamsPerCaller)
	case c.Workers < 1:
		return fmt.Errorf("push workers must be >= 1, got %d", c.Workers)
	case c.RetryAfter < 0:
		return fmt.Errorf("push retry-after must be >= 0, got %v", c.RetryAfter)
	case c.OutageWait < 0:
		return fmt.Errorf("push outage wait must be >= 0, got %v", c.OutageWait)
	}
	for _, n := range []int{c.Counts.AppPush, c.Counts.Email, c.Counts.SMS, c.Counts.Other} {
		if n < 1 || n > 500 {
			return fmt.Errorf("push default counts must be 1..500, got %s", c.Counts)
		}
	}
	return nil
}

// Pusher is the engine's Push (implemented by *recommend.Engine).
type Pusher interface {
	Push(ctx context.Context, req recommend.PushRequest, emit func(recommend.PushResult) error) error
}

// Scheduler admits and runs BatchRecommend calls: the server calls its
// Push instead of the engine's.
type Scheduler struct {
	cfg       Config
	engine    Pusher
	campaigns *Campaigns // nil: calls naming a campaign are refused
	budget    budget
	workers   chan struct{}

	mu      sync.Mutex
	callers map[string]int // open streams per caller
	changed chan struct{}  // closed (and replaced) when a stream closes

	running, peakRunning atomic.Int64
	open                 atomic.Int64
	refusedStreams       atomic.Int64
	refusedMemory        atomic.Int64
	m                    *metricSet
}

// New builds a scheduler over the engine's Push; campaigns stores the
// users of campaigns (nil: calls naming a campaign fail with
// ErrNoCampaigns).
func New(cfg Config, engine Pusher, campaigns *Campaigns) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	s := &Scheduler{cfg: cfg, engine: engine, campaigns: campaigns, workers: make(chan struct{}, cfg.Workers), callers: map[string]int{}, changed: make(chan struct{})}
	s.budget.size = cfg.MemoryBudget
	s.m = newMetricSet(s)
	return s, nil
}

// Config returns the configuration in force (defaults filled in).
func (s *Scheduler) Config() Config { return s.cfg }

// DeleteUser removes a user from the groups of every campaign (see
// Campaigns.DeleteUser) and returns how many memberships it removed.
func (s *Scheduler) DeleteUser(ctx context.Context, userID string) (int, error) {
	if s.campaigns == nil {
		return 0, nil
	}
	return s.campaigns.DeleteUser(ctx, userID)
}

// InFlight is the bytes reserved from the budget now.
func (s *Scheduler) InFlight() int64 {
	s.budget.mu.Lock()
	defer s.budget.mu.Unlock()
	return s.budget.inFlight
}

// PeakInFlight is the most bytes ever reserved at once.
func (s *Scheduler) PeakInFlight() int64 {
	s.budget.mu.Lock()
	defer s.budget.mu.Unlock()
	return s.budget.peak
}

// Waits counts the reservations that waited for the budget.
func (s *Scheduler) Waits() int64 {
	s.budget.mu.Lock()
	defer s.budget.mu.Unlock()
	return s.budget.waits
}

// PeakWorkers is the most scorings that ever ran at once.
func (s *Scheduler) PeakWorkers() int64 { return s.peakRunning.Load() }

// OpenStreams is the streams admitted and not yet closed.
func (s *Scheduler) OpenStreams() int64 { return s.open.Load() }

// streamBase is what an admitted stream reserves for the transport and one
// message of count items.
func streamBase(count int) int64 {
	return transportBytes + int64(max(count, 1))*messageItemBytes
}

// Admit opens a stream for caller, or refuses it with a *LimitError.
func (s *Scheduler) Admit(caller string, count int) (*Stream, error) {
	base := streamBase(count)
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.callers[caller]; n >= s.cfg.StreamsPerCaller {
		s.refusedStreams.Add(1)
		return nil, &LimitError{Limit: "streams_per_caller", RetryAfter: s.cfg.RetryAfter,
			Msg: fmt.Sprintf("caller %q already has %d BatchRecommend streams open (at most %d at once): retry when one ends", caller, n, s.cfg.StreamsPerCaller)}
	}
	if !s.budget.admit(base) {
		s.refusedMemory.Add(1)
		return nil, &LimitError{Limit: "memory_budget", RetryAfter: s.cfg.RetryAfter,
			Msg: fmt.Sprintf("the server's BatchRecommend memory budget (%d MiB) is in use: retry later", s.cfg.MemoryBudget>>20)}
	}
	s.callers[caller]++
	s.open.Add(1) // under mu, like the decrement WaitOpen watches
	return &Stream{s: s, caller: caller, base: base}, nil
}

// Stream is one admitted BatchRecommend call; it implements
// recommend.PushGate. Close it when the call ends.
type Stream struct {
	s      *Scheduler
	caller string
	base   int64
	held   atomic.Int64 // reserved beyond the base
	closed atomic.Bool
}

var _ recommend.PushGate = (*Stream)(nil)

// Reserve waits until at least lo bytes of the budget are free, reserves
// up to hi of them and returns how many; or ctx's error.
func (st *Stream) Reserve(ctx context.Context, lo, hi int64) (int64, error) {
	n, err := st.s.budget.reserve(ctx, lo, hi)
	if err != nil {
		return 0, err
	}
	st.held.Add(n)
	return n, nil
}

// TryReserve reserves n more bytes if they are free now.
func (st *Stream) TryReserve(n int64) bool {
	if n <= 0 {
		return true
	}
	if !st.s.budget.tryReserve(n) {
		return false
	}
	st.held.Add(n)
	return true
}

// Release returns n reserved bytes.
func (st *Stream) Release(n int64) {
	if n <= 0 {
		return
	}
	st.held.Add(-n)
	st.s.budget.release(n)
}

// Work runs fn on one of the push workers, waiting for a free one (or
// ctx's end).
func (st *Stream) Work(ctx context.Context, fn func() error) error {
	s := st.s
	select {
	case s.workers <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.workers }()
	n := s.running.Add(1)
	for {
		p := s.peakRunning.Load()
		if n <= p || s.peakRunning.CompareAndSwap(p, n) {
			break
		}
	}
	defer s.running.Add(-1)
	return fn()
}

// Close releases everything the stream still holds; calling it again does
// nothing.
func (st *Stream) Close() {
	if st.closed.Swap(true) {
		return
	}
	s := st.s
	s.budget.leave(st.base, st.held.Swap(0))
	s.mu.Lock()
	if s.callers[st.caller]--; s.callers[st.caller] <= 0 {
		delete(s.callers, st.caller)
	}
	s.open.Add(-1)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// WaitOpen waits until at most n streams are open (or ctx ends): a
// stream's handler may still run for a moment after its client cancelled.
func (s *Scheduler) WaitOpen(ctx context.Context, n int64) error {
	for {
		s.mu.Lock()
		open, changed := s.open.Load(), s.changed
		s.mu.Unlock()
		if open <= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%d push streams still open: %w", open, ctx.Err())
		}
	}
}

// Caller is the identity streams are counted by: the authenticated
// caller's name, "anonymous" with authentication off.
func Caller(ctx context.Context) string {
	if c, ok := access.FromContext(ctx); ok {
		return c.Name
	}
	return access.Anonymous.Name
}

// ErrNoCampaigns is returned for a call naming a campaign on a scheduler
// without a campaign store.
var ErrNoCampaigns = errors.New("push campaigns are not configured on this server")

// Push admits the call (its caller from ctx) and runs the engine's Push
// under the scheduler's budget and workers: with the channel's default
// count when the request has none, the campaign's holdout, the campaign's
// users stored as they are answered, and the answers counted per channel.
func (s *Scheduler) Push(ctx context.Context, r Request, emit func(recommend.PushResult) error) (err error) {
	req := r.PushRequest
	if req.Count == 0 {
		req.Count = s.cfg.Counts.For(r.Channel)
	}
	if r.HoldoutShare > 0 && r.Campaign == "" {
		return errors.New("push: a holdout share without a campaign")
	}
	if r.Campaign != "" && s.campaigns == nil {
		return ErrNoCampaigns
	}
	st, err := s.Admit(Caller(ctx), req.Count)
	if err != nil {
		return err
	}
	defer st.Close()
	req.Gate = st
	var rec *recorder
	if r.Campaign != "" {
		if err := s.campaigns.Begin(ctx, r.Campaign, r.HoldoutShare); err != nil {
			return err
		}
		rec = &recorder{c: s.campaigns, campaign: r.Campaign}
		defer func() {
			// What was sent is stored even when the call failed after it.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if ferr := rec.flush(fctx); err == nil {
				err = ferr
			}
		}()
	}
	if r.HoldoutShare > 0 {
		campaign, share := r.Campaign, r.HoldoutShare
		req.Holdout = func(id string) bool { return HeldOut(campaign, id, share) }
	}
	channel := r.Channel.String()
	return s.engine.Push(ctx, req, func(res recommend.PushResult) error {
		if err := emit(res); err != nil {
			return err
		}
		s.m.answers.WithLabelValues(channel, outcome(res.Empty)).Inc()
		if rec != nil {
			return rec.add(ctx, res)
		}
		return nil
	})
}

// outcomes label the answers metric by empty reason.
var outcomes = map[recommend.EmptyReason]string{
	recommend.EmptyNone: "items", recommend.EmptyNoConfidentItems: "no_confident_items",
	recommend.EmptyOptedOut: "opted_out", recommend.EmptyUnknownUser: "unknown_user",
	recommend.EmptyNoHistory: "no_history", recommend.EmptyNoModel: "no_model", recommend.EmptyHoldout: "holdout",
}

func outcome(e recommend.EmptyReason) string {
	if o, ok := outcomes[e]; ok {
		return o
	}
	return "other"
}

// recordBatch is the answers a campaign's recorder stores per round trip.
const recordBatch = 256

// recorder stores a campaign's answered users in batches.
type recorder struct {
	c                 *Campaigns
	campaign          string
	targeted, heldOut []string
}

func (r *recorder) add(ctx context.Context, res recommend.PushResult) error {
	if res.Empty == recommend.EmptyHoldout {
		r.heldOut = append(r.heldOut, res.UserID)
	} else {
		r.targeted = append(r.targeted, res.UserID)
	}
	if len(r.targeted)+len(r.heldOut) >= recordBatch {
		return r.flush(ctx)
	}
	return nil
}

func (r *recorder) flush(ctx context.Context) error {
	err := r.c.Add(ctx, r.campaign, r.targeted, r.heldOut)
	r.targeted, r.heldOut = r.targeted[:0], r.heldOut[:0]
	return err
}
