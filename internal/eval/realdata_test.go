package eval

import (
	"cmp"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/dataset"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/sparse"
	"github.com/recsys-dev/recsys/internal/traindata"
)

// TestRealData evaluates ALS against popularity and item-kNN on the public
// data sets in $RECSYS_DATA (see /work/shared/data/README.md); it is skipped
// when the variable is unset. Hyperparameters of both ALS and item-kNN are
// chosen on a validation split carved from the training events with the same
// rule as the test split, then the models are retrained on all training
// events and evaluated once on the test split.
//
//	RECSYS_DATA=/work/shared/data go test -run TestRealData -v -timeout 2h ./internal/eval
//
// RECSYS_TRIALS sets the number of random ALS settings tried per data set
// (default 60); RECSYS_SETS selects data sets (comma-separated names).
func TestRealData(t *testing.T) {
	dir := os.Getenv("RECSYS_DATA")
	if dir == "" {
		t.Skip("set RECSYS_DATA to the directory of the real data sets")
	}
	trials := 60
	if s := os.Getenv("RECSYS_TRIALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("RECSYS_TRIALS: %v", err)
		}
		trials = n
	}
	sets := []struct {
		name  string
		load  func(dir string) (*traindata.Data, error)
		split traindata.TimeSplit
	}{
		// Ratings as implicit interactions (strength 1), by timestamp.
		{"ml-100k", loadWith1("ml-100k/u.data"), traindata.TimeSplit{Fraction: 0.2}},
		// Leave-one-out: the last item of each user's sequence.
		{"amazon-beauty", loadWith1("amazon-beauty/Beauty.txt"), traindata.TimeSplit{LastN: 1}},
		// Baskets in order; the last 20% of each customer's item events.
		{"tafeng", loadWith1("tafeng/tafeng_merged.json"), traindata.TimeSplit{Fraction: 0.2}},
	}
	only := os.Getenv("RECSYS_SETS")
	for _, ds := range sets {
		if only != "" && !slices.Contains(strings.Split(only, ","), ds.name) {
			continue
		}
		t.Run(ds.name, func(t *testing.T) {
			ctx := context.Background()
			d, err := ds.load(dir)
			if err != nil {
				t.Fatal(err)
			}
			test, err := traindata.SplitByTime(d, ds.split)
			if err != nil {
				t.Fatal(err)
			}
			val, err := traindata.SplitByTime(test.Train, ds.split)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d users, %d items, %d events; test: %d training entries, %d cases; validation: %d entries, %d cases",
				ds.name, d.Users, d.Items, d.Len(), test.Matrix.NNZ(), len(test.Cases), val.Matrix.NNZ(), len(val.Cases))

			start := time.Now()
			opt := SearchOptions{
				Base: mf.Hyperparameters{Factors: 64, Regularization: 0.1, Alpha: 1, Iterations: 15, Seed: 1},
				Space: SearchSpace{
					Factors:        []int{64, 128, 256},
					Regularization: []float64{0.03, 0.1, 0.3, 1, 3, 10},
					RegExponent:    []float64{0, 0.5, 1},
					Alpha:          []float64{1, 3, 10, 30, 100},
					Iterations:     []int{8, 15},
				},
				Trials: trials,
				Seed:   7,
			}
			found, err := Search(ctx, val, opt)
			if err != nil {
				t.Fatal(err)
			}
			// One round of local refinement around the best point: λ and α
			// halved and doubled, ν ± 0.25.
			b := found[0].Hyper
			opt.Base, opt.Trials = b, 0
			opt.Space = SearchSpace{
				Regularization: []float64{b.Regularization / 2, b.Regularization, b.Regularization * 2},
				Alpha:          []float64{b.Alpha / 2, b.Alpha, b.Alpha * 2},
				RegExponent:    []float64{max(b.RegExponent-0.25, 0), b.RegExponent, b.RegExponent + 0.25},
			}
			local, err := Search(ctx, val, opt)
			if err != nil {
				t.Fatal(err)
			}
			found = append(found, local...)
			slices.SortStableFunc(found, func(a, b Trial) int { return cmp.Compare(b.Score, a.Score) })
			best := found[0]
			t.Logf("ALS search: %d trials in %v; best validation ndcg@10 %.4f with %+v", len(found), time.Since(start).Round(time.Second), best.Score, best.Hyper)
			for _, tr := range found[:min(5, len(found))] {
				t.Logf("  %.4f  f=%d λ=%g ν=%g α=%g it=%d", tr.Score, tr.Hyper.Factors, tr.Hyper.Regularization, tr.Hyper.RegExponent, tr.Hyper.Alpha, tr.Hyper.Iterations)
			}

			// item-kNN gets the same chance: its neighbourhood size is tuned
			// on the same validation split.
			bestK, bestKScore := 0, -1.0
			for _, k := range []int{10, 20, 50, 100, 200, 500, 1000} {
				knn, err := NewItemKNN(ctx, val.Matrix, KNNOptions{Neighbors: k})
				if err != nil {
					t.Fatal(err)
				}
				r, err := Evaluate(ctx, val, knn, Options{})
				if err != nil {
					t.Fatal(err)
				}
				if s := r.Metrics["ndcg@10"]; s > bestKScore {
					bestK, bestKScore = k, s
				}
			}
			t.Logf("item-kNN search: best validation ndcg@10 %.4f with %d neighbours", bestKScore, bestK)

			rep, err := Compare(ctx, test, best.Hyper, KNNOptions{Neighbors: bestK}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var sb strings.Builder
			if err := rep.WriteTable(&sb); err != nil {
				t.Fatal(err)
			}
			js, err := json.Marshal(rep)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s test:\n%s%s", ds.name, sb.String(), js)
			a, _ := rep.Model("als")
			for _, base := range []string{"popularity", "itemknn"} {
				b, _ := rep.Model(base)
				if a.Metrics["ndcg@10"] <= b.Metrics["ndcg@10"] {
					t.Logf("NOTE: ALS ndcg@10 %.4f does not beat %s %.4f on %s", a.Metrics["ndcg@10"], base, b.Metrics["ndcg@10"], ds.name)
				}
			}
		})
	}
}

// realData accumulates events with string ids.
type realData struct {
	users, items sparse.Index
	d            traindata.Data
}

func (r *realData) add(user, item string, val float32, t int64) {
	r.d.Append(r.users.Intern(user), r.items.Intern(item), val)
	r.d.Time = append(r.d.Time, t)
}

func (r *realData) data() *traindata.Data {
	r.d.Users, r.d.Items = r.users.Len(), r.items.Len()
	r.d.UserIDs, r.d.ItemIDs = r.users.IDs(), r.items.IDs()
	return &r.d
}

// loadWith1 reads the data set file at rel under dir with the dataset
// package's reader (the format is detected, as recsys-train does); every
// event counts as one interaction of strength 1 at its time.
func loadWith1(rel string) func(dir string) (*traindata.Data, error) {
	return func(dir string) (*traindata.Data, error) {
		var r realData
		_, err := dataset.ReadFile(context.Background(), filepath.Join(dir, rel), "", dataset.Options{}, func(e event.Event) error {
			r.add(e.UserID, e.ItemID, 1, e.Time.UnixNano())
			return nil
		})
		if err != nil {
			return nil, err
		}
		return r.data(), nil
	}
}
