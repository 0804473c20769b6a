// Command recsys-train is the retraining job, fit for a Kubernetes CronJob:
// it reads the event history (the Redis event stream, or files), tunes ALS
// within --tune-budget on a validation split of the training part, fits the
// candidates (ALS, ALS with the order-aware blend), evaluates them against
// the serving model, popularity and item-kNN, and publishes the best one
// only if it passes the quality gate.
//
//	recsys-train --input FILE | --redis-addr ADDR  [--models-dir DIR] [--tune-budget 10m | --factors F …]
//	recsys-train eval --input FILE [--split time|last|user] | --train FILE --test FILE  [--k 10,20] [--json]
//	recsys-train tune --input FILE [--tune-budget 10m | --factors-grid 32,64 --reg-grid … --trials N]
//
// Without model flags (--factors, --regularization, --reg-exponent, --alpha,
// --confidence) eval evaluates what the default job would publish: the
// same search and gate on the training part, first in the report.
//
// Exit status: 0 published (or evaluated), 1 failed, 2 bad usage, 3 the
// quality gate refused the model (nothing was published).
//
// Every flag can also be set by an environment variable: --redis-addr by
// RECSYS_REDIS_ADDR, and so on.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/als"
	"github.com/recsys-dev/recsys/internal/cli"
	"github.com/recsys-dev/recsys/internal/dataset"
	"github.com/recsys-dev/recsys/internal/eval"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/modelreport"
	"github.com/recsys-dev/recsys/internal/retrain"
	"github.com/recsys-dev/recsys/internal/traindata"
	"github.com/recsys-dev/recsys/internal/trainjob"
	"github.com/recsys-dev/recsys/internal/tune"
)

// Exit statuses (internal/cli's).
const (
	exitOK      = cli.ExitOK
	exitUsage   = cli.ExitUsage
	exitRefused = cli.ExitGateRefused
)

func main() { os.Exit(exitCode(cli.Main(run), os.Stderr)) }

// exitCode is cli.Exit's, except that a model the quality gate refused exits
// 3 ("not published": the serving model stays).
func exitCode(err error, stderr io.Writer) int {
	if errors.Is(err, retrain.ErrRefused) {
		fmt.Fprintln(stderr, "recsys-train: not published:", err)
		return exitRefused
	}
	return cli.Exit("recsys-train", err, stderr)
}

// options are the flags every subcommand shares: the job's settings
// (trainjob.NewConfig's defaults), the input files and format as given,
// and the log's.
type options struct {
	job                 trainjob.Config
	inputs, format      string
	logLevel, logFormat string
}

func (o *options) register(fs *flag.FlagSet) {
	o.job = trainjob.NewConfig()
	j, r, h, w := &o.job, &o.job.Retrain, &o.job.Retrain.Hyper, &o.job.Retrain.Weighting
	fs.StringVar(&o.inputs, "input", "", "comma-separated event files (events CSV, MovieLens, sequences, baskets, DIGINETICA)")
	fs.StringVar(&o.format, "format", "auto", "input format: auto, csv, movielens, sequence, basket, diginetica")
	fs.StringVar(&j.RedisAddr, "redis-addr", j.RedisAddr, "Redis to read the event stream from and publish to (comma-separated for a cluster)")
	fs.StringVar(&j.RedisPassword, "redis-password", j.RedisPassword, "Redis password")
	fs.BoolVar(&j.RedisCluster, "redis-cluster", j.RedisCluster, "treat a single --redis-addr as a Redis Cluster seed")
	fs.DurationVar(&j.RedisTimeout, "redis-timeout", j.RedisTimeout, "Redis read/write timeout of one command")
	fs.StringVar(&j.Prefix, "prefix", j.Prefix, "prefix of every Redis key (as recsysd's)")
	fs.DurationVar(&j.Since, "since", j.Since, "with --redis-addr: only events recorded in this window before now (0 = the whole stream)")
	fs.IntVar(&h.Factors, "factors", h.Factors, "latent factors")
	fs.IntVar(&h.Iterations, "iterations", h.Iterations, "ALS iterations")
	fs.Float64Var(&h.Regularization, "regularization", h.Regularization, "L2 regularization λ")
	fs.Float64Var(&h.RegExponent, "reg-exponent", h.RegExponent, "frequency-scaled regularization exponent ν (λ·n^ν; 0 = constant)")
	fs.Float64Var(&h.Alpha, "alpha", h.Alpha, "confidence scale α (c = 1 + α·weight)")
	fs.StringVar(&h.Confidence, "confidence", h.Confidence, "confidence weighting: linear (1 + α·w) or log (1 + α·log(1 + w))")
	fs.DurationVar(&r.TuneBudget, "tune-budget", r.TuneBudget, "time for the hyperparameter search on a validation split of the training events (0 = no search: train with the model flags; giving a model flag also turns it off)")
	fs.StringVar(&h.Solver, "solver", h.Solver, "row solver: cg or cholesky")
	fs.IntVar(&h.CGSteps, "cg-steps", h.CGSteps, "conjugate-gradient steps per row")
	fs.Int64Var(&h.Seed, "seed", h.Seed, "random seed of the initial factors")
	fs.Float64Var(&w.View, "weight-view", w.View, "weight of a view (recorded in the model; recsysd folds in with it)")
	fs.Float64Var(&w.AddToCart, "weight-cart", w.AddToCart, "weight of an add-to-cart (recorded in the model; recsysd folds in with it)")
	fs.Float64Var(&w.Purchase, "weight-purchase", w.Purchase, "weight of a purchase (recorded in the model; recsysd folds in with it)")
	fs.Float64Var(&w.Wishlist, "weight-wishlist", w.Wishlist, "weight of an add-to-wishlist (recorded in the model)")
	fs.Float64Var(&w.Rating, "weight-rating", w.Rating, "weight of a 5-star rating; r > 3 weighs it × (r-3)/2 (recorded in the model)")
	fs.DurationVar(&w.HalfLife, "half-life", w.HalfLife, "event weight half-life (must match recsysd)")
	fs.IntVar(&r.Workers, "workers", r.Workers, "goroutines for training and evaluation (0 = all cores)")
	fs.StringVar(&o.logLevel, "log-level", defaultLogLevel, "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", defaultLogFormat, "text or json")
}

// The log's defaults.
const (
	defaultLogLevel  = "info"
	defaultLogFormat = "text"
)

// complete fills the job's inputs and format from their flags.
func (o *options) complete() error {
	o.job.Inputs = splitList(o.inputs)
	format, err := dataset.ParseFormat(o.format)
	if err != nil {
		return cli.Usagef("--format: %v", err)
	}
	o.job.Format = format
	return nil
}

// modelFlags are the hyperparameters the search chooses; setting one by
// hand turns the search off.
var modelFlags = []string{"factors", "regularization", "reg-exponent", "alpha", "confidence"}

// tuning reports whether the search runs: a budget and no model flag set
// (on the command line or by the environment).
func (o *options) tuning(fs *flag.FlagSet) bool {
	if o.job.Retrain.TuneBudget <= 0 {
		return false
	}
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || slices.Contains(modelFlags, f.Name) })
	return !set
}

// traceLogger logs every tuning trial as it ends, numbered, with the search's
// elapsed time against its budget (0: no budget), so a piped log shows how far
// the search is. The search's start is taken as the first trial's start.
func traceLogger(log *slog.Logger, budget time.Duration) func(mf.TuningTrial) {
	var n int
	var start time.Time
	return func(t mf.TuningTrial) {
		n++
		took := time.Duration(t.Seconds * float64(time.Second))
		if n == 1 {
			start = time.Now().Add(-took)
		}
		h := t.Hyper
		attrs := []any{"trial", n, "bracket", t.Bracket, "rung", t.Rung, "factors", h.Factors, "regularization", h.Regularization,
			"reg_exponent", h.RegExponent, "alpha", h.Alpha, "confidence", h.Confidence, "iterations", h.Iterations,
			"score", t.Score, "took", took.Round(time.Millisecond).String(), "aborted", t.Aborted,
			"elapsed", time.Since(start).Round(time.Second).String()}
		if budget > 0 {
			attrs = append(attrs, "budget", budget.String())
		}
		log.Info("tuning trial", attrs...)
	}
}

// writeTrace prints the search trace and the chosen settings.
func writeTrace(w io.Writer, t *mf.Tuning) {
	if t == nil {
		return
	}
	scorer := "MF alone"
	if t.Scorer == "als+blend" {
		scorer = "MF with the blend it would serve"
	}
	fmt.Fprintf(w, "\ntuning: %d trials in %.0fs of a %.0fs budget, %s of %s on a validation split of the training events\n",
		len(t.Trials), t.UsedSeconds, t.BudgetSeconds, t.Metric, scorer)
	fmt.Fprintf(w, "%-4s %-8s %-4s %-8s %-14s %-12s %-8s %-10s %-10s %-8s %s\n", "#", "bracket", "rung", "factors", "regularization", "reg_exponent", "alpha", "confidence", "iterations", "seconds", t.Metric)
	for i, tr := range t.Trials {
		h := tr.Hyper
		score := fmt.Sprintf("%.4f", tr.Score)
		if tr.Aborted {
			score = "aborted (budget)"
		}
		fmt.Fprintf(w, "%-4d %-8d %-4d %-8d %-14g %-12g %-8g %-10s %-10d %-8.1f %s\n", i+1, tr.Bracket, tr.Rung, h.Factors, h.Regularization, h.RegExponent, h.Alpha, h.Confidence, h.Iterations, tr.Seconds, score)
	}
	c := t.Chosen
	fmt.Fprintf(w, "chosen: --factors %d --regularization %g --reg-exponent %g --alpha %g --confidence %s --iterations %d (validation %s %.4f)\n",
		c.Factors, c.Regularization, c.RegExponent, c.Alpha, c.Confidence, c.Iterations, t.Metric, t.Score)
}

func (o *options) logger(w io.Writer) (*slog.Logger, error) {
	return cli.NewLogger(w, o.logLevel, o.logFormat)
}

// redis returns the client of --redis-addr (trainjob.Config.NewRedis).
func (o *options) redis() (redis.UniversalClient, error) {
	rdb, err := o.job.NewRedis()
	return rdb, cli.WithExit(cli.ExitUsage, err)
}

// source is where the events come from: files, else the Redis stream.
func (o *options) source(rdb redis.UniversalClient, log *slog.Logger) (retrain.Source, error) {
	if len(o.job.Inputs) == 0 && rdb == nil {
		return nil, cli.Usagef("give --input FILE or --redis-addr ADDR")
	}
	return o.job.Source(rdb, log)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, p := range splitList(s) {
		v, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", p)
		}
		out = append(out, v)
	}
	return out, nil
}

func parseFloats(s string) ([]float64, error) {
	var out []float64
	for _, p := range splitList(s) {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", p)
		}
		out = append(out, v)
	}
	return out, nil
}

// parseFlags parses the flags of a subcommand (before or after one
// another; there are no positional arguments) and fills the ones left
// unset from RECSYS_* variables.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return cli.Usagef("unexpected arguments %q (flags only; --help lists them)", pos)
	}
	return cli.FillEnv(fs, "RECSYS", getenv)
}

// subcommands are recsys-train's, for the help pages.
const subcommands = `commands:
  recsys-train [train] [flags]   read the events, tune, fit, gate and publish (the CronJob)
  recsys-train eval [flags]      what the job would publish, next to popularity and item-kNN on one split
  recsys-train tune [flags]      the job's hyperparameter search alone (or a grid search), with its trace
  recsys-train --version         the build
`

// usage makes the help page of a subcommand: what it does, its flags, the
// other subcommands, the environment and the exit codes.
func usage(fs *flag.FlagSet, w io.Writer, what string) func() {
	return func() {
		fmt.Fprintf(w, "usage: %s [flags]\n\n%s\n\n%s\nflags (RECSYS_<FLAG> fills a flag the command line leaves unset):\n",
			fs.Name(), what, subcommands)
		fs.PrintDefaults()
		fmt.Fprintln(w)
		fmt.Fprint(w, cli.EnvHelp(fs, "RECSYS"))
		fmt.Fprintln(w)
		fmt.Fprint(w, cli.ExitCodesHelp)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "--version", "-version":
			_, err := fmt.Fprintln(stdout, cli.Version("recsys-train"))
			return err
		case "eval":
			return runEval(ctx, args[1:], getenv, stdout, stderr)
		case "tune":
			return runTune(ctx, args[1:], getenv, stdout, stderr)
		case "train":
			args = args[1:]
		}
	}
	return runTrain(ctx, args, getenv, stdout, stderr)
}

// runTrain trains, gates and publishes.
// trainFlags registers the job's flags on a new flag set, with o.job's
// fields (trainjob.NewConfig's values) as their defaults; reportFile is
// --report.
func trainFlags(o *options, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("recsys-train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = usage(fs, stderr, "Reads the event history (the Redis stream of --redis-addr, or --input files), tunes ALS within\n"+
		"--tune-budget, fits the candidates, evaluates them against the serving model, popularity and item-kNN,\n"+
		"and publishes the best with its HTML report if it passes the quality gate.")
	o.register(fs)
	j, cfg := &o.job, &o.job.Retrain
	fs.StringVar(&j.ModelsDir, "models-dir", j.ModelsDir, "publish to this directory (and serve from it with recsysd --models-dir)")
	fs.BoolVar(&j.PublishRedis, "publish-redis", j.PublishRedis, "with --redis-addr: publish to the Redis registry every recsysd watches")
	fs.IntVar(&j.Keep, "keep", j.Keep, "published versions kept per registry")
	fs.IntVar(&cfg.K, "k", cfg.K, "cut-off of the gate's metric NDCG@K")
	fs.Float64Var(&cfg.Tolerance, "tolerance", cfg.Tolerance, "how far (fraction) below the serving model's NDCG@K the new model may be")
	fs.IntVar(&cfg.Holdout.LastN, "holdout-last", cfg.Holdout.LastN, "events per user held out for the gate")
	fs.BoolVar(&cfg.NoRefit, "no-refit", cfg.NoRefit, "publish the model trained without the holdout instead of refitting on all events")
	fs.BoolVar(&cfg.SkipBaselines, "skip-knn", cfg.SkipBaselines, "leave the item-kNN baseline out of the report")
	fs.BoolVar(&cfg.NoIndex, "no-index", cfg.NoIndex, "leave the serving index's cells (artifact section ivf) out of the model; recsysd then builds them at load when it uses them")
	fs.BoolVar(&cfg.Blend, "blend", cfg.Blend, "also fit the order-aware blend (item neighbours, next-item transitions, recency; weights on a validation split) as a candidate; the gate publishes it when it beats MF alone")
	fs.StringVar(&j.ItemsFile, "items", j.ItemsFile, "item descriptions for the content map (a catalog CSV, or MovieLens u.item); default with --redis-addr: the catalog in Redis")
	fs.BoolVar(&j.NoContent, "no-content", j.NoContent, "leave the content map (artifact section content: new items placed by their attributes) out of the model")
	fs.Float64Var(&cfg.Content.Lambda, "content-lambda", cfg.Content.Lambda, "ridge penalty of the content map")
	fs.BoolVar(&j.DryRun, "dry-run", j.DryRun, "train, evaluate and gate, but publish nothing")
	reportFile := fs.String("report", "", "also write the evaluation (model, serving model and baselines, the gate's decision) as a self-contained HTML file with charts")
	fs.BoolVar(&j.BoughtLists, "bought-lists", j.BoughtLists, "with --redis-addr: publish the bought-together lists to Redis after the model")
	fs.DurationVar(&cfg.CoPurchase.Window, "bought-window", cfg.CoPurchase.Window, "two purchases of one user this close in time count as bought together")
	fs.IntVar(&cfg.CoPurchase.MinSupport, "bought-min-support", cfg.CoPurchase.MinSupport, "fewest users who bought a pair together for it to be listed")
	fs.IntVar(&cfg.CoPurchase.Cap, "bought-cap", cfg.CoPurchase.Cap, "items kept in each item's bought-together list")
	fs.DurationVar(&cfg.ListTTL, "bought-ttl", cfg.ListTTL, "lifetime of a bought-together list a later run does not rewrite (longer than the retraining cadence)")
	return fs, reportFile
}

func runTrain(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var o options
	fs, reportFile := trainFlags(&o, stderr)
	j, cfg := &o.job, &o.job.Retrain
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	bar := newTrainBar(stderr, cfg.Hyper.Iterations)
	log, err := o.logger(bar.logWriter(stderr))
	if err != nil {
		return err
	}
	if err := o.complete(); err != nil {
		return err
	}
	if err := j.Check(); err != nil {
		return cli.WithExit(cli.ExitUsage, err)
	}
	cfg.Logger, cfg.Progress = log, bar.progress()
	if o.tuning(fs) {
		cfg.TuneProgress = traceLogger(log, cfg.TuneBudget)
	} else {
		cfg.TuneBudget = 0
	}
	job, err := trainjob.Open(ctx, *j)
	if err != nil {
		return err
	}
	defer job.Close()
	out, err := job.Run(ctx)
	if out != nil && out.Report != nil {
		fmt.Fprintln(stdout)
		if werr := out.Report.WriteTable(stdout); werr != nil && err == nil {
			err = werr
		}
		writeTrace(stdout, out.Tuning)
		fmt.Fprintf(stdout, "\ngate: %s\n", out.Gate.Reason)
		fmt.Fprintf(stdout, "resources: %s\n", trainjob.ReportInput(out.Report, "", nil, out.Tuning).Resources)
		if werr := writeHTMLReport(*reportFile, out.Report, out.Gate.Reason, out.Losses, out.Tuning); werr != nil && err == nil {
			err = werr
		}
		for _, v := range out.Versions {
			fmt.Fprintf(stdout, "published %s (%d items, %d bytes)\n", v.Name(), v.Info.Items, v.Size)
		}
		if out.Lists > 0 {
			fmt.Fprintf(stdout, "published %d bought-together lists\n", out.Lists)
		}
	}
	return err
}

// evalCommand is what eval and tune share: the common options, the
// evaluation settings and the cut-offs.
type evalCommand struct {
	options
	cfg retrain.EvalConfig
	ks  string
}

// register registers the common and the evaluation flags.
func (c *evalCommand) register(fs *flag.FlagSet) {
	c.options.register(fs)
	fs.StringVar(&c.cfg.Split, "split", "time", "time (each user's last events held out), last (leave-last-out: each user's last event by time or position, users with < 3 events not tested; the next-item protocol of SASRec/ICLRec) or user (held-out users folded in, Liang et al. 2018)")
	fs.IntVar(&c.cfg.Holdout.LastN, "holdout-last", 1, "with --split time: events per user held out")
	fs.Float64Var(&c.cfg.Holdout.Fraction, "holdout-fraction", 0, "with --split time: share of each user's events held out (instead of --holdout-last)")
	fs.Float64Var(&c.cfg.Users.Fraction, "users-fraction", 0.1, "with --split user: share of users held out")
	fs.Uint64Var(&c.cfg.Users.Seed, "split-seed", 1, "with --split user: seed of the held-out users and their 80/20 split")
	fs.IntVar(&c.cfg.KNN.Neighbors, "knn-neighbors", 100, "neighbours per item of the item-kNN baseline")
	fs.StringVar(&c.ks, "k", "10,20", "comma-separated cut-offs")
}

// parse parses args, completes cfg from the flags and returns the logger.
func (c *evalCommand) parse(fs *flag.FlagSet, args []string, getenv func(string) string, stderr io.Writer) (*slog.Logger, error) {
	if err := parseFlags(fs, args, getenv); err != nil {
		return nil, err
	}
	log, err := c.logger(stderr)
	if err != nil {
		return nil, err
	}
	if err := c.complete(); err != nil {
		return nil, err
	}
	if c.cfg.Ks, err = parseInts(c.ks); err != nil {
		return nil, cli.Usagef("--k: %v", err)
	}
	c.cfg.Hyper, c.cfg.Weighting, c.cfg.Workers = c.job.Retrain.Hyper, c.job.Retrain.Weighting, c.job.Retrain.Workers
	return log, nil
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func (o *options) evalSplit(ctx context.Context, cfg retrain.EvalConfig, trainFile, testFile string, log *slog.Logger) (*traindata.Split, error) {
	if cfg.Holdout.Fraction > 0 {
		cfg.Holdout.LastN = 0
	}
	cfg.Users.FoldIn = 0.8
	if trainFile != "" || testFile != "" {
		if trainFile == "" || testFile == "" || len(o.job.Inputs) > 0 {
			return nil, cli.Usagef("give --train FILE and --test FILE together, without --input")
		}
		format, err := dataset.ParseFormat(o.format)
		if err != nil {
			return nil, cli.Usagef("--format: %v", err)
		}
		return retrain.MakePairSplit(ctx, cfg, retrain.FileSource([]string{trainFile}, format, log),
			retrain.FileSource([]string{testFile}, format, log))
	}
	var rdb redis.UniversalClient
	if o.job.RedisAddr != "" {
		var err error
		if rdb, err = o.redis(); err != nil {
			return nil, err
		}
		defer rdb.Close()
	}
	src, err := o.source(rdb, log)
	if err != nil {
		return nil, err
	}
	return retrain.MakeSplit(ctx, cfg, src)
}

// evalFlags are eval's own flags, beside the evaluation command's.
type evalFlags struct {
	evalCommand
	trainFile, testFile string
	asJSON, ablation    bool
	reportFile          string
	cold                coldStartFlags
}

// newEvalFlags registers eval's flags on a new flag set.
func newEvalFlags(e *evalFlags, stderr io.Writer) *flag.FlagSet {
	c := &e.evalCommand
	fs := flag.NewFlagSet("recsys-train eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = usage(fs, stderr, "Evaluates, with full ranking over all items, what the job would publish (or the model the\n"+
		"model flags describe) next to popularity and item-kNN on one split; publishes nothing.")
	c.register(fs)
	fs.StringVar(&e.trainFile, "train", "", "a pre-split training file (with --test)")
	fs.StringVar(&e.testFile, "test", "", "a pre-split test file (with --train)")
	fs.BoolVar(&e.asJSON, "json", false, "print the report as JSON")
	fs.StringVar(&e.reportFile, "report", "", "also write the report as a self-contained HTML file with charts (model and baselines)")
	fs.BoolVar(&c.cfg.Blend, "blend", true, "without model flags: the job's blend candidate, as recsys-train --blend")
	fs.BoolVar(&c.cfg.Served, "served", true, "also the served row (the model searched through its partitioned index, forced as recsysd --index-min-items 0) with recall_vs_exact@K against the exact scan: of the model flags' model, or of the job's model (\"served blend\" for a blend, against the exact blend); with --blend-ablation also the \"served blend\" row of the full blend")
	fs.BoolVar(&e.ablation, "blend-ablation", false, "also evaluate the ablation rows: item neighbours alone, then MF alone, +neighbours, +transitions, +recency (without model flags: the job's chosen settings and its blend's validation grid; with them: weights chosen on a validation split of the training events)")
	e.cold.register(fs)
	return fs
}

// runEval prints ALS next to the baselines on one split.
func runEval(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var e evalFlags
	fs := newEvalFlags(&e, stderr)
	log, err := e.parse(fs, args, getenv, stderr)
	if err != nil {
		return err
	}
	c, cold := e.evalCommand, &e.cold
	trainFile, testFile, asJSON, ablation, reportFile := e.trainFile, e.testFile, e.asJSON, e.ablation, &e.reportFile
	if cold.on {
		return cold.run(ctx, c, asJSON, stdout, log)
	}
	split, err := c.evalSplit(ctx, c.cfg, trainFile, testFile, log)
	if err != nil {
		return err
	}
	log.Info("split", "name", split.Name, "users", split.Matrix.Rows, "items", split.Matrix.Cols,
		"train_interactions", split.Matrix.NNZ(), "test_users", len(split.Cases))
	if !c.tuning(fs) {
		rep, err := retrain.Evaluate(ctx, c.cfg, split)
		if err != nil {
			return err
		}
		if ablation {
			if err := addAblation(ctx, c, split, rep, nil, nil, log); err != nil {
				return err
			}
		}
		if err := writeHTMLReport(*reportFile, rep, "", nil, nil); err != nil {
			return err
		}
		if asJSON {
			return writeJSON(stdout, rep)
		}
		return rep.WriteTable(stdout)
	}
	// No model flags: what the default job would publish, tuned on the
	// training part, first; then the baselines.
	c.cfg.Job, c.cfg.TuneBudget, c.cfg.TuneProgress, c.cfg.Logger = true, c.job.Retrain.TuneBudget, traceLogger(log, c.job.Retrain.TuneBudget), log
	job, err := retrain.EvaluateJob(ctx, c.cfg, split)
	if err != nil {
		return err
	}
	if ablation {
		// The job's MF settings and, when its search scored by the blend,
		// the grid its weights came from: the rows describe what it publishes.
		if err := addAblation(ctx, c, split, job.Report, job.MF, job.Blend, log); err != nil {
			return err
		}
		if len(job.Folds) == 2 {
			// The published weights pool two validation folds; each
			// fold's own weights, for comparison.
			rows, err := eval.WeightRows(ctx, split, job.MF, []string{"blend weights: second-to-last events", "blend weights: last events"},
				job.Folds, eval.BlendOptions{Workers: c.cfg.Workers}, eval.Options{Ks: c.cfg.Ks, Workers: c.cfg.Workers})
			if err != nil {
				return fmt.Errorf("blend ablation: %w", err)
			}
			job.Report.Models = append(job.Report.Models, rows...)
		}
	}
	if err := writeHTMLReport(*reportFile, job.Report, "job's gate on its holdout of the training part: "+job.Gate.Reason, nil, job.Tuning); err != nil {
		return err
	}
	if asJSON {
		// The report's own JSON plus the job's gate and search.
		b, err := json.Marshal(job.Report)
		if err != nil {
			return err
		}
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		v["gate"], v["tuning"], v["peak_rss_bytes"] = job.Gate.Reason, job.Tuning, trainjob.PeakRSS()
		return writeJSON(stdout, v)
	}
	if err := job.Report.WriteTable(stdout); err != nil {
		return err
	}
	writeTrace(stdout, job.Tuning)
	fmt.Fprintf(stdout, "\njob's gate on its holdout of the training part: %s\n", job.Gate.Reason)
	fmt.Fprintf(stdout, "resources: %s\n", trainjob.ReportInput(job.Report, "", nil, job.Tuning).Resources)
	return nil
}

// addAblation appends the blend's ablation rows (eval.AblationRows) to rep:
// over model (nil: ALS trained with the model flags' settings), with
// search's weights (nil: fitted on a validation split of the training
// events).
func addAblation(ctx context.Context, c evalCommand, split *traindata.Split, rep *eval.Report, model *mf.Model, search *eval.BlendSearch, log *slog.Logger) error {
	h := c.cfg.Hyper
	if model != nil {
		h = model.Info().Hyper
	}
	opt := eval.BlendOptions{Workers: c.cfg.Workers}
	var err error
	if search == nil {
		if search, err = eval.FitBlend(ctx, split, h, opt); err != nil {
			return fmt.Errorf("blend ablation: %w", err)
		}
	}
	if model == nil {
		if model, _, err = eval.TrainALS(ctx, split, h, c.cfg.Workers); err != nil {
			return fmt.Errorf("blend ablation: %w", err)
		}
	}
	log.Info("blend ablation", "hyperparameters", fmt.Sprintf("%+v", h))
	for _, k := range []struct{ n, t, r bool }{{true, false, false}, {true, true, false}, {true, true, true}} {
		b := search.Best(k.n, k.t, k.r)
		log.Info("blend weights chosen on validation", "neighbors", b.Params.Neighbor, "transitions", b.Params.Transition,
			"recency", b.Params.Recency, "validation_users", search.Users, fmt.Sprintf("ndcg@%d", search.K), b.NDCG)
	}
	// The ablation's last row is the job's published blend when the job
	// chose one (retrain.TestJobAblationDescribesThePublishedBlend), whose served
	// row rep then has already: not evaluated twice.
	served := c.cfg.Served && !slices.ContainsFunc(rep.Models, func(m eval.ModelResult) bool { return m.Name == eval.ServedBlendName })
	rows, err := eval.AblationRows(ctx, split, model, search, opt, eval.Options{Ks: c.cfg.Ks, Workers: c.cfg.Workers, Served: served})
	if err != nil {
		return fmt.Errorf("blend ablation: %w", err)
	}
	rep.Models = append(rep.Models, rows...)
	return nil
}

// tuneFlags are tune's own flags, beside the evaluation command's.
type tuneFlags struct {
	evalCommand
	factors, iters, regs, alphas, exps string
	opt                                eval.SearchOptions
	asJSON                             bool
}

// newTuneFlags registers tune's flags on a new flag set.
func newTuneFlags(t *tuneFlags, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("recsys-train tune", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = usage(fs, stderr, "Runs the job's hyperparameter search (or a grid search with the --*-grid flags) and prints its\n"+
		"trace and the chosen settings; publishes nothing.")
	t.register(fs)
	fs.StringVar(&t.factors, "factors-grid", "32,64,128", "factor counts to try")
	fs.StringVar(&t.iters, "iterations-grid", "", "iteration counts to try (default: --iterations)")
	fs.StringVar(&t.regs, "reg-grid", "0.01,0.05,0.2,1", "regularizations to try")
	fs.StringVar(&t.alphas, "alpha-grid", "1,5,10,40", "alphas to try")
	fs.StringVar(&t.exps, "reg-exponent-grid", "0,0.5,1", "frequency-regularization exponents to try")
	fs.IntVar(&t.opt.Trials, "trials", 20, "random grid points to evaluate (0 = the whole grid)")
	fs.Uint64Var(&t.opt.Seed, "search-seed", 1, "seed of the random search")
	fs.StringVar(&t.opt.Metric, "metric", "ndcg@10", "metric to maximize")
	fs.BoolVar(&t.asJSON, "json", false, "print the trials as JSON")
	return fs
}

// runTune searches hyperparameters on a validation split of the training
// events and prints the trials, best first.
func runTune(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var tf tuneFlags
	fs := newTuneFlags(&tf, stderr)
	log, err := tf.parse(fs, args, getenv, stderr)
	if err != nil {
		return err
	}
	c, opt, asJSON := tf.evalCommand, tf.opt, tf.asJSON
	factors, iters, regs, alphas, exps := tf.factors, tf.iters, tf.regs, tf.alphas, tf.exps
	sp := &opt.Space
	for _, g := range []struct {
		name string
		err  error
	}{
		{"--factors-grid", func() (err error) { sp.Factors, err = parseInts(factors); return }()},
		{"--iterations-grid", func() (err error) { sp.Iterations, err = parseInts(iters); return }()},
		{"--reg-grid", func() (err error) { sp.Regularization, err = parseFloats(regs); return }()},
		{"--alpha-grid", func() (err error) { sp.Alpha, err = parseFloats(alphas); return }()},
		{"--reg-exponent-grid", func() (err error) { sp.RegExponent, err = parseFloats(exps); return }()},
	} {
		if g.err != nil {
			return cli.Usagef("%s: %v", g.name, g.err)
		}
	}
	c.cfg.Split = "time" // tuning always validates on a time holdout of the training events
	split, err := c.evalSplit(ctx, c.cfg, "", "", log)
	if err != nil {
		return err
	}
	grid := false
	fs.Visit(func(f *flag.Flag) { grid = grid || strings.HasSuffix(f.Name, "-grid") || f.Name == "trials" })
	if !grid {
		// The job's budgeted search (package tune) on the training part.
		if c.job.Retrain.TuneBudget <= 0 {
			return cli.Usagef("--tune-budget must be > 0 (or give a --*-grid flag for a grid search)")
		}
		res, err := tune.Search(ctx, split.Train, tune.Config{Budget: c.job.Retrain.TuneBudget, Base: c.job.Retrain.Hyper, Metric: opt.Metric,
			Workers: c.job.Retrain.Workers, Seed: opt.Seed, Progress: traceLogger(log, c.job.Retrain.TuneBudget)})
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(stdout, res)
		}
		writeTrace(stdout, res)
		return nil
	}
	var spent time.Duration
	opt.Progress = func(t eval.Trial) {
		spent += t.Duration
		eta := spent / time.Duration(t.N) * time.Duration(t.Of-t.N)
		log.Info("trial", "trial", fmt.Sprintf("%d/%d", t.N, t.Of), "factors", t.Hyper.Factors, "regularization", t.Hyper.Regularization,
			"alpha", t.Hyper.Alpha, "reg_exponent", t.Hyper.RegExponent, "iterations", t.Hyper.Iterations, opt.Metric, t.Score,
			"took", t.Duration.Round(time.Millisecond).String(), "eta", eta.Round(time.Second).String())
	}
	trials, err := retrain.Tune(ctx, c.cfg, split, opt)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(stdout, trials)
	}
	fmt.Fprintf(stdout, "%-8s %-8s %-14s %-8s %-12s %s\n", "rank", "factors", "regularization", "alpha", "reg_exponent", opt.Metric)
	for i, t := range trials {
		fmt.Fprintf(stdout, "%-8d %-8d %-14g %-8g %-12g %.4f\n", i+1, t.Hyper.Factors, t.Hyper.Regularization, t.Hyper.Alpha, t.Hyper.RegExponent, t.Score)
	}
	if len(trials) > 0 {
		b := trials[0].Hyper
		fmt.Fprintf(stdout, "\nbest: --factors %d --iterations %d --regularization %g --alpha %g --reg-exponent %g\n",
			b.Factors, b.Iterations, b.Regularization, b.Alpha, b.RegExponent)
	}
	return nil
}

// trainBar is the iteration bar of each fit on a terminal (cli.Progress);
// nil when stderr is not a terminal, where the per-iteration log lines
// (loss, seconds, ETA) are the progress. Log lines go through logWriter,
// which clears the bar first, so the two never run together.
type trainBar struct {
	w     io.Writer
	total int
	phase string
	p     *cli.Progress
}

func newTrainBar(stderr io.Writer, total int) *trainBar {
	if !cli.IsTerminal(stderr) {
		return nil
	}
	b := &trainBar{w: stderr, total: total}
	b.p = cli.NewProgress(stderr, "iterations", int64(total))
	return b
}

// logWriter is where log lines go: through the bar on a terminal.
func (b *trainBar) logWriter(stderr io.Writer) io.Writer {
	if b == nil {
		return stderr
	}
	return b.p.LogWriter()
}

// progress is retrain's per-iteration callback; a new phase (another fit)
// starts a new bar.
func (b *trainBar) progress() func(string, als.IterationStats) {
	if b == nil {
		return nil
	}
	return func(phase string, s als.IterationStats) {
		if phase != b.phase {
			b.phase = phase
			b.p.Clear()
			b.p.Reset()
		}
		detail := fmt.Sprintf("%s, %s/iteration", phase, s.Duration.Round(time.Millisecond))
		if s.Iteration >= b.total {
			b.p.Done(int64(s.Iteration), detail)
			return
		}
		b.p.Update(int64(s.Iteration), detail)
	}
}

// writeHTMLReport writes rep as an HTML report to path ("": nothing).
func writeHTMLReport(path string, rep *eval.Report, gate string, losses []retrain.PhaseLoss, t *mf.Tuning) (err error) {
	if path == "" || rep == nil {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("html report: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("html report: %w", cerr)
		}
	}()
	return modelreport.Write(f, trainjob.ReportInput(rep, gate, losses, t))
}
