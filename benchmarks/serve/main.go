// Command serve is the serving benchmark: one run measures what a recsysd
// serves on this machine for a generated shop of a given size.
//
//	go run ./benchmarks/serve --items 100000 --users 50000 --out benchmarks/serve/results
//	make bench-serve                      # the same with the defaults
//
// It starts its own redis-server on a free port (or uses --redis-addr),
// builds a model that really has --items items (item factors generated
// directly: category centres plus noise, so that similar items exist; a
// shop generated from events covers only the items that got events) with
// its IVF index section (as recsys-train publishes it, so recsysd loads
// the cells instead of running k-means) and publishes it to the Redis
// registry, starts recsysd in this process (the
// daemon package, exactly what cmd/recsysd runs: nothing to build, and the
// benchmark can set any flag's value), imports --events-per-user views per
// user through the gRPC API, and measures, each phase for --duration:
//
//  1. the trivial-RPC ceiling: grpc.health.v1 Check with ghz, closed loop
//     (-c --ghz-concurrency);
//  2. Recommend closed loop with ghz, the same concurrency;
//  3. Recommend open loop at each of --rates with internal/loadgen (ghz's
//     rate mode waits on slow calls and hides tail latency);
//  4. BatchRecommend alone: --push-streams streams of --push-users users
//     each draining for --duration (push's solo users/s); then Recommend
//     open loop at --push-rate alone and while the same streams drain (the
//     note gives push's users/s there and its share of the solo figure);
//  5. SimilarItems open loop at --similar-rate;
//  6. with --swaps N: Recommend open loop at --push-rate while the model
//     is hot-swapped N times (ActivateModel between two published versions
//     of the same size, each waited for), counting the failed calls.
//
// Requests: user_id Zipf(1) over the generated users, item_id Zipf(1) over
// the items, count 20. The open-loop generator and the server share this
// process (ghz is a process of its own). It writes serve.md (a Markdown
// table) and serve.json to --out.
//
// Degraded answers (Recommend answered without the profile store because
// Redis did not answer within --profile-budget) are fast and would flatter
// the latencies: every phase counts them (the open-loop generator from the
// answers, ghz phases from recsysd's recsys_degraded_answers_total, which
// also gives the causes), and a phase whose degraded share is above
// --max-degraded-share is flagged in the table and the JSON, and makes the
// run exit with an error after the results are written.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/recsys-dev/recsys/benchmarks/internal/benchredis"
	"github.com/recsys-dev/recsys/internal/cli"
	"github.com/recsys-dev/recsys/internal/coalesce"
	"github.com/recsys-dev/recsys/internal/daemon"
	"github.com/recsys-dev/recsys/internal/itemindex"
	"github.com/recsys-dev/recsys/internal/loadgen"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/pushsched"
	"github.com/recsys-dev/recsys/internal/recommend"
	"github.com/recsys-dev/recsys/internal/registry"
	"github.com/recsys-dev/recsys/internal/server"
	"github.com/recsys-dev/recsys/internal/synth"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

func main() { os.Exit(cli.Exit("bench-serve", cli.Main(run), os.Stderr)) }

// options are the flags.
type options struct {
	items, users, factors, eventsPerUser int
	redisAddr, out, ghz                  string
	duration, warmup                     time.Duration
	ghzConcurrency                       int
	rates                                []float64
	pushRate, similarRate                float64
	pushStreams, pushUsers               int
	coalesceMaxBlock                     int
	indexMinItems, swaps                 int
	seed                                 uint64
	maxDegraded                          float64
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench-serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.items, "items", 100_000, "items in the model (all of them: the factors are generated)")
	fs.IntVar(&o.users, "users", 50_000, "users u1..uN with imported histories")
	fs.IntVar(&o.factors, "factors", 64, "factors per item")
	fs.IntVar(&o.eventsPerUser, "events-per-user", 20, "views imported per user through RecordEvents")
	fs.StringVar(&o.redisAddr, "redis-addr", "", "an existing Redis to use (a fresh key prefix); empty: start a redis-server on a free port")
	fs.StringVar(&o.out, "out", "", "directory for serve.md and serve.json (empty: stdout only)")
	fs.StringVar(&o.ghz, "ghz", "go tool ghz", "ghz command (pinned in go.mod); empty: skip the ghz phases")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "measured time of each phase")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "open-loop warmup before each measured phase")
	fs.IntVar(&o.ghzConcurrency, "ghz-concurrency", 50, "ghz -c: concurrent closed-loop callers")
	rates := fs.String("rates", "500,1000,2000", "open-loop Recommend rates, calls/s, comma-separated")
	fs.Float64Var(&o.pushRate, "push-rate", 400, "Recommend rate alone and while BatchRecommend streams drain")
	fs.IntVar(&o.pushStreams, "push-streams", 6, "concurrent BatchRecommend streams")
	fs.IntVar(&o.pushUsers, "push-users", 10_000, "users per BatchRecommend stream")
	fs.Float64Var(&o.similarRate, "similar-rate", 500, "open-loop SimilarItems rate")
	fs.IntVar(&o.coalesceMaxBlock, "coalesce-max-block", coalesce.DefaultMaxBlock, "recsysd --coalesce-max-block (0: off)")
	fs.IntVar(&o.indexMinItems, "index-min-items", recommend.DefaultIndexMinItems, "recsysd --index-min-items (0: the index for every model)")
	fs.IntVar(&o.swaps, "swaps", 4, "hot swaps of the model (ActivateModel) during the last Recommend open-loop phase; 0: no swap phase")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed of the factors, histories and requests")
	fs.Float64Var(&o.maxDegraded, "max-degraded-share", 0.01, "flag (and fail the run after writing the results) a phase with a larger share of degraded answers")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, r := range strings.Split(*rates, ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		v, err := strconv.ParseFloat(r, 64)
		if err != nil || !(v > 0) {
			return o, fmt.Errorf("--rates: %q is not a rate > 0", r)
		}
		o.rates = append(o.rates, v)
	}
	switch {
	case o.items < 1 || o.users < 1 || o.factors < 1 || o.eventsPerUser < 1:
		return o, fmt.Errorf("--items, --users, --factors and --events-per-user must be >= 1")
	case o.duration <= 0 || o.warmup < 0:
		return o, fmt.Errorf("--duration must be > 0 and --warmup >= 0")
	case o.pushStreams < 0 || o.pushUsers < 1 || !(o.pushRate > 0) || !(o.similarRate > 0) || o.ghzConcurrency < 1:
		return o, fmt.Errorf("--push-streams >= 0, --push-users >= 1, --push-rate, --similar-rate, --ghz-concurrency > 0")
	case o.swaps < 0 || o.indexMinItems < 0:
		return o, fmt.Errorf("--swaps and --index-min-items must be >= 0")
	}
	return o, nil
}

// Row is one measured phase.
type Row struct {
	Phase   string  `json:"phase"`
	Tool    string  `json:"tool"`
	Offered float64 `json:"offered_per_s,omitempty"` // open loop: the target rate
	Conc    int     `json:"concurrency,omitempty"`   // closed loop: callers
	Rate    float64 `json:"ok_per_s"`
	P50     float64 `json:"p50_ms"`
	P95     float64 `json:"p95_ms"`
	P99     float64 `json:"p99_ms"`
	Max     float64 `json:"max_ms,omitempty"`
	Errors  int64   `json:"errors"`
	Dropped int64   `json:"dropped,omitempty"`
	// PushUsers is BatchRecommend's answered users/s (the push phases).
	PushUsers float64 `json:"push_users_per_s,omitempty"`
	// Swaps are the model hot swaps done during the phase.
	Swaps int `json:"swaps,omitempty"`
	// OK counts the successful answers, Degraded those of them given
	// without the profile store; DegradedShare is Degraded/OK.
	OK            int64   `json:"ok"`
	Degraded      int64   `json:"degraded"`
	DegradedShare float64 `json:"degraded_share"`
	// DegradedCauses is recsysd's count by cause over the phase, warmup
	// included (recsys_degraded_answers_total).
	DegradedCauses map[string]int64 `json:"degraded_causes,omitempty"`
	// Flagged: DegradedShare is above --max-degraded-share.
	Flagged bool   `json:"flagged,omitempty"`
	Note    string `json:"note,omitempty"`
}

// Result is the whole run.
type Result struct {
	Items, Users, Factors int
	ModelItems            int64 // what the server reports for its model
	Events                int64
	ImportSeconds         float64
	GOMAXPROCS            int
	CoalesceMaxBlock      int
	LoadAvg               string
	MaxDegradedShare      float64
	Rows                  []Row
}

func run(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }

	addr := o.redisAddr
	if addr == "" {
		stopRedis, a, err := benchredis.Start(ctx, "bench-serve")
		if err != nil {
			return err
		}
		defer stopRedis()
		addr = a
		logf("redis-server on %s", addr)
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer func() { _ = rdb.Close() }()
	prefix := fmt.Sprintf("bench-serve-%d", time.Now().UnixNano())
	if o.redisAddr != "" {
		defer func() {
			if err := deletePrefix(context.WithoutCancel(ctx), rdb, prefix); err != nil {
				logf("delete the run's keys: %v", err)
			}
		}()
	}

	// The models: every item has factors. With --swaps, a second version
	// (other factors, the same items) to swap with, published first so
	// the benchmark's model is the current one.
	reg, err := registry.NewRedis(rdb, registry.Options{Prefix: prefix})
	if err != nil {
		return err
	}
	var versions []string
	seeds := []uint64{o.seed}
	if o.swaps > 0 {
		seeds = []uint64{o.seed + 1, o.seed}
	}
	var m *mf.Model
	for _, seed := range seeds {
		t0 := time.Now()
		if m, err = generateModel(o, seed); err != nil {
			return err
		}
		v, err := reg.Publish(ctx, m)
		if err != nil {
			return fmt.Errorf("publish model: %w", err)
		}
		versions = append(versions, v.Name())
		logf("model %s of %d items × %d factors generated, indexed and published in %v", v.Name(), m.NumItems(), m.Factors(), time.Since(t0).Round(time.Millisecond))
	}

	// recsysd, in this process.
	limits, err := server.ParseRateLimits("pages=0,events=0,push=0,operator=0", server.DefaultRateLimits())
	if err != nil {
		return err
	}
	d, err := daemon.New(daemon.Config{
		GRPCAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0", RedisAddr: addr, Prefix: prefix, InsecureNoAuth: true, RateLimits: limits,
		ModelPoll: time.Second, DrainTimeout: 5 * time.Second,
		Coalesce: coalesce.Config{MaxBlock: o.coalesceMaxBlock}, IndexMinItems: indexMinItems(o.indexMinItems),
		// Every stream comes from the one anonymous caller.
		Push: pushsched.Config{StreamsPerCaller: max(o.pushStreams, pushsched.DefaultStreamsPerCaller)},
	}, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	dctx, stopDaemon := context.WithCancel(ctx)
	daemonDone := make(chan error, 1)
	go func() { daemonDone <- d.Run(dctx) }()
	defer func() {
		stopDaemon()
		if err := <-daemonDone; err != nil {
			logf("recsysd: %v", err)
		}
	}()
	srv := d.Addr().String()
	conn, err := grpc.NewClient(srv, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	if err := waitServing(ctx, conn); err != nil {
		return err
	}
	info, err := servedModel(ctx, conn)
	if err != nil {
		return err
	}
	// The last item must be in the served model: SimilarItems of it is
	// answered from the factors, not from popular items.
	sim, err := recsysv1.NewRecommendationServiceClient(conn).SimilarItems(ctx,
		&recsysv1.SimilarItemsRequest{ItemId: synth.ItemID(o.items - 1), Count: 20})
	if err != nil {
		return fmt.Errorf("SimilarItems: %w", err)
	}
	if sim.GetSource() != recsysv1.Source_SOURCE_SIMILAR {
		return fmt.Errorf("SimilarItems of the last item %s answered from %v: it is not in the served model", synth.ItemID(o.items-1), sim.GetSource())
	}
	res := Result{Items: o.items, Users: o.users, Factors: o.factors, ModelItems: info.GetModel().GetItems(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), CoalesceMaxBlock: o.coalesceMaxBlock, MaxDegradedShare: o.maxDegraded}
	logf("recsysd on %s serves model %s with %d items", srv, info.GetModel().GetVersion(), res.ModelItems)
	if res.ModelItems != int64(o.items) {
		return fmt.Errorf("the served model has %d items, want %d", res.ModelItems, o.items)
	}

	t0 := time.Now()
	if res.Events, err = importEvents(ctx, conn, o); err != nil {
		return err
	}
	res.ImportSeconds = time.Since(t0).Seconds()
	logf("imported %d events in %.1fs", res.Events, res.ImportSeconds)

	metricsURL := "http://" + d.MetricsAddr().String() + "/metrics"
	before, err := degradedByCause(ctx, metricsURL)
	if err != nil {
		return err
	}
	phase := func(r Row, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", r.Phase, err)
		}
		after, err := degradedByCause(ctx, metricsURL)
		if err != nil {
			return err
		}
		r.DegradedCauses = map[string]int64{}
		var server int64
		for cause, n := range after {
			if dn := n - before[cause]; dn > 0 {
				r.DegradedCauses[cause] = dn
				server += dn
			}
		}
		before = after
		if r.Tool != "loadgen" { // ghz and the push phases do not look into the answers
			r.Degraded = server
		}
		r.flag(o.maxDegraded)
		logf("%s: %.0f/s ok, p50 %.2f ms, p99 %.2f ms, errors %d, dropped %d, degraded %d (%.2f%%) %v %s", r.Phase, r.Rate, r.P50, r.P99,
			r.Errors, r.Dropped, r.Degraded, 100*r.DegradedShare, r.DegradedCauses, r.Note)
		res.Rows = append(res.Rows, r)
		return nil
	}
	if o.ghz != "" {
		if err := phase(ghzRun(ctx, o, srv, "health Check ceiling", "grpc.health.v1.Health.Check", []any{map[string]any{}})); err != nil {
			return err
		}
		if err := phase(ghzRun(ctx, o, srv, "Recommend closed loop", "recsys.v1.RecommendationService.Recommend", recommendData(o, 20_000))); err != nil {
			return err
		}
	}
	for _, rate := range o.rates {
		if err := phase(openLoop(ctx, conn, o, "Recommend open loop", loadgen.Recommend, rate)); err != nil {
			return err
		}
	}
	if o.pushStreams > 0 {
		solo, err := pushAlone(ctx, conn, o)
		if err := phase(solo, err); err != nil {
			return err
		}
		if err := phase(openLoop(ctx, conn, o, "Recommend alone", loadgen.Recommend, o.pushRate)); err != nil {
			return err
		}
		if err := phase(withPush(ctx, conn, o, solo.PushUsers)); err != nil {
			return err
		}
	}
	if err := phase(openLoop(ctx, conn, o, "SimilarItems open loop", loadgen.Similar, o.similarRate)); err != nil {
		return err
	}
	if o.swaps > 0 {
		if err := phase(withSwaps(ctx, conn, o, versions)); err != nil {
			return err
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	st := res.markdown()
	fmt.Fprint(stdout, st)
	if o.out != "" {
		if err := os.MkdirAll(o.out, 0o755); err != nil {
			return err
		}
		js, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(o.out, "serve.json"), append(js, '\n'), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(o.out, "serve.md"), []byte(st), 0o644); err != nil {
			return err
		}
	}
	if flagged := res.flagged(); len(flagged) > 0 {
		return fmt.Errorf("%d phase(s) answered more than %.1f%% degraded (results written): %s", len(flagged), 100*o.maxDegraded, strings.Join(flagged, "; "))
	}
	return nil
}

// flag sets DegradedShare and Flagged, and says so in the note.
func (r *Row) flag(maxShare float64) {
	r.DegradedShare = 0
	if r.OK > 0 {
		r.DegradedShare = float64(r.Degraded) / float64(r.OK)
	}
	r.Flagged = r.DegradedShare > maxShare
	if r.Flagged {
		r.Note = strings.TrimSpace(fmt.Sprintf("**DEGRADED %.1f%% > %.1f%%** %s", 100*r.DegradedShare, 100*maxShare, r.Note))
	}
}

// flagged lists the flagged phases.
func (r Result) flagged() []string {
	var out []string
	for _, x := range r.Rows {
		if x.Flagged {
			out = append(out, fmt.Sprintf("%s at %s: %d of %d (%.1f%%)", x.Phase, x.load(), x.Degraded, x.OK, 100*x.DegradedShare))
		}
	}
	return out
}

func (x Row) load() string {
	if x.Conc > 0 {
		return fmt.Sprintf("-c %d closed", x.Conc)
	}
	if x.Offered == 0 {
		return "streams"
	}
	return fmt.Sprintf("%.0f/s open", x.Offered)
}

// degradedByCause reads recsysd's recsys_degraded_answers_total, summed
// over the methods, by cause.
func degradedByCause(ctx context.Context, url string) (map[string]int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read recsysd's metrics: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read recsysd's metrics: %w", err)
	}
	return parseDegraded(string(body))
}

// parseDegraded sums the samples of recsys_degraded_answers_total in a
// Prometheus text exposition by their cause label.
func parseDegraded(text string) (map[string]int64, error) {
	out := map[string]int64{}
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, "recsys_degraded_answers_total{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			return nil, fmt.Errorf("metrics line %q", line)
		}
		cause := ""
		for _, l := range strings.Split(labels, ",") {
			if v, ok := strings.CutPrefix(l, `cause="`); ok {
				cause = strings.TrimSuffix(v, `"`)
			}
		}
		n, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || cause == "" {
			return nil, fmt.Errorf("metrics line %q", line)
		}
		out[cause] += int64(n)
	}
	return out, nil
}

func (r Result) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Model: %d items (served: %d) × %d factors; %d users, %d events imported in %.0fs; GOMAXPROCS %d; "+
		"--coalesce-max-block %d; load average at the end %s. Degraded: answers given without the profile store "+
		"(share of the OK answers; flagged above %.1f%%), by cause from recsysd's metrics.\n\n", r.Items, r.ModelItems, r.Factors, r.Users, r.Events,
		r.ImportSeconds, r.GOMAXPROCS, r.CoalesceMaxBlock, r.LoadAvg, 100*r.MaxDegradedShare)
	b.WriteString("| phase | tool | load | ok/s | p50 ms | p95 ms | p99 ms | errors | dropped | degraded | note |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, x := range r.Rows {
		deg := fmt.Sprintf("%d (%.2f%%)", x.Degraded, 100*x.DegradedShare)
		if len(x.DegradedCauses) > 0 {
			causes := slices.Sorted(maps.Keys(x.DegradedCauses))
			for i, c := range causes {
				causes[i] = fmt.Sprintf("%s %d", c, x.DegradedCauses[c])
			}
			deg += " " + strings.Join(causes, ", ")
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f | %.2f | %.2f | %.2f | %d | %d | %s | %s |\n",
			x.Phase, x.Tool, x.load(), x.Rate, x.P50, x.P95, x.P99, x.Errors, x.Dropped, deg, x.Note)
	}
	return b.String()
}

// deletePrefix deletes the run's keys from a Redis the benchmark did not
// start.
func deletePrefix(ctx context.Context, rdb *redis.Client, prefix string) error {
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		if keys = append(keys, iter.Val()); len(keys) == 1000 {
			if err := rdb.Unlink(ctx, keys...).Err(); err != nil {
				return err
			}
			keys = keys[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(keys) > 0 {
		return rdb.Unlink(ctx, keys...).Err()
	}
	return nil
}

// categories of the generated model: items cluster around their
// category's centre, so SimilarItems and the histories have structure.
const categories = 200

// generateModel builds the model directly from generated factors (seed),
// with its IVF index section.
func generateModel(o options, seed uint64) (*mf.Model, error) {
	rng := rand.New(rand.NewPCG(seed, 11))
	f := o.factors
	centres := make([]float32, categories*f)
	for i := range centres {
		centres[i] = float32(rng.NormFloat64() * 0.3)
	}
	ids := make([]string, o.items)
	factors := make([]float32, o.items*f)
	for i := range o.items {
		ids[i] = synth.ItemID(i)
		c := i % categories
		for j := range f {
			factors[i*f+j] = centres[c*f+j] + float32(rng.NormFloat64()*0.1)
		}
	}
	info := mf.Info{
		Users: int64(o.users), Items: int64(o.items), TrainedAt: time.Now().UTC(),
		Hyper: mf.Hyperparameters{Factors: f, Regularization: 0.1, Alpha: 10, Iterations: 1},
	}
	m, err := mf.New(info, ids, factors)
	if err != nil {
		return nil, err
	}
	ix, err := itemindex.BuildIVF(m, itemindex.IVFOptions{Seed: seed})
	if err != nil {
		return nil, err
	}
	sec, _ := ix.Section()
	return m.WithSections(sec)
}

// indexMinItems is daemon.Config's IndexMinItems for the flag's value
// (0: every model, which the config spells negative).
func indexMinItems(v int) int {
	if v == 0 {
		return -1
	}
	return v
}

func waitServing(ctx context.Context, conn *grpc.ClientConn) error {
	hc := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("recsysd not SERVING after 2 minutes: %v %v", r.GetStatus(), err)
		}
		<-time.After(50 * time.Millisecond) // polling health is what a probe does
	}
}

// servedModel waits until recsysd has loaded a model and returns it.
func servedModel(ctx context.Context, conn *grpc.ClientConn) (*recsysv1.GetModelResponse, error) {
	mc := recsysv1.NewModelServiceClient(conn)
	for i := 0; ; i++ {
		r, err := mc.GetModel(ctx, &recsysv1.GetModelRequest{})
		if err != nil {
			return nil, fmt.Errorf("GetModel: %w", err)
		}
		if r.GetModel() != nil {
			return r, nil
		}
		if i == 1200 {
			return nil, errors.New("recsysd loaded no model in 2 minutes")
		}
		<-time.After(100 * time.Millisecond) // polling, as recsysctl model does
	}
}

// importEvents sends eventsPerUser views per user, each user's items drawn
// from two categories (Zipf within them), in batches of 1000.
func importEvents(ctx context.Context, conn *grpc.ClientConn, o options) (int64, error) {
	ec := recsysv1.NewEventServiceClient(conn)
	perCat := max(1, o.items/categories)
	within, err := loadgen.NewZipf(perCat, 1)
	if err != nil {
		return 0, err
	}
	var sent atomic.Int64
	users := make(chan int)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(users)
		for u := 0; u < o.users; u += 1000 / o.eventsPerUser {
			select {
			case users <- u:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	per := max(1, 1000/o.eventsPerUser) // users per batch
	now := time.Now()
	for w := range 4 {
		g.Go(func() error {
			rng := rand.New(rand.NewPCG(o.seed, uint64(100+w)))
			for start := range users {
				var evs []*recsysv1.Event
				for u := start; u < min(start+per, o.users); u++ {
					cats := [2]int{rng.IntN(categories), rng.IntN(categories)}
					for k := range o.eventsPerUser {
						c := cats[k%2]
						item := min(o.items-1, c+categories*within.Draw(rng))
						evs = append(evs, &recsysv1.Event{
							EventId: fmt.Sprintf("bench-%d-%d", u, k), UserId: synth.UserID(u), ItemId: synth.ItemID(item),
							Type: recsysv1.EventType_EVENT_TYPE_VIEW, Quantity: 1,
							Timestamp: timestamppb.New(now.Add(-time.Duration(o.eventsPerUser-k) * time.Minute)),
						})
					}
				}
				if err := recordWithRetry(gctx, ec, &recsysv1.RecordEventsRequest{Events: evs}); err != nil {
					return err
				}
				sent.Add(int64(len(evs)))
			}
			return nil
		})
	}
	err = g.Wait()
	return sent.Load(), err
}

// recordWithRetry sends one batch, retrying a transient failure (a busy
// machine's Redis missing recsysd's 1 s timeouts answers Unavailable) up
// to importRetries times with backoff: the events' ids make a retry
// idempotent, and one slow moment must not abort a run of many minutes.
func recordWithRetry(ctx context.Context, ec recsysv1.EventServiceClient, req *recsysv1.RecordEventsRequest) error {
	wait := 200 * time.Millisecond
	for i := 0; ; i++ {
		_, err := ec.RecordEvents(ctx, req)
		if err == nil {
			return nil
		}
		if !transient(err) || i == importRetries {
			return fmt.Errorf("RecordEvents (after %d retries): %w", i, err)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// transient reports whether err is worth a retry: the server or its Redis
// was busy, not the request wrong.
func transient(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
		return true
	}
	return false
}

// importRetries bounds recordWithRetry: about a minute of backoff.
const importRetries = 15

// recommendData is ghz's request list (used round-robin): n Recommend
// requests of users drawn Zipf(1).
func recommendData(o options, n int) []any {
	z, _ := loadgen.NewZipf(o.users, 1)
	rng := rand.New(rand.NewPCG(o.seed, 7))
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"user_id": synth.UserID(z.Draw(rng)), "count": 20}
	}
	return out
}

// ghzReport is the part of ghz's JSON output used here.
type ghzReport struct {
	Count        int64            `json:"count"`
	RPS          float64          `json:"rps"`
	StatusCodes  map[string]int64 `json:"statusCodeDistribution"`
	LatencyDistr []struct {
		Percentage int   `json:"percentage"`
		Latency    int64 `json:"latency"` // ns
	} `json:"latencyDistribution"`
	Slowest int64 `json:"slowest"`
}

// ghzRun runs ghz closed loop against method with the request list data.
func ghzRun(ctx context.Context, o options, srv, phase, method string, data []any) (Row, error) {
	row := Row{Phase: phase, Tool: "ghz", Conc: o.ghzConcurrency}
	f, err := os.CreateTemp("", "bench-serve-ghz-*.json")
	if err != nil {
		return row, err
	}
	defer func() { _ = os.Remove(f.Name()) }()
	if err := json.NewEncoder(f).Encode(data); err != nil {
		return row, err
	}
	if err := f.Close(); err != nil {
		return row, err
	}
	args := strings.Fields(o.ghz)
	args = append(args, "--insecure", "--call", method, "--data-file", f.Name(), "-c", strconv.Itoa(o.ghzConcurrency),
		"--connections", "4", "-z", o.duration.String(), "--timeout", "10s", "--format", "json", "--skipFirst", "100", srv)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return row, fmt.Errorf("%s: %w: %s", o.ghz, err, errOut.String())
	}
	var r ghzReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return row, fmt.Errorf("ghz output: %w", err)
	}
	ok := r.StatusCodes["OK"]
	row.OK = ok
	row.Errors = r.Count - ok
	if row.Errors > 0 {
		// Calls cut off by the end of the run (-z) count here too.
		row.Note = fmt.Sprintf("status codes %v", r.StatusCodes)
	}
	if r.Count > 0 {
		row.Rate = r.RPS * float64(ok) / float64(r.Count)
	}
	for _, l := range r.LatencyDistr {
		ms := float64(l.Latency) / 1e6
		switch l.Percentage {
		case 50:
			row.P50 = ms
		case 95:
			row.P95 = ms
		case 99:
			row.P99 = ms
		}
	}
	row.Max = float64(r.Slowest) / 1e6
	return row, nil
}

// openLoop runs internal/loadgen with one kind of call at rate.
func openLoop(ctx context.Context, conn *grpc.ClientConn, o options, phase string, kind loadgen.Kind, rate float64) (Row, error) {
	var mix loadgen.Mix
	mix[kind] = 1
	rep, err := loadgen.Run(ctx, []grpc.ClientConnInterface{conn}, loadgen.Config{
		Rate: rate, Duration: o.duration, Warmup: o.warmup, MaxInFlight: 2000, Mix: mix,
		Users: o.users, Items: o.items, UserSkew: 1, ItemSkew: 1, EventsPerBatch: 1, Count: 20,
		Seed: o.seed, Timeout: 5 * time.Second, RunID: strconv.FormatInt(time.Now().UnixNano(), 36),
	}, nil)
	row := Row{Phase: phase, Tool: "loadgen", Offered: rate}
	if err != nil {
		return row, err
	}
	k := rep.Total
	row.Rate, row.P50, row.P95, row.P99, row.Max = k.OKQPS, k.Latency.P50, k.Latency.P95, k.Latency.P99, k.Latency.Max
	row.Errors, row.Dropped, row.OK, row.Degraded = k.Errors, k.Dropped, k.OK, k.Degraded
	return row, nil
}

// withPush runs Recommend open loop at --push-rate while --push-streams
// BatchRecommend streams drain; the note has push's users/s and their share
// of solo, push's users/s alone.
func withPush(ctx context.Context, conn *grpc.ClientConn, o options, solo float64) (Row, error) {
	var row Row
	var err error
	answered, elapsed, retried, perr := drainPush(ctx, conn, o, func() {
		row, err = openLoop(ctx, conn, o, fmt.Sprintf("Recommend with %d BatchRecommend streams", o.pushStreams), loadgen.Recommend, o.pushRate)
	})
	if perr != nil {
		return row, fmt.Errorf("BatchRecommend: %w", perr)
	}
	users := float64(answered) / elapsed
	row.PushUsers = users
	row.Note = fmt.Sprintf("push %.0f users/s", users)
	if solo > 0 {
		row.Note += fmt.Sprintf(" = %.0f%% of solo", 100*users/solo)
	}
	if retried > 0 {
		row.Note += fmt.Sprintf(", %d push streams restarted after a transient error", retried)
	}
	return row, err
}

// pushAlone lets --push-streams BatchRecommend streams drain alone for
// --warmup plus --duration: push's solo users/s.
func pushAlone(ctx context.Context, conn *grpc.ClientConn, o options) (Row, error) {
	row := Row{Phase: fmt.Sprintf("BatchRecommend alone, %d streams", o.pushStreams), Tool: "grpc"}
	answered, elapsed, retried, err := drainPush(ctx, conn, o, func() {
		select {
		case <-time.After(o.warmup + o.duration):
		case <-ctx.Done():
		}
	})
	if err != nil {
		return row, fmt.Errorf("BatchRecommend: %w", err)
	}
	users := float64(answered) / elapsed
	row.PushUsers, row.Rate, row.OK = users, users, answered // an answer is a user
	row.Note = fmt.Sprintf("push %.0f users/s", users)
	if retried > 0 {
		row.Note += fmt.Sprintf(", %d push streams restarted after a transient error", retried)
	}
	return row, nil
}

// drainPush keeps --push-streams BatchRecommend streams of --push-users
// users draining while during runs and returns the users answered, the
// seconds they took, the streams restarted after a transient error, and
// the first other error.
func drainPush(ctx context.Context, conn *grpc.ClientConn, o options, during func()) (answeredUsers int64, seconds float64, restarted int64, err error) {
	rc := recsysv1.NewRecommendationServiceClient(conn)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var answered, retried atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, o.pushStreams)
	start := time.Now()
	for s := range o.pushStreams {
		ids := make([]string, o.pushUsers)
		for i := range ids {
			ids[i] = synth.UserID((s*o.pushUsers + i) % o.users)
		}
		wg.Go(func() {
			// A stream that fails for a busy server (Unavailable, …) is
			// counted and started again after a pause; any other error
			// ends the run.
			failed := func(err error) bool {
				if pctx.Err() != nil {
					return false
				}
				if !transient(err) {
					errs <- err
					return true
				}
				retried.Add(1)
				select {
				case <-time.After(200 * time.Millisecond):
				case <-pctx.Done():
				}
				return false
			}
			for pctx.Err() == nil { // keep draining until the measured phase ends
				st, err := rc.BatchRecommend(pctx, &recsysv1.BatchRecommendRequest{UserIds: ids, Count: 20})
				if err != nil {
					if failed(err) {
						return
					}
					continue
				}
				for {
					if _, err := st.Recv(); err != nil {
						if !errors.Is(err, io.EOF) && failed(err) {
							return
						}
						break
					}
					answered.Add(1)
				}
			}
		})
	}
	during()
	elapsed := time.Since(start).Seconds()
	cancel()
	wg.Wait()
	select {
	case err = <-errs:
	default:
	}
	return answered.Load(), elapsed, retried.Load(), err
}

// withSwaps runs Recommend open loop at --push-rate while the model is
// swapped --swaps times between versions (ActivateModel, then waiting
// until recsysd serves it), spread over the measured time; the phase lasts
// at least --duration and until the last swap is served (at most
// swapBudget more); the errors are the calls that failed.
func withSwaps(ctx context.Context, conn *grpc.ClientConn, o options, versions []string) (Row, error) {
	mc := recsysv1.NewModelServiceClient(conn)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := 0
	swapErr := make(chan error, 1)
	swapsDone := make(chan struct{})
	go func() {
		defer close(swapsDone)
		gap := o.duration / time.Duration(o.swaps+1)
		select {
		case <-time.After(o.warmup):
		case <-sctx.Done():
			return
		}
		for k := range o.swaps {
			select {
			case <-time.After(gap):
			case <-sctx.Done():
				return
			}
			v := versions[k%len(versions)] // the other version first
			if _, err := mc.ActivateModel(sctx, &recsysv1.ActivateModelRequest{Version: v}); err != nil {
				swapErr <- fmt.Errorf("ActivateModel %s: %w", v, err)
				return
			}
			for {
				r, err := mc.GetModel(sctx, &recsysv1.GetModelRequest{})
				if err != nil {
					swapErr <- fmt.Errorf("GetModel: %w", err)
					return
				}
				if r.GetModel().GetVersion() == v {
					break
				}
				select {
				case <-time.After(20 * time.Millisecond): // polling, as recsysctl model does
				case <-sctx.Done():
					return
				}
			}
			done++
		}
	}()
	lctx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	go func() {
		select {
		case <-time.After(o.warmup + o.duration):
		case <-lctx.Done():
			return
		}
		select {
		case <-swapsDone:
		case <-lctx.Done():
		}
		stopLoad()
	}()
	lo := o
	lo.duration += swapBudget // ended by stopLoad
	row, err := openLoop(lctx, conn, lo, fmt.Sprintf("Recommend during %d model swaps", o.swaps), loadgen.Recommend, o.pushRate)
	row.Offered = o.pushRate
	cancel()
	<-swapsDone
	select {
	case serr := <-swapErr:
		if ctx.Err() == nil {
			return row, serr
		}
	default:
	}
	row.Swaps = done
	row.Note = fmt.Sprintf("%d of %d swaps done (%d items each), %d failed calls", done, o.swaps, o.items, row.Errors)
	return row, err
}

// swapBudget bounds how much longer than --duration the swap phase waits
// for its last swap.
const swapBudget = 10 * time.Minute
