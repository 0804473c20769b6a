package recommend

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/recsys-dev/recsys/internal/cooccur"
	"github.com/recsys-dev/recsys/internal/itemindex"
	"github.com/recsys-dev/recsys/internal/mf"
)

// BoughtLists reads the co-purchase lists of items (implemented by
// *cooccur.Store); an item without a list gets nil.
type BoughtLists interface {
	Read(ctx context.Context, itemIDs []string) ([][]cooccur.Entry, error)
}

// BoughtRequest asks for items bought together with one item or a cart.
type BoughtRequest struct {
	ItemIDs []string // the cart; never returned
	Count   int
	Exclude []string
	Filter  Filter // IncludePurchased has no effect (there is no user)
	// WithoutLists answers from the fallbacks alone, for when the lists'
	// store failed.
	WithoutLists bool
}

// BoughtTogether returns up to req.Count items bought together with the
// items of req.ItemIDs, under the hard rules, req.Filter and the exclusions
// (the cart and req.Exclude), which no stage relaxes:
//
//  1. the cart items' co-purchase lists, merged by summing each candidate's
//     scores (SourceBoughtTogether; the reason names the cart item that
//     contributes most);
//  2. the items closest to the cart by the model (cosine of item factors,
//     summed over the cart items the model knows), from categories other
//     than the cart items' (SourceSimilar; the reason names the closest cart
//     item);
//  3. popular items from other categories, then from any category.
//
// A list read failure is returned as an error (the caller may retry with
// WithoutLists); an item the lists or the model do not know simply
// contributes nothing.
func (e *Engine) BoughtTogether(ctx context.Context, req BoughtRequest) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	cart := uniqueIDs(req.ItemIDs)
	var lists [][]cooccur.Entry
	if e.cfg.Bought != nil && !req.WithoutLists && len(cart) > 0 {
		var err error
		if lists, err = e.cfg.Bought.Read(ctx, cart); err != nil {
			return Result{}, fmt.Errorf("read bought-together lists: %w", err)
		}
	}

	m := e.model.Load()
	s := e.itemAnswer(m, req.Filter, req.Count, req.Exclude, cart)
	defer e.putScratch(s)
	fc, a := &s.filter, &s.answer

	var res Result
	if m != nil {
		res.ModelVersion = m.Version()
	}
	e.fillBought(fc, a, cart, lists)

	restore := fc.avoidCategories(e.categoriesOf(cart))
	if !a.full() && m != nil {
		e.fillCartSimilar(s, fc, a, m, cart)
	}
	alone := len(a.items) == 0 // popular scores are kept when popular answers alone
	e.fillList(fc, a, e.popular.List(), SourcePopular, ReasonPopular, alone, false)
	restore()
	e.fillList(fc, a, e.popular.List(), SourcePopular, ReasonPopular, alone, false)

	res.Source = SourcePopular
	if len(a.items) > 0 {
		res.Source = a.items[0].Source
	}
	a.finish(&res, req.Count)
	return res, nil
}

// uniqueIDs drops repeated and empty ids, keeping the first occurrence.
func uniqueIDs(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// boughtCandidate is an item of the merged lists.
type boughtCandidate struct {
	id    string
	score float32 // sum over the cart items' lists
	with  string  // the cart item whose list gives the largest term
	best  float32 // that term
}

// fillBought merges the cart items' lists (lists[k] belongs to cart[k]) and
// adds the candidates that pass fc, best first.
func (e *Engine) fillBought(fc *reqFilter, a *answer, cart []string, lists [][]cooccur.Entry) {
	total := 0
	for _, l := range lists {
		total += len(l)
	}
	if total == 0 {
		return
	}
	at := make(map[string]int, total)
	cands := make([]boughtCandidate, 0, total)
	for k, l := range lists {
		for _, en := range l {
			i, ok := at[en.ItemID]
			if !ok {
				i = len(cands)
				at[en.ItemID] = i
				cands = append(cands, boughtCandidate{id: en.ItemID})
			}
			c := &cands[i]
			c.score += en.Score
			if c.with == "" || en.Score > c.best {
				c.with, c.best = cart[k], en.Score
			}
		}
	}
	slices.SortFunc(cands, func(x, y boughtCandidate) int {
		if x.score != y.score {
			return cmp.Compare(y.score, x.score)
		}
		return cmp.Compare(x.id, y.id)
	})
	for _, c := range cands {
		if a.full() {
			return
		}
		k, ok := fc.itemOK(c.id)
		if !ok {
			continue
		}
		a.add(fc, Item{ItemID: c.id, Score: c.score, Source: SourceBoughtTogether,
			Reason: Reason{Kind: ReasonBoughtTogether, ItemID: c.with}}, -1, k)
	}
}

// categoriesOf returns the catalog categories of items (none without a
// catalog).
func (e *Engine) categoriesOf(ids []string) []string {
	if e.catalog == nil || !e.catalog.Known() {
		return nil
	}
	var cats []string
	for _, id := range ids {
		if it, ok := e.catalog.Lookup(id); ok && it.Category != "" && !slices.Contains(cats, it.Category) {
			cats = append(cats, it.Category)
		}
	}
	return cats
}

// fillCartSimilar adds the items whose summed cosine similarity to the cart
// items the model knows is highest; each one's reason names the cart item it
// is closest to. The sum is one matrix-vector product whatever the cart's
// size: Σ_k cos(y_j, y_k) = y_j·q / |y_j| with q = Σ_k y_k/|y_k|. It uses
// s.scores, s.cosine (for q) and s.rows.
func (e *Engine) fillCartSimilar(s *scratch, fc *reqFilter, a *answer, m *mf.Model, cart []string) {
	for _, id := range cart {
		if r, ok := m.Index(id); ok && m.Norm(r) > 0 {
			s.rows = append(s.rows, r)
		}
	}
	if len(s.rows) == 0 {
		return
	}
	if cap(s.cosine) < m.Factors() {
		s.cosine = make([]float32, m.Factors())
	}
	q := s.cosine[:m.Factors()]
	clear(q)
	for _, r := range s.rows {
		inv := 1 / m.Norm(r)
		for k, v := range m.Vector(r) {
			q[k] += v * inv
		}
	}
	// y_j·q / |y_j| is the index's cosine score with |q| taken as 1.
	e.prepare(m, s, itemindex.Query{X: q, Cosine: true, Norm: 1}, func() {
		m.Scores(q, s.scores)
		for j := range s.scores {
			if nj := m.Norm(int32(j)); nj > 0 {
				s.scores[j] /= nj
			} else {
				s.scores[j] = 0
			}
		}
	})
	first := len(a.items)
	e.selectRows(s, fc, a, false, SourceSimilar)
	for i := first; i < len(a.items); i++ {
		a.items[i].Reason = Reason{Kind: ReasonSimilar, ItemID: m.ItemID(closestRow(m, a.rows[i], s.rows))}
	}
}

// closestRow returns the row of rows with the highest cosine similarity to
// row r.
func closestRow(m *mf.Model, r int32, rows []int32) int32 {
	best, bestSim := rows[0], float32(-2)
	y := m.Vector(r)
	for _, q := range rows {
		d := m.Norm(r) * m.Norm(q)
		if d == 0 {
			continue
		}
		var dot float32
		for k, v := range m.Vector(q) {
			dot += v * y[k]
		}
		if sim := dot / d; sim > bestSim {
			best, bestSim = q, sim
		}
	}
	return best
}
