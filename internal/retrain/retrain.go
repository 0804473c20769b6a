// Package retrain is the retraining job: it reads the event history, trains
// implicit ALS on it, evaluates the new model on a per-user time holdout next
// to the serving model and the popularity and item-kNN baselines, refuses to
// publish a model that is worse (the quality gate), and otherwise refits on
// all events and publishes the result to the model registries. From the same
// pass over the events it computes the bought-together lists (package
// cooccur) and stores them after the model.
//
// The gate compares models on the same holdout: the new model must not
// contain NaN or Inf (or factors so extreme that users cannot be folded in),
// must beat popularity, and must not fall below the serving model's NDCG@K by
// more than the tolerance. The serving model was trained on older data that
// may include held-out events, so it is compared only on the test users whose
// held-out events came after its training data ended (mf.Info.DataUntil),
// with the new model scored on exactly those users too. When too few such
// users exist the comparison is skipped, and the report says so.
package retrain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/recsys-dev/recsys/internal/als"
	"github.com/recsys-dev/recsys/internal/content"
	"github.com/recsys-dev/recsys/internal/cooccur"
	"github.com/recsys-dev/recsys/internal/eval"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/itemindex"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/registry"
	"github.com/recsys-dev/recsys/internal/sparse"
	"github.com/recsys-dev/recsys/internal/traindata"
)

// Source streams the training events.
type Source func(ctx context.Context, fn func(event.Event) error) error

// Publisher stores a model under a new version and makes it current.
type Publisher interface {
	Publish(ctx context.Context, m *mf.Model) (registry.Version, error)
}

// Config is one run of the job.
type Config struct {
	// NoIndex leaves the serving index's cells (section "ivf",
	// internal/itemindex) out of the model; servers then build them at
	// load when they use them.
	NoIndex   bool
	Hyper     mf.Hyperparameters
	Weighting event.Weighting
	// AsOf is when the model is built; time decay is measured from it.
	// Default: now.
	AsOf time.Time
	// Holdout is the gate's split. Default: each user's last event.
	Holdout traindata.TimeSplit
	// K is the cut-off of the gate's metric, NDCG@K. Default 10.
	K int
	// Tolerance is how far below the serving model's NDCG@K the new model
	// may be, as a fraction of it (0.05 = 5%). Default 0.05.
	Tolerance float64
	// NoRefit publishes the model trained on the holdout's training part
	// instead of retraining on every event.
	NoRefit bool
	// SkipBaselines leaves item-kNN out of the report and the gate
	// (popularity is always computed: the gate needs it).
	SkipBaselines bool
	// TuneBudget > 0 searches the ALS settings (package tune) within that
	// time on a validation split carved from the gate's training part,
	// starting from the serving model's chosen settings; Hyper then only
	// gives iterations, solver, CG steps and seed. 0 trains with Hyper.
	TuneBudget time.Duration
	// TuneProgress, if set, receives every tuning trial.
	TuneProgress func(mf.TuningTrial)
	// TuneClock is the search's clock (default: the real one; see
	// tune.Config.Now).
	TuneClock func() time.Time
	// Candidates are the kinds of model the gate chooses from (default
	// DefaultCandidates: ALS).
	Candidates []Candidate
	// MinFreshCases is how many test users with events newer than the
	// serving model's data the serving comparison needs. Default 50.
	MinFreshCases int
	Workers       int
	Logger        *slog.Logger
	// Progress, if set, receives every ALS iteration (for a progress bar).
	Progress func(phase string, s als.IterationStats)
	Now      func() time.Time
	// Lists, when set, receives the bought-together lists (see package
	// cooccur) computed from the same events in the same pass, written
	// after the model is published, or after the gate refused it (the lists
	// do not depend on the model); nil (or a dry run): none are computed.
	Lists ListWriter
	// CoPurchase tunes the lists' computation (zero: cooccur's defaults).
	CoPurchase cooccur.Config
	// ListTTL is how long a list lives unless a later run rewrites it;
	// default cooccur.DefaultTTL. It must exceed the retraining cadence.
	ListTTL time.Duration
	// Blend adds BlendCandidate to the default candidates: the
	// order-aware blend (package blend: item neighbours,
	// item-to-next-item transitions, recency), weights chosen on a
	// validation split of the holdout's training events, reported as
	// "als+blend"; the gate publishes it when it beats MF alone. It also
	// adds NeighborCandidate ("itemneighbors"), a pure item-neighbour model
	// served the same way, which the gate publishes where it is best.
	Blend bool

	// Items describes items for the content map (package content: new
	// items placed by their attributes), fitted on the published model and
	// carried as its "content" section; nil, or no model item described:
	// no map.
	Items func(id string) (content.Item, bool)
	// Content tunes the content map's fit.
	Content content.Options

	servingGiven bool
	losses       *lossLog // Run's record of every fit's loss (Outcome.Losses)
}

// ListWriter stores bought-together lists (implemented by *cooccur.Store).
type ListWriter interface {
	Write(ctx context.Context, lists []cooccur.List, ttl time.Duration) (int, error)
}

func (c *Config) defaults() error {
	if c.Weighting == (event.Weighting{}) {
		c.Weighting = event.DefaultWeighting()
	}
	if err := c.Weighting.Validate(); err != nil {
		return err
	}
	if err := c.Hyper.Validate(); err != nil {
		return err
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.AsOf.IsZero() {
		c.AsOf = c.Now()
	}
	if c.Holdout == (traindata.TimeSplit{}) {
		c.Holdout = traindata.TimeSplit{LastN: 1, MinTrain: 1}
	}
	if c.K <= 0 {
		c.K = 10
	}
	if c.Tolerance < 0 || math.IsNaN(c.Tolerance) {
		return fmt.Errorf("tolerance must be >= 0, got %v", c.Tolerance)
	}
	if c.Tolerance == 0 {
		c.Tolerance = 0.05
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MinFreshCases <= 0 {
		c.MinFreshCases = 50
	}
	if c.TuneBudget < 0 {
		return fmt.Errorf("tune budget must be >= 0, got %v", c.TuneBudget)
	}
	if len(c.Candidates) == 0 {
		c.Candidates = DefaultCandidates()
		if c.Blend {
			c.Candidates = append(c.Candidates, &BlendCandidate{}, NeighborCandidate{})
		}
	}
	return nil
}

// Outcome is what a run did.
type Outcome struct {
	Events int64 // events read
	// BadIDs counts events skipped because their user or item id breaks
	// the one id rule (event.CheckID): such an item could never be served.
	BadIDs   int64
	Report   *eval.Report // als, serving (if any), popularity, itemknn on the holdout
	Gate     Gate
	Model    *mf.Model          // the model published (or that would have been)
	Versions []registry.Version // one per publisher, empty when refused or dry
	Lists    int                // bought-together lists written
	// Tuning is the hyperparameter search (nil when TuneBudget is 0).
	Tuning *mf.Tuning
	// Losses are the training loss per iteration of every ALS fit of the
	// run (the holdout fit, the candidates' refits), in order: the HTML
	// report's loss chart.
	Losses []PhaseLoss
}

// PhaseLoss is the training loss of one fit, per iteration.
type PhaseLoss struct {
	Phase string
	Loss  []float64
}

// lossLog collects the losses of a run's fits.
type lossLog struct {
	mu   sync.Mutex
	fits []PhaseLoss
}

// start begins a fit's record and returns its index (-1 without a log).
func (l *lossLog) start(phase string) int {
	if l == nil {
		return -1
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fits = append(l.fits, PhaseLoss{Phase: phase})
	return len(l.fits) - 1
}

func (l *lossLog) add(i int, loss float64) {
	if l == nil || i < 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fits[i].Loss = append(l.fits[i].Loss, loss)
}

func (l *lossLog) snapshot() []PhaseLoss {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.fits)
}

// badIDLogs is how many skipped events are logged one by one.
const badIDLogs = 10

func (o *Outcome) badID(log *slog.Logger, e event.Event, field string, err error) {
	o.BadIDs++
	if o.BadIDs <= badIDLogs {
		log.Warn("event skipped: bad id", "event_id", shortID(e.ID), "field", field, "reason", err.Error())
	}
}

// shortID keeps a log line readable when an id is hostile.
func shortID(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "\ufffd")
}

// Gate is the quality gate's verdict.
type Gate struct {
	Metric string // e.g. "ndcg@10"
	// Candidate is the best candidate on the holdout, the one published
	// when the gate passes; New its value on every test user.
	Candidate  string
	New        float64
	Popularity float64 // popularity's value on every test user
	// KNN is item-kNN's value (NaN when SkipBaselines left it out).
	KNN float64
	// FreshCases are the test users whose held-out events are newer than
	// the serving model's data; Serving and NewOnFresh are measured on them
	// (NaN when there is no serving model or too few fresh users).
	FreshCases int
	Serving    float64
	NewOnFresh float64
	Passed     bool
	Reason     string
}

// ErrRefused is returned (wrapped, with both numbers) when the gate refuses
// the new model.
var ErrRefused = errors.New("quality gate refused the model")

// ErrNoData is returned when the source holds too few events to train.
var ErrNoData = errors.New("not enough events to train")

// Run trains, evaluates and gates a model, then publishes it to every
// publisher unless the gate refuses it: read, then split, tune, train and
// gate (choose), then refit and publish. serving may be nil. With no
// publishers it is a dry run. A refusal returns the Outcome and an error
// wrapping ErrRefused.
func Run(ctx context.Context, cfg Config, src Source, serving *mf.Model, pubs ...Publisher) (*Outcome, error) {
	if err := cfg.defaults(); err != nil {
		return nil, fmt.Errorf("retrain config: %w", err)
	}
	out := &Outcome{}
	cfg.servingGiven = serving != nil
	cfg.losses = &lossLog{}
	defer func() { out.Losses = cfg.losses.snapshot() }()

	data, pairs, err := cfg.read(ctx, src, out, len(pubs) > 0)
	if err != nil {
		return nil, err
	}
	// Split, tune, train the candidates, gate.
	sel, err := cfg.choose(ctx, data, serving)
	if sel != nil {
		out.Report, out.Gate, out.Tuning = sel.report, sel.gate, sel.tuning
	}
	if err != nil {
		if errors.Is(err, ErrRefused) && sel != nil {
			out.Model = sel.mf
			// The bought-together lists do not depend on the model:
			// refresh them anyway, or a gate that refuses for longer than
			// their TTL would let every list expire.
			if pairs != nil {
				if lerr := cfg.writeLists(ctx, pairs, out); lerr != nil {
					return out, errors.Join(err, lerr)
				}
			}
			return out, err
		}
		return nil, err
	}
	if out.Model, err = cfg.refit(ctx, sel, data, out); err != nil {
		return nil, err
	}
	if err := cfg.publish(ctx, pubs, out); err != nil {
		return out, err
	}
	if pairs != nil {
		if err := cfg.writeLists(ctx, pairs, out); err != nil {
			return out, err
		}
	}
	return out, nil
}

// read reads the events of src into the training data, skipping (and
// counting in out) events whose ids break the id rule, and counts the
// co-purchases for the bought-together lists in the same pass when there
// is a list store and somewhere to publish (pairs nil otherwise).
func (c *Config) read(ctx context.Context, src Source, out *Outcome, publishing bool) (*traindata.Data, *cooccur.Counter, error) {
	log := c.Logger
	start := c.Now()
	col := traindata.NewCollector(c.Weighting, c.AsOf)
	var pairs *cooccur.Counter
	if c.Lists != nil && publishing {
		var err error
		if pairs, err = cooccur.NewCounter(c.CoPurchase); err != nil {
			return nil, nil, fmt.Errorf("retrain config: %w", err)
		}
	}
	if err := src(ctx, func(e event.Event) error {
		out.Events++
		// Every source's events pass the id rule here, so an item that
		// trains can always be served and marshalled; one bad row never
		// aborts the run.
		if err := event.CheckID(e.UserID); err != nil {
			out.badID(log, e, "user id", err)
			return nil
		}
		if err := event.CheckID(e.ItemID); err != nil {
			out.badID(log, e, "item id", err)
			return nil
		}
		if pairs != nil {
			pairs.Add(e)
		}
		return col.Add(e)
	}); err != nil {
		return nil, nil, fmt.Errorf("read events: %w", err)
	}
	data := col.Data()
	if out.BadIDs > 0 {
		log.Warn("events with a bad user or item id skipped", "skipped", out.BadIDs, "events", out.Events)
	}
	log.Info("events read", "events", out.Events, "users", data.Users, "items", data.Items,
		"zero_weight", col.Dropped(), "bad_ids", out.BadIDs, "took", c.Now().Sub(start).Round(time.Millisecond).String())
	if data.Len() == 0 || data.Users < 2 || data.Items < 2 {
		return nil, nil, fmt.Errorf("%w: %d events over %d users and %d items", ErrNoData, data.Len(), data.Users, data.Items)
	}
	return data, pairs, nil
}

// refit retrains the gate's winner on every event (unless NoRefit) and
// builds the model to publish: its record (metrics, data, tuning) and
// sections (the content map with Items, the serving index unless NoIndex).
func (c *Config) refit(ctx context.Context, sel *selection, data *traindata.Data, out *Outcome) (*mf.Model, error) {
	log := c.Logger
	split := sel.split
	final := sel.fitted.Model()
	if !c.NoRefit {
		if err := c.reweigh(ctx, sel); err != nil {
			return nil, err
		}
		f, _, err := c.fit(ctx, "final", sel.winner, data)
		if err != nil {
			return nil, err
		}
		final = f.Model()
	}
	won, _ := out.Report.Model(sel.winner.Name())
	info := final.Info()
	info.TrainedAt = c.Now().UTC()
	info.Metrics = won.Metrics
	info.Data = fmt.Sprintf("%d events, holdout %s (%d users)", out.Events, split.Name, len(split.Cases))
	info.DataUntil = latest(data)
	if c.NoRefit {
		info.DataUntil = latest(split.Train)
	}
	info.Tuning = sel.record()
	model, err := final.WithInfo(info)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	if c.Items != nil {
		mp, err := content.Fit(ctx, model, c.Items, c.Content)
		switch {
		case errors.Is(err, content.ErrNoExamples):
			log.Info("no content map: the catalog describes none of the model's items")
		case err != nil:
			return nil, fmt.Errorf("fit the content map: %w", err)
		default:
			if model, err = model.WithSections(mp.Section()); err != nil {
				return nil, fmt.Errorf("fit the content map: %w", err)
			}
			log.Info("content map fitted", "features", mp.Len())
		}
	}
	if !c.NoIndex {
		// The serving index's cells travel with the model (section "ivf"),
		// so servers do not run k-means at load.
		ix, err := itemindex.BuildIVF(model, itemindex.IVFOptions{Seed: uint64(info.Hyper.Seed)})
		if err != nil {
			return nil, fmt.Errorf("build the item index: %w", err)
		}
		if sec, ok := ix.Section(); ok {
			if model, err = model.WithSections(sec); err != nil {
				return nil, fmt.Errorf("build the item index: %w", err)
			}
		}
	}
	return model, nil
}

// publish publishes out.Model to every publisher, recording the versions
// in out.
func (c *Config) publish(ctx context.Context, pubs []Publisher, out *Outcome) error {
	for _, p := range pubs {
		v, err := p.Publish(ctx, out.Model)
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		c.Logger.Info("published", "version", v.Name(), "items", v.Info.Items, "bytes", v.Size)
		out.Versions = append(out.Versions, v)
	}
	return nil
}

// writeLists computes the bought-together lists and stores them.
func (c *Config) writeLists(ctx context.Context, pairs *cooccur.Counter, out *Outcome) error {
	start := c.Now()
	lists := pairs.Lists()
	computed := c.Now()
	n, err := c.Lists.Write(ctx, lists, c.ListTTL)
	out.Lists = n
	if err != nil {
		return fmt.Errorf("publish bought-together lists (%d of %d written): %w", n, len(lists), err)
	}
	c.Logger.Info("bought-together lists published", "items", n,
		"compute_seconds", computed.Sub(start).Seconds(), "write_seconds", c.Now().Sub(computed).Seconds())
	return nil
}

// train runs ALS on m and builds the serving model. A model with NaN or Inf
// factors fails here (mf.New refuses it), which the gate reports.
func (c *Config) train(ctx context.Context, phase string, m *sparse.Matrix) (*mf.Model, error) {
	total := c.Hyper.Iterations
	c.Logger.Info("training", "phase", phase, "users", m.Rows, "items", m.Cols, "interactions", m.NNZ(),
		"factors", c.Hyper.Factors, "iterations", total)
	fit := c.losses.start(phase)
	res, err := als.Train(ctx, m, als.Config{
		Hyperparameters: c.Hyper, Workers: c.Workers, ComputeLoss: true,
		Progress: func(s als.IterationStats) {
			c.losses.add(fit, s.Loss)
			eta := time.Duration(total-s.Iteration) * s.Duration
			c.Logger.Info("iteration", "phase", phase, "iteration", s.Iteration, "of", total, "loss", s.Loss,
				"took", s.Duration.Round(time.Millisecond).String(), "eta", eta.Round(time.Second).String())
			if c.Progress != nil {
				c.Progress(phase, s)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("train (%s): %w", phase, err)
	}
	model, err := res.Model(mf.Info{Version: phase, Weighting: &c.Weighting})
	if err != nil {
		return nil, fmt.Errorf("%w: %s model: %v", ErrRefused, phase, err)
	}
	return model, nil
}

// latest is the time of the latest event of d.
func latest(d *traindata.Data) time.Time {
	if len(d.Time) == 0 {
		return time.Time{}
	}
	return time.Unix(0, slices.Max(d.Time)).UTC()
}

// freshCases keeps the test users whose latest event (a held-out one) is
// after until: the serving model cannot have been trained on it.
func freshCases(s *traindata.Split, all *traindata.Data, until time.Time) *traindata.Split {
	last := make([]int64, all.Users)
	for k, u := range all.Row {
		last[u] = max(last[u], all.Time[k])
	}
	out := *s
	out.Cases = nil
	cut := until.UnixNano()
	for _, c := range s.Cases {
		if until.IsZero() || last[c.User] > cut {
			out.Cases = append(out.Cases, c)
		}
	}
	out.Name = s.Name + ", users with events after the serving model's data"
	return &out
}
