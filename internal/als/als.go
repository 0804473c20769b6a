package als

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"time"

	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/sparse"
)

// Solver names accepted in Hyperparameters.Solver.
const (
	SolverCG       = "cg"
	SolverCholesky = "cholesky"
)

// DefaultCGSteps is the number of conjugate-gradient steps per row when
// Hyperparameters.CGSteps is 0; three is what `implicit` uses and is enough
// because every step starts from the previous iteration's solution.
const DefaultCGSteps = 3

// Config is a training run: the hyperparameters the model records, plus how
// to run.
type Config struct {
	mf.Hyperparameters
	// Workers is the number of goroutines solving rows; 0 means GOMAXPROCS.
	Workers int
	// ComputeLoss computes the full training loss after every iteration
	// (O(nnz·f + rows·f²), about a third of an iteration with CG).
	ComputeLoss bool
	// Progress, if set, is called after every iteration from the goroutine
	// that called Train.
	Progress func(IterationStats)
}

// IterationStats describes one completed iteration.
type IterationStats struct {
	Iteration int           // 1-based
	Loss      float64       // NaN unless Config.ComputeLoss
	Duration  time.Duration // whole iteration, including the loss
	UserTime  time.Duration // user half-step
	ItemTime  time.Duration // item half-step
}

// Result is a trained factorization.
type Result struct {
	// Hyper are the hyperparameters used, with defaults filled in.
	Hyper        mf.Hyperparameters
	Users, Items int
	Interactions int // stored entries of the training matrix
	// UserFactors (Users×Factors) and ItemFactors (Items×Factors) are
	// row-major.
	UserFactors, ItemFactors []float32
	UserIDs, ItemIDs         []string
	Stats                    []IterationStats
}

// ItemVector returns the factors of item column i.
func (r *Result) ItemVector(i int) []float32 {
	f := r.Hyper.Factors
	return r.ItemFactors[i*f : (i+1)*f]
}

// Model builds the serving model from the item factors and ids. info
// supplies the version, time, data description and metrics; the
// hyperparameters and counts are taken from r. The factors are copied, so r
// stays usable.
func (r *Result) Model(info mf.Info) (*mf.Model, error) {
	if len(r.ItemIDs) != r.Items {
		return nil, fmt.Errorf("build model: the training matrix has %d item ids for %d items", len(r.ItemIDs), r.Items)
	}
	info.Hyper = r.Hyper
	info.Users = int64(r.Users)
	info.Items = int64(r.Items)
	info.Interactions = int64(r.Interactions)
	m, err := mf.New(info, slices.Clone(r.ItemIDs), slices.Clone(r.ItemFactors))
	if err != nil {
		return nil, fmt.Errorf("build model: %w", err)
	}
	return m, nil
}

// withDefaults fills in the solver and CG steps and checks the settings.
func (c Config) withDefaults() (Config, error) {
	if err := c.Hyperparameters.Validate(); err != nil {
		return c, err
	}
	if c.Iterations < 1 {
		return c, fmt.Errorf("iterations must be >= 1, got %d", c.Iterations)
	}
	switch c.Solver {
	case "":
		c.Solver = SolverCG
	case SolverCG, SolverCholesky:
	default:
		return c, fmt.Errorf("solver must be %q or %q, got %q", SolverCG, SolverCholesky, c.Solver)
	}
	if c.Solver == SolverCG && c.CGSteps == 0 {
		c.CGSteps = DefaultCGSteps
	}
	if c.CGSteps < 0 {
		return c, fmt.Errorf("cg_steps must be >= 0, got %d", c.CGSteps)
	}
	if c.Workers < 0 {
		return c, fmt.Errorf("workers must be >= 0, got %d", c.Workers)
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	return c, nil
}

// checkMatrix rejects matrices ALS cannot train on.
func checkMatrix(m *sparse.Matrix) error {
	if m == nil {
		return errors.New("no training matrix")
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("training matrix: %w", err)
	}
	if m.Rows == 0 || m.Cols == 0 || m.NNZ() == 0 {
		return fmt.Errorf("training matrix %d×%d has no entries", m.Rows, m.Cols)
	}
	for k, v := range m.Data {
		if v < 0 {
			return fmt.Errorf("training matrix: entry %d is %v; strengths must be >= 0", k, v)
		}
	}
	return nil
}

// Train factorizes m (users are rows, items are columns). It returns
// ctx.Err() if ctx is cancelled; the check is made between chunks of rows,
// so it returns within a fraction of a half-step.
func Train(ctx context.Context, m *sparse.Matrix, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if err := checkMatrix(m); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	m = withConfidence(m, cfg.Hyperparameters)
	f := cfg.Factors
	mt := m.Transpose()
	users := newSide(m, f)
	items := newSide(mt, f)

	// Small random factors from the seed. The item factors are drawn first,
	// then the user factors, row by row, so a seed fixes both.
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0xa15))
	scale := 1 / math.Sqrt(float64(f))
	for _, s := range []*side{items, users} {
		for k := range s.x {
			s.x[k] = float32(rng.NormFloat64() * scale)
		}
	}

	res := &Result{
		Hyper:        cfg.Hyperparameters,
		Users:        m.Rows,
		Items:        m.Cols,
		Interactions: m.NNZ(),
		UserIDs:      m.RowIDs,
		ItemIDs:      m.ColIDs,
	}
	ws := newWorkspaces(cfg.Workers, f, cfg.Solver)
	for it := 1; it <= cfg.Iterations; it++ {
		start := time.Now()
		if err := halfStep(ctx, users, items.x, cfg, ws); err != nil {
			return nil, err
		}
		mid := time.Now()
		if err := halfStep(ctx, items, users.x, cfg, ws); err != nil {
			return nil, err
		}
		end := time.Now()
		st := IterationStats{Iteration: it, Loss: math.NaN(), UserTime: mid.Sub(start), ItemTime: end.Sub(mid)}
		if cfg.ComputeLoss {
			l, err := loss(ctx, users, items, cfg.Hyperparameters, cfg.Workers)
			if err != nil {
				return nil, err
			}
			st.Loss = l
		}
		st.Duration = time.Since(start)
		res.Stats = append(res.Stats, st)
		if cfg.Progress != nil {
			cfg.Progress(st)
		}
	}
	for _, s := range []*side{users, items} {
		for k, v := range s.x {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("train: factors diverged (value %v at row %d); lower alpha or raise regularization", v, k/f)
			}
		}
	}
	res.UserFactors, res.ItemFactors = users.x, items.x
	return res, nil
}

// SolveExact computes, for every row of m, the exact (Cholesky) least-squares
// factors given the fixed other side (m.Cols×h.Factors, row-major): the
// half-step Train would do with the "cholesky" solver. Applied to the user
// rows with the final item factors it gives what mf.Model.FoldIn computes for
// each training user.
func SolveExact(ctx context.Context, m *sparse.Matrix, other []float32, h mf.Hyperparameters, workers int) ([]float32, error) {
	h.Solver = SolverCholesky
	if h.Iterations < 1 {
		h.Iterations = 1
	}
	cfg, err := Config{Hyperparameters: h, Workers: workers}.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("solve rows: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("solve rows: %w", err)
	}
	if len(other) != m.Cols*h.Factors {
		return nil, fmt.Errorf("solve rows: %d fixed factor values for %d columns × %d factors", len(other), m.Cols, h.Factors)
	}
	s := newSide(withConfidence(m, h), h.Factors)
	if err := halfStep(ctx, s, other, cfg, newWorkspaces(cfg.Workers, h.Factors, SolverCholesky)); err != nil {
		return nil, err
	}
	return s.x, nil
}

// Loss is the training objective of the factors (users: m.Rows×f, items:
// m.Cols×f) on m, computed with the YᵀY trick in O(nnz·f + (rows+cols)·f²).
func Loss(ctx context.Context, m *sparse.Matrix, userFactors, itemFactors []float32, h mf.Hyperparameters, workers int) (float64, error) {
	f := h.Factors
	if f < 1 || len(userFactors) != m.Rows*f || len(itemFactors) != m.Cols*f {
		return 0, fmt.Errorf("loss: factor shapes %d and %d do not fit %d×%d with %d factors", len(userFactors), len(itemFactors), m.Rows, m.Cols, f)
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	m = withConfidence(m, h)
	users := newSide(m, f)
	users.x = userFactors
	items := newSide(m.Transpose(), f)
	items.x = itemFactors
	return loss(ctx, users, items, h, workers)
}

// withConfidence returns m with every strength w replaced by
// h.Strength(w) (a copy), or m itself with the linear weighting: the
// solvers then apply c = 1 + α·value either way.
func withConfidence(m *sparse.Matrix, h mf.Hyperparameters) *sparse.Matrix {
	if h.Confidence != mf.ConfidenceLog {
		return m
	}
	c := *m
	c.Data = make([]float32, len(m.Data))
	for k, v := range m.Data {
		c.Data[k] = float32(h.Strength(float64(v)))
	}
	return &c
}
