package als

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/sparse"
	"github.com/recsys-dev/recsys/internal/sparse/sparsetest"
)

// planted is a small data set with cluster structure, shared by the tests.
func planted(t testing.TB, users, items int, seed uint64) *sparse.Matrix {
	t.Helper()
	return sparsetest.Generate(sparsetest.Config{
		Users: users, Items: items, Clusters: 6, PerUser: 15, Zipf: 0.8, Noise: 0.1, Seed: seed,
	}).Matrix()
}

func hyper(f int, solver string) mf.Hyperparameters {
	return mf.Hyperparameters{Factors: f, Regularization: 0.05, RegExponent: 0.5, Alpha: 2, Iterations: 6, Solver: solver, Seed: 42}
}

func maxRelDiff(a, b []float32) float64 {
	var worst float64
	for i := range a {
		d := math.Abs(float64(a[i]-b[i])) / (1 + math.Abs(float64(b[i])))
		worst = max(worst, d)
	}
	return worst
}

// One row solved by many CG steps from zero must equal the exact Cholesky
// solution, and both must equal a dense float64 solve of the normal
// equations written out from the definition.
func TestRowSolversAgreeWithDenseSolve(t *testing.T) {
	const f, n = 8, 50
	rng := rand.New(rand.NewPCG(5, 6))
	y := make([]float32, n*f)
	for i := range y {
		y[i] = float32(rng.NormFloat64() * 0.5)
	}
	g, err := gram(context.Background(), y, f, 2)
	if err != nil {
		t.Fatal(err)
	}
	g32 := make([]float32, len(g))
	for k, v := range g {
		g32[k] = float32(v)
	}
	cols := []int32{1, 4, 9, 30, 31, 47}
	vals := []float32{1, 3, 0.5, 5, 0, 2}
	const reg, alpha = 0.7, 4.0

	// Dense reference: A = Σ_i c_i y_i y_iᵀ + reg·I over ALL items.
	c := make([]float64, n)
	for i := range c {
		c[i] = 1
	}
	bvec := mat.NewVecDense(f, nil)
	for k, i := range cols {
		c[i] = 1 + alpha*float64(vals[k])
	}
	a := mat.NewSymDense(f, nil)
	for i := 0; i < n; i++ {
		yi := make([]float64, f)
		for d := range yi {
			yi[d] = float64(y[i*f+d])
		}
		a.SymRankOne(a, c[i], mat.NewVecDense(f, yi))
	}
	for _, i := range cols {
		for d := 0; d < f; d++ {
			bvec.SetVec(d, bvec.AtVec(d)+c[i]*float64(y[int(i)*f+d]))
		}
	}
	for d := 0; d < f; d++ {
		a.SetSym(d, d, a.At(d, d)+reg)
	}
	var want mat.VecDense
	if err := want.SolveVec(a, bvec); err != nil {
		t.Fatal(err)
	}

	wk := newWorkspaces(1, f, SolverCholesky)[0]
	chol := make([]float32, f)
	if err := wk.cholesky(chol, cols, vals, y, g, reg, alpha); err != nil {
		t.Fatal(err)
	}
	wc := newWorkspaces(1, f, SolverCG)[0]
	cg := make([]float32, f)
	wc.conjugateGradient(cg, cols, vals, y, g32, reg, alpha, 3*f)
	for d := 0; d < f; d++ {
		w := want.AtVec(d)
		if diff := math.Abs(float64(chol[d]) - w); diff > 1e-5*(1+math.Abs(w)) {
			t.Errorf("cholesky x[%d] = %v, want %v", d, chol[d], w)
		}
		if diff := math.Abs(float64(cg[d]) - w); diff > 1e-3*(1+math.Abs(w)) {
			t.Errorf("cg x[%d] = %v, want %v", d, cg[d], w)
		}
	}
}

// Training with CG given enough steps per row must end where exact ALS
// ends after the same number of iterations.
func TestCGConvergesToCholesky(t *testing.T) {
	m := planted(t, 300, 120, 1)
	ctx := context.Background()
	exact, err := Train(ctx, m, Config{Hyperparameters: hyper(8, SolverCholesky)})
	if err != nil {
		t.Fatal(err)
	}
	h := hyper(8, SolverCG)
	h.CGSteps = 20
	cg, err := Train(ctx, m, Config{Hyperparameters: h})
	if err != nil {
		t.Fatal(err)
	}
	if d := maxRelDiff(cg.ItemFactors, exact.ItemFactors); d > 5e-3 {
		t.Errorf("item factors differ by up to %.2g (relative), want <= 5e-3", d)
	}
	if d := maxRelDiff(cg.UserFactors, exact.UserFactors); d > 5e-3 {
		t.Errorf("user factors differ by up to %.2g (relative), want <= 5e-3", d)
	}
}

func TestLossDecreases(t *testing.T) {
	m := planted(t, 400, 150, 2)
	for _, solver := range []string{SolverCG, SolverCholesky} {
		t.Run(solver, func(t *testing.T) {
			h := hyper(16, solver)
			h.Iterations = 8
			var losses []float64
			res, err := Train(context.Background(), m, Config{
				Hyperparameters: h, ComputeLoss: true,
				Progress: func(s IterationStats) { losses = append(losses, s.Loss) },
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(losses) != h.Iterations || len(res.Stats) != h.Iterations {
				t.Fatalf("got %d progress calls and %d stats, want %d", len(losses), len(res.Stats), h.Iterations)
			}
			for i := 1; i < len(losses); i++ {
				if losses[i] > losses[i-1]*(1+1e-6) {
					t.Errorf("loss rose at iteration %d: %v -> %v", i+1, losses[i-1], losses[i])
				}
			}
			if !(losses[len(losses)-1] < 0.9*losses[0]) {
				t.Errorf("loss went from %v to %v, want a drop of at least 10%%", losses[0], losses[len(losses)-1])
			}
			// The exported Loss agrees with the one reported.
			got, err := Loss(context.Background(), m, res.UserFactors, res.ItemFactors, h, 2)
			if err != nil {
				t.Fatal(err)
			}
			if want := losses[len(losses)-1]; math.Abs(got-want) > 1e-9*math.Abs(want) {
				t.Errorf("Loss = %v, last reported %v", got, want)
			}
		})
	}
}

// The YᵀY shortcut must give the objective computed term by term.
func TestLossMatchesDefinition(t *testing.T) {
	m := planted(t, 40, 25, 3)
	h := hyper(4, SolverCholesky)
	rng := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, m.Rows*4)
	y := make([]float32, m.Cols*4)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for i := range y {
		y[i] = float32(rng.NormFloat64())
	}
	got, err := Loss(context.Background(), m, x, y, h, 3)
	if err != nil {
		t.Fatal(err)
	}
	var want float64
	mt := m.Transpose()
	for u := 0; u < m.Rows; u++ {
		r := make([]float64, m.Cols)
		obs := make([]bool, m.Cols)
		cols, vals := m.Row(u)
		for k, c := range cols {
			r[c], obs[c] = float64(vals[k]), true
		}
		for i := 0; i < m.Cols; i++ {
			var s float64
			for d := 0; d < 4; d++ {
				s += float64(x[u*4+d]) * float64(y[i*4+d])
			}
			c, p := 1.0, 0.0
			if obs[i] {
				c, p = 1+h.Alpha*r[i], 1
			}
			want += c * (p - s) * (p - s)
		}
		want += h.Reg(len(cols)) * sq(x[u*4:u*4+4])
	}
	for i := 0; i < m.Cols; i++ {
		want += h.Reg(mt.RowLen(i)) * sq(y[i*4:i*4+4])
	}
	if math.Abs(got-want) > 1e-6*math.Abs(want) {
		t.Errorf("Loss = %v, want %v", got, want)
	}
}

func sq(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return s
}

func TestDeterministicForSeedAcrossWorkers(t *testing.T) {
	m := planted(t, 500, 200, 4)
	for _, solver := range []string{SolverCG, SolverCholesky} {
		t.Run(solver, func(t *testing.T) {
			var results []*Result
			for _, workers := range []int{1, 2, 3} {
				res, err := Train(context.Background(), m, Config{Hyperparameters: hyper(8, solver), Workers: workers, ComputeLoss: true})
				if err != nil {
					t.Fatal(err)
				}
				results = append(results, res)
			}
			for k, r := range results[1:] {
				if !slices.Equal(r.UserFactors, results[0].UserFactors) || !slices.Equal(r.ItemFactors, results[0].ItemFactors) {
					t.Errorf("factors with %d workers differ from 1 worker", k+2)
				}
				if r.Stats[len(r.Stats)-1].Loss != results[0].Stats[len(r.Stats)-1].Loss {
					t.Errorf("loss with %d workers differs from 1 worker", k+2)
				}
			}
			h := hyper(8, solver)
			h.Seed++
			other, err := Train(context.Background(), m, Config{Hyperparameters: h})
			if err != nil {
				t.Fatal(err)
			}
			if slices.Equal(other.ItemFactors, results[0].ItemFactors) {
				t.Error("a different seed gave identical factors")
			}
		})
	}
}

// Serving and training agree: folding a training user's row into the
// served model gives the factors an exact user half-step computes.
func TestFoldInEqualsExactUserStep(t *testing.T) {
	m := planted(t, 300, 150, 5)
	ctx := context.Background()
	for _, tc := range []struct {
		regExp     float64
		confidence string
	}{{0, ""}, {1, ""}, {0.5, mf.ConfidenceLog}} {
		regExp := tc.regExp
		h := hyper(16, SolverCG)
		h.RegExponent, h.Confidence = regExp, tc.confidence
		res, err := Train(ctx, m, Config{Hyperparameters: h})
		if err != nil {
			t.Fatal(err)
		}
		model, err := res.Model(mf.Info{Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		exact, err := SolveExact(ctx, m, res.ItemFactors, res.Hyper, 2)
		if err != nil {
			t.Fatal(err)
		}
		ws := &mf.Workspace{}
		for u := 0; u < m.Rows; u++ {
			cols, vals := m.Row(u)
			rows := make([]int32, len(cols))
			w := make([]float64, len(cols))
			for k, c := range cols {
				// Map through the ids, as the server does.
				i, ok := model.Index(m.ColIDs[c])
				if !ok {
					t.Fatalf("item %q missing from the model", m.ColIDs[c])
				}
				rows[k], w[k] = i, float64(vals[k])
			}
			got, err := model.FoldIn(ws, rows, w)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxRelDiff(got, exact[u*16:(u+1)*16]); d > 1e-4 {
				t.Fatalf("reg_exponent %v, user %d: fold-in differs from the exact step by %.2g", regExp, u, d)
			}
		}
	}
}

// The log confidence weighting is the linear one on log(1 + w).
func TestLogConfidenceIsLinearOnLogStrengths(t *testing.T) {
	m := planted(t, 120, 60, 3)
	logged := *m
	logged.Data = make([]float32, len(m.Data))
	for k, v := range m.Data {
		logged.Data[k] = float32(math.Log1p(float64(v)))
	}
	h := hyper(8, SolverCG)
	lin, err := Train(context.Background(), &logged, Config{Hyperparameters: h, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	h.Confidence = mf.ConfidenceLog
	lg, err := Train(context.Background(), m, Config{Hyperparameters: h, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(lin.ItemFactors, lg.ItemFactors) {
		t.Error("log confidence on w differs from linear confidence on log(1+w)")
	}
	if slices.Equal(m.Data, logged.Data) {
		t.Fatal("the planted strengths are all 0: the test cannot tell the weightings apart")
	}
}

func TestCancellation(t *testing.T) {
	m := planted(t, 300, 100, 6)
	t.Run("before start", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := Train(ctx, m, Config{Hyperparameters: hyper(8, SolverCG)})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	})
	t.Run("between iterations", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		h := hyper(8, SolverCG)
		h.Iterations = 1000
		calls := 0
		_, err := Train(ctx, m, Config{Hyperparameters: h, Progress: func(s IterationStats) {
			calls++
			if s.Iteration == 2 {
				cancel()
			}
		}})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
		if calls != 2 {
			t.Errorf("%d iterations ran, want 2", calls)
		}
	})
	t.Run("within a half-step", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var late atomic.Int64
		err := parallel(ctx, 2, 10_000, func(_, c int) {
			if ctx.Err() != nil {
				late.Add(1)
			}
			if c == 3 {
				cancel()
			}
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
		// A worker checks the context before taking a chunk, so after the
		// cancel only the other worker may start one: the chunk it took
		// just before. (How many chunks ran before chunk 3 did depends on
		// the scheduler.)
		if n := late.Load(); n > 1 {
			t.Errorf("%d chunks started after the cancel, want <= 1", n)
		}
	})
}

func TestTrainRejectsBadInput(t *testing.T) {
	m := planted(t, 20, 10, 7)
	neg := planted(t, 20, 10, 7)
	neg.Data[0] = -1
	empty, _ := sparse.FromTriples(3, 3, &sparse.Triples{}, nil, nil)
	for _, tc := range []struct {
		name string
		m    *sparse.Matrix
		edit func(*Config)
		want string
	}{
		{"zero factors", m, func(c *Config) { c.Factors = 0 }, "factors"},
		{"zero regularization", m, func(c *Config) { c.Regularization = 0 }, "regularization"},
		{"negative alpha", m, func(c *Config) { c.Alpha = -1 }, "alpha"},
		{"no iterations", m, func(c *Config) { c.Iterations = 0 }, "iterations"},
		{"unknown solver", m, func(c *Config) { c.Solver = "sgd" }, "solver"},
		{"negative cg steps", m, func(c *Config) { c.CGSteps = -1 }, "cg_steps"},
		{"negative workers", m, func(c *Config) { c.Workers = -1 }, "workers"},
		{"negative strength", neg, func(*Config) {}, ">= 0"},
		{"empty matrix", empty, func(*Config) {}, "no entries"},
		{"nil matrix", nil, func(*Config) {}, "no training matrix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Hyperparameters: hyper(4, "")}
			tc.edit(&cfg)
			_, err := Train(context.Background(), tc.m, cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestResultModel(t *testing.T) {
	m := planted(t, 50, 30, 8)
	res, err := Train(context.Background(), m, Config{Hyperparameters: hyper(4, "")})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Hyper.Solver, SolverCG; got != want {
		t.Errorf("solver %q, want default %q", got, want)
	}
	if got, want := res.Hyper.CGSteps, DefaultCGSteps; got != want {
		t.Errorf("cg steps %d, want default %d", got, want)
	}
	model, err := res.Model(mf.Info{Version: "v1", Data: "planted"})
	if err != nil {
		t.Fatal(err)
	}
	info := model.Info()
	if info.Users != 50 || info.Items != 30 || info.Interactions != int64(m.NNZ()) || info.Hyper != res.Hyper || info.Version != "v1" {
		t.Errorf("info %+v does not describe the training run", info)
	}
	for i := 0; i < m.Cols; i++ {
		if got := model.ItemID(int32(i)); got != m.ColIDs[i] {
			t.Fatalf("item %d is %q, want %q", i, got, m.ColIDs[i])
		}
		if !slices.Equal(model.Vector(int32(i)), res.ItemVector(i)) {
			t.Fatalf("item %d factors differ from the result", i)
		}
	}
	res.ItemFactors[0] = 99 // the model holds its own copy
	if model.Vector(0)[0] == 99 {
		t.Error("model shares factor memory with the result")
	}
	res.ItemIDs = nil
	if _, err := res.Model(mf.Info{}); err == nil {
		t.Error("a result without item ids built a model")
	}
}
