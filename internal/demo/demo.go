// Package demo runs the whole product on one machine with nothing but Go: a
// recsysd (the production wiring of internal/daemon) on the embedded store, a
// synthetic shop loaded through the gRPC API, the retraining job publishing
// to the registry the server watches, and a shopper whose next events change
// their recommendations at once.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/recsys-dev/recsys/client"
	"github.com/recsys-dev/recsys/internal/daemon"
	"github.com/recsys-dev/recsys/internal/dataset"
	"github.com/recsys-dev/recsys/internal/ingest"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/retrain"
	"github.com/recsys-dev/recsys/internal/synth"
	"github.com/recsys-dev/recsys/internal/trainjob"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// Config sizes the demo.
type Config struct {
	Users, Items, Events int
	Seed                 uint64
	Factors, Iterations  int
	GRPCAddr             string
	// HTTPAddr, when set, also serves the API as HTTP/JSON there.
	HTTPAddr    string
	KeepServing bool
	// Serving, when set, is told the gRPC and HTTP addresses (HTTP empty
	// when off) once the demo is done and the server keeps serving.
	Serving func(grpcAddr, httpAddr string)
}

// Run runs the demo, printing its story on stdout.
func Run(ctx context.Context, c Config, stdout, stderr io.Writer) error {
	started := time.Now()
	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// 1. A recsysd with the production wiring, on the embedded store.
	d, err := daemon.New(daemon.Config{GRPCAddr: c.GRPCAddr, HTTPAddr: c.HTTPAddr, ModelPoll: time.Second, PopularRefresh: time.Second}, log)
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			fmt.Fprintln(stderr, "recsysd:", err)
		}
	}()
	api, err := client.New(d.Addr().String())
	if err != nil {
		return err
	}
	defer api.Close()
	if err := waitServing(ctx, api); err != nil {
		return err
	}
	say("== recsysd serving on %s (embedded demo store at %s)", d.Addr(), d.RedisAddr())

	// 2. A synthetic shop, loaded through the gRPC API.
	dir, err := os.MkdirTemp("", "recsys-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	end := time.Now().Add(-time.Minute).UTC()
	shopCfg := synth.Config{Users: c.Users, Items: c.Items, Events: c.Events, Seed: c.Seed, Start: end.Add(-60 * 24 * time.Hour), End: end}
	eventsCSV, catalogCSV := filepath.Join(dir, "events.csv"), filepath.Join(dir, "catalog.csv")
	n, err := ingest.Generate(ctx, shopCfg, eventsCSV, catalogCSV, io.Discard)
	if err != nil {
		return err
	}
	say("== generated a shop: %d users, %d items, %d events over 60 days", c.Users, c.Items, n)
	cat, err := ingest.ImportCatalog(ctx, api, catalogCSV, 10*time.Second, io.Discard)
	if err != nil {
		return err
	}
	evs, err := ingest.ImportEvents(ctx, api, eventsCSV, dataset.CSV, 10*time.Second, io.Discard)
	if err != nil {
		return err
	}
	say("== loaded through the gRPC API: %d catalog items, %d events (%d accepted, %d rejected) in %.1fs",
		cat.Accepted, evs.Sent, evs.Accepted, evs.Rejected, cat.Seconds+evs.Seconds)

	// 3. The retraining job reads the event stream, trains, gates and
	// publishes to the registry the server watches.
	// The same assembly as recsys-train's (package trainjob): the run is
	// recorded and its HTML report stored with the version it published.
	job, err := trainjob.Open(ctx, trainjob.Config{
		RedisAddr: d.RedisAddr(), PublishRedis: true, BoughtLists: true,
		Retrain: retrain.Config{
			Hyper:  mf.Hyperparameters{Factors: c.Factors, Iterations: c.Iterations, Regularization: 0.05, Alpha: 10, Seed: 1},
			Logger: log,
		},
	})
	if err != nil {
		return err
	}
	defer job.Close()
	trainStart := time.Now()
	out, err := job.Run(ctx)
	if err != nil {
		return fmt.Errorf("retrain: %w", err)
	}
	version := out.Versions[0].Name()
	say("== trained implicit ALS (%d factors, %d iterations) on %d events in %.1fs and published %s",
		c.Factors, c.Iterations, out.Events, time.Since(trainStart).Seconds(), version)
	if err := waitModel(ctx, api, version); err != nil {
		return err
	}
	say("== recsysd hot-swapped to %s", version)

	// 4. One shopper: profile, recommendations, then a few new views.
	user, err := pickUser(ctx, api, c.Users)
	if err != nil {
		return err
	}
	categories := map[string]string{}
	for _, it := range shopItems(shopCfg) {
		categories[it.ID] = it.Category
	}
	prof, err := api.Events.GetProfile(ctx, &recsysv1.GetProfileRequest{UserId: user})
	if err != nil {
		return err
	}
	say("\n== profile of %s: %d items, %d purchases; top categories: %s", user, len(prof.GetProfile().GetItems()),
		prof.GetProfile().GetPurchaseCount(), affinities(prof.GetProfile()))
	before, err := api.Recommendations.Recommend(ctx, &recsysv1.RecommendRequest{UserId: user, Count: 8})
	if err != nil {
		return err
	}
	say("\n== recommended for %s (%s, model %s):", user, sourceName(before.GetSource()), before.GetModelVersion())
	printItems(stdout, before.GetItems(), categories)

	items := shopItems(shopCfg)
	newCat := unexplored(prof.GetProfile(), items)
	var fresh []*recsysv1.Event
	picked := itemsOf(newCat, items, 5)[1:] // leave the best-known item for the recommender to find
	for i, it := range picked {
		fresh = append(fresh, &recsysv1.Event{EventId: fmt.Sprintf("demo-%s-%d", user, i), UserId: user, ItemId: it,
			Type: recsysv1.EventType_EVENT_TYPE_VIEW})
	}
	fresh = append(fresh, &recsysv1.Event{EventId: fmt.Sprintf("demo-%s-cart", user), UserId: user, ItemId: picked[0],
		Type: recsysv1.EventType_EVENT_TYPE_ADD_TO_CART})
	if _, err := api.Events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: fresh}); err != nil {
		return err
	}
	say("\n== %s now views %d items of %s, a category they never touched, and puts one in the cart ...", user, len(picked), newCat)
	after, err := api.Recommendations.Recommend(ctx, &recsysv1.RecommendRequest{UserId: user, Count: 8})
	if err != nil {
		return err
	}
	say("== ... and the very next answer already follows (no retraining):")
	printItems(stdout, after.GetItems(), categories)
	say("   items from %s: %d before, %d after", newCat, countCat(before.GetItems(), categories, newCat), countCat(after.GetItems(), categories, newCat))

	bought, err := api.Recommendations.BoughtTogether(ctx, &recsysv1.BoughtTogetherRequest{ItemIds: []string{picked[0]}, Count: 5})
	if err != nil {
		return err
	}
	say("\n== bought together with %s, the item in the cart (%s; %d lists published by the job):",
		picked[0], sourceName(bought.GetSource()), out.Lists)
	printItems(stdout, bought.GetItems(), categories)

	// 5. The evaluation the gate used.
	say("\n== offline evaluation (%s, full ranking over all items), same split for every model:", out.Report.Split)
	if err := out.Report.WriteTable(stdout); err != nil {
		return err
	}
	say("gate: %s", out.Gate.Reason)

	// 6. An A/B experiment on the running server, and its report.
	if err := runExperiment(ctx, api, c.Users, c.Seed, categories, stdout); err != nil {
		return fmt.Errorf("experiment: %w", err)
	}
	say("\n== demo finished in %.0fs", time.Since(started).Seconds())

	if c.KeepServing {
		say("\nrecsysd keeps serving on %s; try:\n  go run ./cmd/recsysctl --addr %s recommend %s\n  grpcurl -plaintext %s list\nCtrl-C to stop.",
			d.Addr(), d.Addr(), user, d.Addr())
		httpAddr := ""
		if a := d.HTTPAddr(); a != nil {
			httpAddr = a.String()
			say("HTTP/JSON on http://%s (POST /recsys.v1.<Service>/<Method>)", httpAddr)
		}
		if c.Serving != nil {
			c.Serving(d.Addr().String(), httpAddr)
		}
		<-ctx.Done()
	}
	return nil
}

func waitServing(ctx context.Context, c *client.Client) error {
	hc := healthpb.NewHealthClient(c.Conn())
	return poll(ctx, "recsysd to become ready", func() bool {
		res, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		return err == nil && res.GetStatus() == healthpb.HealthCheckResponse_SERVING
	})
}

func waitModel(ctx context.Context, c *client.Client, version string) error {
	return poll(ctx, "the model swap", func() bool {
		res, err := c.Models.GetModel(ctx, &recsysv1.GetModelRequest{})
		return err == nil && res.GetModel().GetVersion() == version
	})
}

// poll checks cond until it holds, for at most 30 s.
func poll(ctx context.Context, what string, cond func() bool) error {
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out waiting for " + what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// pickUser finds a shopper with a short but real history (5 to 12 items),
// the kind whose taste a few new events can visibly change.
func pickUser(ctx context.Context, c *client.Client, users int) (string, error) {
	for i := 0; i < users; i++ {
		id := synth.UserID(i)
		p, err := c.Events.GetProfile(ctx, &recsysv1.GetProfileRequest{UserId: id})
		if err != nil {
			return "", err
		}
		if n := len(p.GetProfile().GetItems()); n >= 5 && n <= 12 {
			return id, nil
		}
	}
	return "", errors.New("no user with 5 to 12 items")
}

func shopItems(cfg synth.Config) []synth.Item {
	items, _ := synth.Catalog(cfg) // the config was valid when the shop was generated
	return items
}

func affinities(p *recsysv1.Profile) string {
	var parts []string
	for i, a := range p.GetCategoryAffinities() {
		if i == 3 {
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.0f%%", a.GetCategory(), a.GetAffinity()*100))
	}
	return strings.Join(parts, ", ")
}

// unexplored is the most popular category in which the profile has no
// item.
func unexplored(p *recsysv1.Profile, items []synth.Item) string {
	category := map[string]string{}
	popularity := map[string]float64{}
	for _, it := range items {
		category[it.ID] = it.Category
		popularity[it.Category] += it.Popularity
	}
	for _, it := range p.GetItems() {
		delete(popularity, category[it.GetItemId()])
	}
	best := ""
	for c, pop := range popularity {
		if best == "" || pop > popularity[best] || (pop == popularity[best] && c < best) {
			best = c
		}
	}
	return best
}

// itemsOf returns the n most popular available items of a category.
func itemsOf(category string, items []synth.Item, n int) []string {
	var in []synth.Item
	for _, it := range items {
		if it.Category == category && it.Available {
			in = append(in, it)
		}
	}
	slices.SortFunc(in, func(a, b synth.Item) int {
		switch {
		case a.Popularity > b.Popularity:
			return -1
		case a.Popularity < b.Popularity:
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	var out []string
	for _, it := range in[:min(n, len(in))] {
		out = append(out, it.ID)
	}
	return out
}

func countCat(items []*recsysv1.ScoredItem, categories map[string]string, cat string) int {
	n := 0
	for _, it := range items {
		if categories[it.GetItemId()] == cat {
			n++
		}
	}
	return n
}

func sourceName(s recsysv1.Source) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "SOURCE_"))
}

func printItems(w io.Writer, items []*recsysv1.ScoredItem, categories map[string]string) {
	for i, it := range items {
		fmt.Fprintf(w, "   %2d. %-10s %-14s score %.3f\n", i+1, it.GetItemId(), categories[it.GetItemId()], it.GetScore())
	}
}
