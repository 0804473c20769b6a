// Package trainjob assembles the retraining job: from a Config it builds
// what retrain.Run needs — the event source (files, or the Redis event
// stream), the registries to publish to (a directory, Redis), the serving
// model to beat, the bought-together list store — runs it, and records the
// run and its HTML report in the registries. The recsys-train command and
// the demo both run it, so the demo exercises the production wiring of the
// trainer as internal/daemon's makes it exercise the server's.
package trainjob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/catalog"
	"github.com/recsys-dev/recsys/internal/content"
	"github.com/recsys-dev/recsys/internal/cooccur"
	"github.com/recsys-dev/recsys/internal/dataset"
	"github.com/recsys-dev/recsys/internal/eval"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/modelreport"
	"github.com/recsys-dev/recsys/internal/profile"
	"github.com/recsys-dev/recsys/internal/redisconn"
	"github.com/recsys-dev/recsys/internal/registry"
	"github.com/recsys-dev/recsys/internal/retrain"
	"github.com/recsys-dev/recsys/internal/traindata"
)

// Defaults of Config that belong to the job itself; the others are the
// defaults of the packages it configures (registry, cooccur, profile,
// event), named there.
const (
	DefaultRedisTimeout   = 10 * time.Second
	DefaultFactors        = 64
	DefaultIterations     = 15
	DefaultRegularization = 0.05
	DefaultAlpha          = 10
	DefaultConfidence     = "linear"
	DefaultSolver         = "cg"
	DefaultCGSteps        = 3
	DefaultSeed           = 1
	DefaultTuneBudget     = 10 * time.Minute
	DefaultK              = 10
	DefaultTolerance      = 0.05
	DefaultHoldoutLast    = 1
	// DefaultContentLambda is the content map's ridge penalty (content.Fit's
	// own default).
	DefaultContentLambda = 1
)

// Config is one retraining job.
type Config struct {
	// Inputs are event files (Format; "" detects per file); none: the
	// Redis event stream of RedisAddr, the events recorded in the Since
	// before now (0: the whole stream).
	Inputs []string
	Format dataset.Format
	Since  time.Duration
	// RedisAddr (comma-separated for a cluster; RedisCluster for a single
	// seed) is read from and published to; "" is no Redis.
	RedisAddr     string
	RedisPassword string
	RedisCluster  bool
	RedisTimeout  time.Duration // of one command
	Prefix        string        // of every Redis key, as recsysd's
	// ModelsDir, when set, is a directory registry to publish to;
	// PublishRedis publishes to the Redis registry too (with RedisAddr).
	ModelsDir    string
	PublishRedis bool
	Keep         int // versions kept per registry
	// BoughtLists publishes the bought-together lists to Redis (with
	// RedisAddr).
	BoughtLists bool
	// ItemsFile describes the items for the content map (a catalog CSV, or
	// MovieLens u.item); "" with RedisAddr: the catalog in Redis. NoContent
	// leaves the content map out of the model.
	ItemsFile string
	NoContent bool
	// DryRun trains, evaluates and gates, but publishes and records
	// nothing.
	DryRun bool
	// Retrain is the run's settings; Open fills its Lists and, for files,
	// its AsOf.
	Retrain retrain.Config
}

// NewConfig returns the job recsys-train runs when no flag is given: every
// default, named once. recsys-train registers its flags with these values
// as their defaults.
func NewConfig() Config {
	return Config{
		RedisTimeout: DefaultRedisTimeout,
		Prefix:       profile.DefaultPrefix,
		PublishRedis: true,
		Keep:         registry.DefaultKeep,
		BoughtLists:  true,
		Retrain: retrain.Config{
			Hyper: mf.Hyperparameters{
				Factors: DefaultFactors, Iterations: DefaultIterations, Regularization: DefaultRegularization,
				Alpha: DefaultAlpha, Confidence: DefaultConfidence, Solver: DefaultSolver, CGSteps: DefaultCGSteps,
				Seed: DefaultSeed,
			},
			Weighting:  event.DefaultWeighting(),
			TuneBudget: DefaultTuneBudget,
			K:          DefaultK,
			Tolerance:  DefaultTolerance,
			Holdout:    traindata.TimeSplit{LastN: DefaultHoldoutLast},
			Blend:      true,
			CoPurchase: cooccur.Config{Window: cooccur.DefaultWindow, MinSupport: cooccur.DefaultMinSupport, Cap: cooccur.DefaultCap},
			ListTTL:    cooccur.DefaultTTL,
			Content:    content.Options{Lambda: DefaultContentLambda},
		},
	}
}

// Check reports a Config that cannot run: a bad Redis address, no events
// to read, nowhere to publish. Its messages name recsys-train's flags.
func (c Config) Check() error {
	if c.RedisAddr != "" {
		if _, err := c.redisOptions().Universal(); err != nil {
			return fmt.Errorf("--redis-addr: %w", err)
		}
	}
	if len(c.Inputs) == 0 && c.RedisAddr == "" {
		return errors.New("give --input FILE or --redis-addr ADDR")
	}
	if !c.DryRun && c.ModelsDir == "" && (c.RedisAddr == "" || !c.PublishRedis) {
		return errors.New("nowhere to publish: give --models-dir and/or --redis-addr, or --dry-run")
	}
	return nil
}

func (c Config) redisOptions() redisconn.Options {
	return redisconn.Options{Addr: c.RedisAddr, Cluster: c.RedisCluster, Password: c.RedisPassword,
		ReadTimeout: c.RedisTimeout, WriteTimeout: c.RedisTimeout, DialTimeout: 5 * time.Second}
}

// NewRedis returns the client of RedisAddr: a cluster client for several
// addresses or RedisCluster, as recsysd chooses (redisconn).
func (c Config) NewRedis() (redis.UniversalClient, error) {
	rdb, err := redisconn.New(c.redisOptions())
	if err != nil {
		return nil, fmt.Errorf("--redis-addr: %w", err)
	}
	return rdb, nil
}

// Source is where the events come from: the files of Inputs, else the
// Redis event stream through rdb.
func (c Config) Source(rdb redis.UniversalClient, log *slog.Logger) (retrain.Source, error) {
	if len(c.Inputs) > 0 {
		return retrain.FileSource(c.Inputs, c.Format, log), nil
	}
	if rdb == nil {
		return nil, errors.New("give --input FILE or --redis-addr ADDR")
	}
	store, err := profile.NewStore(rdb, profile.Config{Prefix: c.Prefix, Weighting: c.Retrain.Weighting})
	if err != nil {
		return nil, err
	}
	var since time.Time
	if c.Since > 0 {
		since = time.Now().Add(-c.Since)
	}
	return retrain.StreamSource(store, since, time.Time{}), nil
}

// A Job is an assembled retraining job; Close releases it.
type Job struct {
	cfg       Config
	log       *slog.Logger
	rdb       redis.UniversalClient // nil without RedisAddr
	src       retrain.Source
	pubs      []retrain.Publisher
	recorders []registry.RunRecorder
	serving   *mf.Model
}

// Open builds the job cfg describes (its logger is cfg.Retrain.Logger);
// a cfg that fails Check is an error. It reads the serving model to beat from the first registry that has one.
func Open(ctx context.Context, cfg Config) (_ *Job, err error) {
	log := cfg.Retrain.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	j := &Job{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			_ = j.Close()
		}
	}()
	if cfg.RedisAddr != "" {
		if j.rdb, err = cfg.NewRedis(); err != nil {
			return nil, err
		}
	}
	if j.src, err = cfg.Source(j.rdb, log); err != nil {
		return nil, err
	}
	regOpts := registry.Options{Prefix: cfg.Prefix, Keep: cfg.Keep, Logger: log}
	if j.rdb != nil && cfg.PublishRedis {
		reg, err := registry.NewRedis(j.rdb, regOpts)
		if err != nil {
			return nil, err
		}
		j.pubs = append(j.pubs, reg)
		if j.serving, err = currentModel(ctx, reg); err != nil {
			return nil, err
		}
	}
	if cfg.ModelsDir != "" {
		dir, err := registry.NewDir(cfg.ModelsDir, regOpts)
		if err != nil {
			return nil, err
		}
		j.pubs = append(j.pubs, dir)
		if j.serving == nil {
			if j.serving, err = currentModel(ctx, dir); err != nil {
				return nil, err
			}
		}
	}
	for _, p := range j.pubs {
		if r, ok := p.(registry.RunRecorder); ok {
			j.recorders = append(j.recorders, r)
		}
	}
	if cfg.DryRun {
		j.pubs, j.recorders = nil, nil
	}
	if j.rdb != nil && cfg.BoughtLists {
		store, err := cooccur.NewStore(j.rdb, cfg.Prefix)
		if err != nil {
			return nil, err
		}
		j.cfg.Retrain.Lists = store
	}
	if !cfg.NoContent {
		if j.cfg.Retrain.Items, err = itemLookup(ctx, cfg.ItemsFile, j.rdb, cfg.Prefix, log); err != nil {
			return nil, err
		}
	}
	if j.serving != nil {
		log.Info("serving model to beat", "version", j.serving.Version(), "items", j.serving.NumItems())
	}
	return j, nil
}

// Close releases the Redis client.
func (j *Job) Close() error {
	if j.rdb == nil {
		return nil
	}
	return j.rdb.Close()
}

// Run runs the job (retrain.Run), then records the run in every registry
// and stores the HTML report with every version published. A refusal
// returns the Outcome and an error wrapping retrain.ErrRefused.
func (j *Job) Run(ctx context.Context) (*retrain.Outcome, error) {
	cfg := j.cfg.Retrain
	cfg.Logger = j.log
	if len(j.cfg.Inputs) > 0 {
		// Files may be history: decay from their last event, or years-old
		// data would weigh nothing. A live stream decays from now.
		var err error
		if cfg.AsOf, err = retrain.Latest(ctx, j.src); err != nil {
			return nil, err
		}
	}
	started := time.Now()
	out, err := retrain.Run(ctx, cfg, j.src, j.serving, j.pubs...)
	recordRun(ctx, j.recorders, started, out, err, j.log)
	storeReports(ctx, j.pubs, out, j.log)
	return out, err
}

// currentModel loads the version a registry serves, or nil when it has none.
func currentModel(ctx context.Context, src registry.Source) (*mf.Model, error) {
	v, err := src.Current(ctx)
	if err != nil || v == "" {
		return nil, err
	}
	m, err := src.Load(ctx, v)
	if err != nil {
		return nil, fmt.Errorf("load serving model %s: %w", v, err)
	}
	return m, nil
}

// recordRun writes the run's outcome to every registry, so recsysd can
// export it (and an alert can notice retraining that keeps failing). A
// failure to record is logged, not returned: the run's own result matters
// more.
func recordRun(ctx context.Context, recs []registry.RunRecorder, started time.Time, out *retrain.Outcome, err error, log *slog.Logger) {
	run := registry.Run{Finished: time.Now(), Outcome: registry.OutcomePublished}
	run.Duration = run.Finished.Sub(started)
	switch {
	case errors.Is(err, retrain.ErrRefused):
		run.Outcome = registry.OutcomeRefused
	case err != nil:
		run.Outcome, run.Reason = registry.OutcomeFailed, err.Error()
	}
	if out != nil {
		if out.Report != nil {
			run.GateMetric, run.GateValue = out.Gate.Metric, out.Gate.New
		}
		if run.Reason == "" {
			run.Reason = out.Gate.Reason
		}
		if err == nil && len(out.Versions) > 0 {
			run.Version = out.Versions[0].Name()
		}
	}
	// A cancelled run still gets its record, within a short grace.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for _, r := range recs {
		if rerr := r.RecordRun(rctx, run); rerr != nil {
			log.Warn("could not record the retraining run in the registry", "err", rerr)
		}
	}
}

// storeReports stores the HTML report of the run with every version it
// published (ModelService/GetModelReport serves it). A failure is logged,
// not returned: the model is published and serves; only its report is
// missing (GetModelReport then says so).
func storeReports(ctx context.Context, pubs []retrain.Publisher, out *retrain.Outcome, log *slog.Logger) {
	if out == nil || out.Report == nil || len(out.Versions) == 0 {
		return
	}
	var buf bytes.Buffer
	if err := modelreport.Write(&buf, ReportInput(out.Report, out.Gate.Reason, out.Losses, out.Tuning)); err != nil {
		log.Warn("could not render the report to store with the model", "err", err)
		return
	}
	for i, v := range out.Versions {
		if i >= len(pubs) {
			break
		}
		rs, ok := pubs[i].(registry.ReportStore)
		if !ok {
			continue
		}
		if err := rs.PutReport(ctx, v.Name(), buf.Bytes()); err != nil {
			log.Warn("could not store the report with the model", "version", v.Name(), "err", err)
		}
	}
}

// ReportInput is what the HTML report of rep shows.
func ReportInput(rep *eval.Report, gate string, losses []retrain.PhaseLoss, t *mf.Tuning) modelreport.Input {
	in := modelreport.Input{Title: "recsys evaluation: " + rep.Split, Report: rep, Gate: gate}
	if t != nil {
		in.Resources = resources(t.UsedSeconds, t.BudgetSeconds)
	} else {
		in.Resources = resources(0, 0)
	}
	for _, l := range losses {
		in.Loss = append(in.Loss, modelreport.LossSeries{Name: l.Phase, Values: l.Loss})
	}
	return in
}

// itemLookup returns the item descriptions the content map is fitted on:
// from file when given, else the catalog in Redis (nil without Redis or
// when the catalog is empty).
func itemLookup(ctx context.Context, file string, rdb redis.UniversalClient, prefix string, log *slog.Logger) (func(string) (content.Item, bool), error) {
	items := map[string]content.Item{}
	switch {
	case file != "":
		if err := dataset.ReadItemsFile(file, func(id string, it content.Item) error { items[id] = it; return nil }); err != nil {
			return nil, err
		}
	case rdb != nil:
		cache := catalog.NewCache(catalog.NewStore(rdb, prefix), log)
		if err := cache.Sync(ctx); err != nil {
			return nil, fmt.Errorf("read the catalog: %w", err)
		}
		cache.Range(func(it catalog.Item) bool { items[it.ID] = it.Content(); return true })
	}
	if len(items) == 0 {
		return nil, nil
	}
	log.Info("item descriptions for the content map", "items", len(items))
	return func(id string) (content.Item, bool) { it, ok := items[id]; return it, ok }, nil
}
