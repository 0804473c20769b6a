package retrain

import (
	"context"
	"log/slog"

	"github.com/recsys-dev/recsys/internal/eval"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/traindata"
)

// Candidate is a kind of model the job may publish: plain ALS, or a model
// that adds terms to it (the blend of item neighbours and transitions of
// package blend). The job fits every candidate on the gate's training part,
// evaluates them on its holdout next to popularity and item-kNN, publishes
// the best one (refit on every event) and refuses when a baseline is better
// than every candidate.
type Candidate interface {
	// Name is the candidate's name in reports ("als", "blend").
	Name() string
	// Fit builds the candidate from in. It must not keep in.Data or
	// in.Matrix beyond what the returned model needs.
	Fit(ctx context.Context, in FitInput) (Fitted, error)
}

// FitInput is what a candidate is fitted on.
type FitInput struct {
	// Data are the training events in input order with their times
	// (positions for sequence files): sequential terms read the order.
	Data *traindata.Data
	// MF is ALS trained on Data's aggregated matrix with the job's
	// (tuned) settings, shared by every candidate.
	MF *mf.Model
	// Workers bounds parallelism; Logger receives progress.
	Workers int
	Logger  *slog.Logger
}

// Fitted is a fitted candidate: a recommender for the gate's evaluation
// (its items are the columns of the matrix it was fitted on) and the model
// artifact that serves it.
type Fitted interface {
	eval.Recommender
	// Model is the artifact to publish: an mf.Model, with the sections the
	// serving side needs to score it as it was evaluated.
	Model() *mf.Model
}

// ALSCandidate is plain ALS: the shared MF model, folded in as the server
// does.
type ALSCandidate struct{}

var _ Candidate = ALSCandidate{}

// Name is "als".
func (ALSCandidate) Name() string { return "als" }

// Fit returns the shared MF model.
func (ALSCandidate) Fit(_ context.Context, in FitInput) (Fitted, error) {
	return alsFitted{eval.NewALS(in.MF, nil), in.MF}, nil
}

type alsFitted struct {
	*eval.ALS
	m *mf.Model
}

func (f alsFitted) Model() *mf.Model { return f.m }

// DefaultCandidates are the candidates of a Config that names none.
func DefaultCandidates() []Candidate { return []Candidate{ALSCandidate{}} }
