// Package mf holds a matrix-factorization model for serving: item factors in
// one contiguous float32 block, the item-id table, and the state derived from
// them (the Gram matrix YᵀY and the row norms) that fold-in and cosine
// similarity need.
//
// A *Model is immutable once New returns, so one snapshot can be shared by any
// number of requests while a newer one is being loaded; the serving side swaps
// snapshots with an atomic pointer. The artifact format that carries a model
// between the trainer and the servers is defined in artifact.go and described
// in models/README.md.
package mf

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
)

// Limits the loader enforces, so a corrupt header cannot make it allocate
// without bound.
const (
	MaxFactors = 1024
	MaxItems   = 50_000_000
	// MaxIDLength bounds an id in the artifact's id table: longer is
	// corruption. Ids above event.MaxIDBytes (older trainers wrote up to
	// this) are read and then dropped, see Read.
	MaxIDLength = 1024
)

// Hyperparameters are the training settings. Fold-in uses Regularization,
// RegExponent and Alpha exactly as training did, so a folded-in user vector is
// the vector ALS would have computed for that user.
type Hyperparameters struct {
	Factors        int     `json:"factors"`
	Regularization float64 `json:"regularization"` // λ
	// RegExponent is ν of the frequency-scaled regularization of Rendle et
	// al. 2021: a row with n observed entries gets λ·n^ν. 0 keeps λ constant.
	RegExponent float64 `json:"reg_exponent"`
	Alpha       float64 `json:"alpha"` // confidence c = 1 + α·weight (Hu et al. 2008)
	// Confidence is how a strength becomes confidence: "" or "linear" is
	// c = 1 + α·w, "log" is c = 1 + α·log(1 + w) (Hu et al. 2008's
	// alternative), which keeps heavy users and repeat buyers from dominating.
	Confidence string `json:"confidence,omitempty"`
	Iterations int    `json:"iterations"`
	Solver     string `json:"solver,omitempty"` // "cg" or "cholesky"
	CGSteps    int    `json:"cg_steps,omitempty"`
	Seed       int64  `json:"seed"`
}

// Reg is the regularization of a row with n observed entries.
func (h Hyperparameters) Reg(n int) float64 {
	if h.RegExponent == 0 || n <= 0 {
		return h.Regularization
	}
	return h.Regularization * math.Pow(float64(n), h.RegExponent)
}

// The confidence weightings of Hyperparameters.Confidence.
const (
	ConfidenceLinear = "linear"
	ConfidenceLog    = "log"
)

// Strength maps an event strength w to the value the confidence is linear
// in: w itself, or log(1 + w) with the "log" weighting.
func (h Hyperparameters) Strength(w float64) float64 {
	if h.Confidence == ConfidenceLog {
		return math.Log1p(w)
	}
	return w
}

// Validate rejects settings that cannot train or fold in.
func (h Hyperparameters) Validate() error {
	switch {
	case h.Factors < 1 || h.Factors > MaxFactors:
		return fmt.Errorf("factors must be 1..%d, got %d", MaxFactors, h.Factors)
	case !(h.Regularization > 0) || math.IsInf(h.Regularization, 0):
		return fmt.Errorf("regularization must be a finite number > 0, got %v", h.Regularization)
	case h.RegExponent < 0 || h.RegExponent > 2 || math.IsNaN(h.RegExponent):
		return fmt.Errorf("reg_exponent must be within 0..2, got %v", h.RegExponent)
	case h.Alpha < 0 || math.IsNaN(h.Alpha) || math.IsInf(h.Alpha, 0):
		return fmt.Errorf("alpha must be a finite number >= 0, got %v", h.Alpha)
	case h.Confidence != "" && h.Confidence != ConfidenceLinear && h.Confidence != ConfidenceLog:
		return fmt.Errorf("confidence must be linear or log, got %q", h.Confidence)
	}
	return nil
}

// Info describes a model: what it was trained with and how well it did.
type Info struct {
	Version      string             `json:"version"`
	TrainedAt    time.Time          `json:"trained_at"`
	Users        int64              `json:"users"`
	Items        int64              `json:"items"`
	Interactions int64              `json:"interactions"`
	Hyper        Hyperparameters    `json:"hyperparameters"`
	Metrics      map[string]float64 `json:"metrics,omitempty"`
	// Data says what the model was trained on (input files or stream window).
	Data string `json:"data,omitempty"`
	// DataUntil is the time of the latest event the model was trained on.
	// Offline comparisons with a newer model use only events after it, so
	// the older model is never tested on what it was trained on.
	DataUntil time.Time `json:"data_until,omitzero"`
	// Weighting is the event weighting the model was trained with. The
	// server folds a live profile in with it, so a trainer and a server
	// configured differently cannot silently disagree. Nil in models from
	// before it was recorded: the server's own weighting applies.
	Weighting *event.Weighting `json:"weighting,omitempty"`
	// Tuning, when the job chose the hyperparameters itself, records the
	// search: the next run starts from Tuning.Chosen (warm start).
	Tuning *Tuning `json:"tuning,omitempty"`
}

// Tuning is how the retraining job chose a model's settings.
type Tuning struct {
	// Chosen are the settings the search picked (Info.Hyper of the model
	// trained with them) and Score their validation Metric.
	Chosen Hyperparameters `json:"chosen"`
	Metric string          `json:"metric"`
	Score  float64         `json:"score"`
	// Scorer is what the trials were scored by: "als" (MF alone) or
	// "als+blend" (the best point of the blend's validation grid).
	Scorer string `json:"scorer,omitempty"`
	// BudgetSeconds is the search's time budget, UsedSeconds what it took.
	BudgetSeconds float64 `json:"budget_seconds"`
	UsedSeconds   float64 `json:"used_seconds"`
	// Candidate is the kind of model the gate published ("als", "blend").
	Candidate string `json:"candidate,omitempty"`
	// Trials is the search trace in the order it ran.
	Trials []TuningTrial `json:"trials,omitempty"`
}

// TuningTrial is one evaluated setting of a search.
type TuningTrial struct {
	Hyper   Hyperparameters `json:"hyperparameters"`
	Bracket int             `json:"bracket"`
	Rung    int             `json:"rung"`
	Cases   int             `json:"cases"` // validation users scored
	Score   float64         `json:"score"`
	Seconds float64         `json:"seconds"`
	// Aborted trials hit the budget before finishing; they have no score.
	Aborted bool `json:"aborted,omitempty"`
}

// Model is an immutable, ready-to-serve factor model.
type Model struct {
	info    Info
	ids     []string
	index   map[string]int32
	factors []float32 // len(ids) × Factors, row-major
	f       int

	gram  []float64 // YᵀY, f×f, row-major, full
	norms []float32 // ‖y_i‖

	packed *packedFactors // ScoresBlock's layout, built on first use

	sections []Section // sorted by kind; see section.go

	dropped BadIDs // what Read left out of the artifact; zero otherwise

	// base is the number of trained rows when WithExtraItems added more
	// (0: every row is trained).
	base int
}

// BadIDs tells what Read dropped from an artifact because ids broke the one
// id rule (event.CheckID): items trained before the rule was enforced.
type BadIDs struct {
	Items    int      // items dropped with their factors
	Sections []string // kinds of the sections dropped with them (their item indices no longer hold)
}

// DroppedIDs tells what Read dropped from the artifact because of bad ids;
// the loader logs it. A model built by New drops nothing.
func (m *Model) DroppedIDs() BadIDs { return m.dropped }

// ErrInvalid marks a model that cannot serve (bad shape, NaN, duplicates…).
var ErrInvalid = errors.New("invalid model")

// New checks the parts of a model and builds its derived state. It keeps ids
// and factors without copying; the caller must not modify them afterwards.
func New(info Info, ids []string, factors []float32) (*Model, error) {
	f := info.Hyper.Factors
	if err := info.Hyper.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if info.Weighting != nil {
		if err := info.Weighting.Validate(); err != nil {
			return nil, fmt.Errorf("%w: weighting: %v", ErrInvalid, err)
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: no items", ErrInvalid)
	}
	if len(ids) > MaxItems {
		return nil, fmt.Errorf("%w: %d items, at most %d", ErrInvalid, len(ids), MaxItems)
	}
	if len(factors) != len(ids)*f {
		return nil, fmt.Errorf("%w: %d factor values for %d items × %d factors", ErrInvalid, len(factors), len(ids), f)
	}
	if info.Items != 0 && info.Items != int64(len(ids)) {
		return nil, fmt.Errorf("%w: header says %d items, table has %d", ErrInvalid, info.Items, len(ids))
	}
	info.Items = int64(len(ids))
	index := make(map[string]int32, len(ids))
	for i, id := range ids {
		if err := event.CheckID(id); err != nil {
			// The one id rule: an id that breaks it could not be asked
			// for, and an answer holding it could not be marshalled.
			return nil, fmt.Errorf("%w: item %d: id %v", ErrInvalid, i, err)
		}
		if _, dup := index[id]; dup {
			return nil, fmt.Errorf("%w: item id %q appears twice", ErrInvalid, id)
		}
		index[id] = int32(i)
	}
	for i, v := range factors {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("%w: factor %d of item %q is %v", ErrInvalid, i%f, ids[i/f], v)
		}
	}
	m := &Model{info: info, ids: ids, index: index, factors: factors, f: f, packed: &packedFactors{}}
	m.gram = Gram(factors, f)
	m.norms = make([]float32, len(ids))
	for i := range ids {
		var s float64
		for _, v := range factors[i*f : (i+1)*f] {
			s += float64(v) * float64(v)
		}
		m.norms[i] = float32(math.Sqrt(s))
	}
	return m, nil
}

// Gram returns YᵀY (f×f, row-major, float64) of the n×f row-major matrix y.
func Gram(y []float32, f int) []float64 {
	g := make([]float64, f*f)
	for off := 0; off+f <= len(y); off += f {
		row := y[off : off+f]
		for a, ya := range row {
			if ya == 0 {
				continue
			}
			ga := g[a*f : a*f+f]
			yaf := float64(ya)
			for b := a; b < f; b++ {
				ga[b] += yaf * float64(row[b])
			}
		}
	}
	for a := 0; a < f; a++ {
		for b := 0; b < a; b++ {
			g[a*f+b] = g[b*f+a]
		}
	}
	return g
}

// Info returns the model's description.
func (m *Model) Info() Info { return m.info }

// Version is the model's version.
func (m *Model) Version() string { return m.info.Version }

// WithVersion returns a copy of m whose Info.Version is v. The copy shares the
// factors, id table and derived state with m (all immutable), so stamping a
// model with the version it is published under costs nothing, where mf.New
// would rebuild the index and the Gram matrix.
func (m *Model) WithVersion(v string) *Model {
	c := *m
	c.info.Version = v
	return &c
}

// WithInfo returns a copy of m described by info (sharing factors, ids,
// sections and derived state), as the job stamps metrics and the tuning
// record on a trained model. info must keep the hyperparameters the factors
// were trained with: fold-in uses them.
func (m *Model) WithInfo(info Info) (*Model, error) {
	if info.Hyper != m.info.Hyper {
		return nil, fmt.Errorf("%w: new info has hyperparameters %+v, the factors were trained with %+v", ErrInvalid, info.Hyper, m.info.Hyper)
	}
	if info.Weighting != nil {
		if err := info.Weighting.Validate(); err != nil {
			return nil, fmt.Errorf("%w: weighting: %v", ErrInvalid, err)
		}
	}
	c := *m
	c.info = info
	return &c, nil
}

// Factors is the number of latent factors.
func (m *Model) Factors() int { return m.f }

// NumItems is the number of items the model can score.
func (m *Model) NumItems() int { return len(m.ids) }

// Index returns the row of an item id, or false for an unknown item.
func (m *Model) Index(id string) (int32, bool) {
	i, ok := m.index[id]
	return i, ok
}

// ItemID returns the id of row i.
func (m *Model) ItemID(i int32) string { return m.ids[i] }

// ItemIDs returns the id table; callers must not modify it.
func (m *Model) ItemIDs() []string { return m.ids }

// Vector returns the factors of row i; callers must not modify them.
func (m *Model) Vector(i int32) []float32 {
	return m.factors[int(i)*m.f : int(i+1)*m.f]
}

// Matrix returns the whole item-factor block (NumItems × Factors, row-major);
// callers must not modify it.
func (m *Model) Matrix() []float32 { return m.factors }

// Norm returns ‖y_i‖.
func (m *Model) Norm(i int32) float32 { return m.norms[i] }

// Gram returns YᵀY (f×f, row-major, full), computed when the model was
// built. Callers must not modify it.
func (m *Model) Gram() []float64 { return m.gram }

// BaseItems is the number of rows the model was trained with: its first
// BaseItems rows. Rows after them were added by WithExtraItems (items
// placed by their attributes, package content).
func (m *Model) BaseItems() int {
	if m.base > 0 {
		return m.base
	}
	return len(m.ids)
}

// WithExtraItems returns a copy of m with rows for more items appended
// (vectors: len(ids) × Factors, row-major), as the server adds items its
// model has never seen, placed by their attributes. Fold-in keeps the
// trained model's Gram matrix, so a user's vector does not change because
// items were added; sections are shared and keep describing the first
// BaseItems rows. Extra items of m itself are replaced, not kept. ids must
// be new, valid and distinct, and the vectors finite.
func (m *Model) WithExtraItems(ids []string, vectors []float32) (*Model, error) {
	base := m.BaseItems()
	f := m.f
	if len(vectors) != len(ids)*f {
		return nil, fmt.Errorf("%w: %d values for %d extra items × %d factors", ErrInvalid, len(vectors), len(ids), f)
	}
	if base+len(ids) > MaxItems {
		return nil, fmt.Errorf("%w: %d items, at most %d", ErrInvalid, base+len(ids), MaxItems)
	}
	c := *m
	c.base = base
	c.ids = make([]string, base, base+len(ids))
	copy(c.ids, m.ids[:base])
	c.factors = make([]float32, base*f, (base+len(ids))*f)
	copy(c.factors, m.factors[:base*f])
	c.norms = make([]float32, base, base+len(ids))
	copy(c.norms, m.norms[:base])
	c.index = make(map[string]int32, base+len(ids))
	for i, id := range c.ids {
		c.index[id] = int32(i)
	}
	for i, id := range ids {
		if err := event.CheckID(id); err != nil {
			return nil, fmt.Errorf("%w: extra item %d: id %v", ErrInvalid, i, err)
		}
		if _, dup := c.index[id]; dup {
			return nil, fmt.Errorf("%w: extra item id %q appears twice or is in the model", ErrInvalid, id)
		}
		v := vectors[i*f : (i+1)*f]
		var s float64
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, fmt.Errorf("%w: extra item %q has factor %v", ErrInvalid, id, x)
			}
			s += float64(x) * float64(x)
		}
		c.index[id] = int32(len(c.ids))
		c.ids = append(c.ids, id)
		c.factors = append(c.factors, v...)
		c.norms = append(c.norms, float32(math.Sqrt(s)))
	}
	c.info.Items = int64(len(c.ids))
	c.packed = &packedFactors{}
	return &c, nil
}
