package retrain

import (
	"fmt"
	"math"
	"sync"

	"github.com/recsys-dev/recsys/internal/eval"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/traindata"
)

// servingName is the serving model's name in reports.
const servingName = "serving"

// ServingRecommender scores a split with a model trained on other data (the
// one serving now): its item rows are matched to the split's columns by id,
// each case is folded in through mf.Model.FoldIn from the known items the
// model knows, exactly as the server would. Items the model does not know,
// and every item of a case it cannot fold in, score NaN, which ranks nowhere.
type ServingRecommender struct {
	model *mf.Model
	toRow []int32 // split column → model row, or -1
	toCol []int32 // model row → split column, or -1
	cols  int
	pool  sync.Pool // *servingScratch
}

type servingScratch struct {
	ws     mf.Workspace
	rows   []int32
	w      []float64
	scores []float32
}

// NewServingRecommender maps model onto a split whose columns are colIDs.
func NewServingRecommender(model *mf.Model, colIDs []string) *ServingRecommender {
	r := &ServingRecommender{model: model, cols: len(colIDs), toRow: make([]int32, len(colIDs)), toCol: make([]int32, model.NumItems())}
	for i := range r.toCol {
		r.toCol[i] = -1
	}
	for c, id := range colIDs {
		r.toRow[c] = -1
		if row, ok := model.Index(id); ok {
			r.toRow[c] = row
			r.toCol[row] = int32(c)
		}
	}
	return r
}

// Name is "serving".
func (r *ServingRecommender) Name() string { return servingName }

// Scores implements eval.Recommender.
func (r *ServingRecommender) Scores(cases []traindata.Case, out []float32) error {
	if len(out) < len(cases)*r.cols {
		return fmt.Errorf("serving: output holds %d scores, need %d", len(out), len(cases)*r.cols)
	}
	s, _ := r.pool.Get().(*servingScratch)
	if s == nil {
		s = &servingScratch{scores: make([]float32, r.model.NumItems())}
	}
	defer r.pool.Put(s)
	nan := float32(math.NaN())
	for k, c := range cases {
		dst := out[k*r.cols : (k+1)*r.cols]
		for i := range dst {
			dst[i] = nan
		}
		s.rows, s.w = s.rows[:0], s.w[:0]
		for j, col := range c.Known {
			if row := r.toRow[col]; row >= 0 {
				s.rows = append(s.rows, row)
				s.w = append(s.w, float64(c.KnownWeights[j]))
			}
		}
		if len(s.rows) == 0 {
			continue // the serving model cannot personalize this user
		}
		x, err := r.model.FoldIn(&s.ws, s.rows, s.w)
		if err != nil {
			return fmt.Errorf("serving: fold in: %w", err)
		}
		r.model.Scores(x, s.scores)
		for row, sc := range s.scores {
			if col := r.toCol[row]; col >= 0 {
				dst[col] = sc
			}
		}
	}
	return nil
}

var _ eval.Recommender = (*ServingRecommender)(nil)
