package recommend

import (
	"slices"

	"github.com/recsys-dev/recsys/internal/profile"
	"github.com/recsys-dev/recsys/internal/topk"
)

// answer accumulates the items of one answer across its sources, with the
// per-category counts the diversity cap needs. Its memory lives in the
// request's scratch.
type answer struct {
	items  []Item
	rows   []int32 // model row of each item, -1 when none
	counts map[string]int
	want   int // items to collect (count minus exploration slots)
	cap    int // per-category cap; <= 0: none
	// Per-brand and per-seller caps (<= 0: none) and their counts.
	brandCap, sellerCap       int
	brandCounts, sellerCounts map[string]int
}

// itemKeys are what the diversity caps count an item by; "" is never
// capped.
type itemKeys struct{ category, brand, seller string }

func (a *answer) reset(want, capN int) {
	a.items, a.rows = a.items[:0], a.rows[:0]
	a.counts = emptied(a.counts)
	a.brandCounts = emptied(a.brandCounts)
	a.sellerCounts = emptied(a.sellerCounts)
	a.want, a.cap = want, capN
	a.brandCap, a.sellerCap = 0, 0
}

// capBrandsAndSellers sets the per-brand and per-seller caps (<= 0: none).
func (a *answer) capBrandsAndSellers(brand, seller int) { a.brandCap, a.sellerCap = brand, seller }

func emptied(m map[string]int) map[string]int {
	if m == nil || len(m) > 1024 {
		return make(map[string]int)
	}
	clear(m)
	return m
}

func (a *answer) full() bool { return len(a.items) >= a.want }

// pageSize is how many rows selectRows asks for while a is not full: the
// items it still needs, twice that under a category cap (fewer passes when
// the cap skips some).
func (a *answer) pageSize(capped bool) int {
	need := a.want - len(a.items)
	if capped && a.cap > 0 {
		return 2 * need
	}
	return need
}

// finish copies the items into res (never nil) and marks res partial when
// it holds fewer than count.
func (a *answer) finish(res *Result, count int) {
	res.Items = slices.Clone(a.items)
	if res.Items == nil {
		res.Items = []Item{}
	}
	res.Partial = len(res.Items) < count
}

// overCap reports whether one more item with these keys would break a cap
// (category, brand or seller). Empty keys are never capped.
func (a *answer) overCap(k itemKeys, capped bool) bool {
	if !capped {
		return false
	}
	return (a.cap > 0 && k.category != "" && a.counts[k.category] >= a.cap) ||
		(a.brandCap > 0 && k.brand != "" && a.brandCounts[k.brand] >= a.brandCap) ||
		(a.sellerCap > 0 && k.seller != "" && a.sellerCounts[k.seller] >= a.sellerCap)
}

// count counts an item against the caps.
func (a *answer) count(k itemKeys) {
	if k.category != "" {
		a.counts[k.category]++
	}
	if k.brand != "" {
		a.brandCounts[k.brand]++
	}
	if k.seller != "" {
		a.sellerCounts[k.seller]++
	}
}

// add takes an item and keeps it out of every later source.
func (a *answer) add(fc *reqFilter, it Item, row int32, k itemKeys) {
	a.items = append(a.items, it)
	a.rows = append(a.rows, row)
	a.count(k)
	if row >= 0 {
		fc.excludedIDs[it.ItemID] = struct{}{}
		fc.excluded.set(row)
	} else {
		fc.exclude(it.ItemID)
	}
}

// selectRows adds the best rows (of the index search or s.scores,
// candidates.go) that pass fc, in score order,
// until the answer is full, skipping rows whose category already has a.cap
// items when capped. The result is exactly what a greedy walk down the
// fully sorted list would take, but it needs only a few heap passes over
// the scores: each pass keeps the best rows ranked below the last row the
// previous pass looked at, leaving out categories already full, and only
// rows that could enter the heap are checked against the filter.
func (e *Engine) selectRows(s *scratch, fc *reqFilter, a *answer, capped bool, src Source) {
	st := fc.st
	var bound topk.Entry
	hasBound := false
	full := s.full[:0]
	if capped && a.cap > 0 {
		for c, n := range a.counts { // categories filled by earlier sources
			if i, ok := st.catIndex[c]; ok && n >= a.cap {
				full = append(full, i)
			}
		}
	}
	admit := admitter(fc, &full)
	for !a.full() {
		size := a.pageSize(capped)
		s.entries = topRows(s, size, bound, hasBound, admit)
		for _, en := range s.entries {
			bound, hasBound = en, true
			k := st.keysOf(en.Row)
			if a.overCap(k, capped) {
				continue
			}
			a.add(fc, Item{ItemID: st.model.ItemID(en.Row), Score: en.Score, Source: src}, en.Row, k)
			if capped && a.cap > 0 && k.category != "" && a.counts[k.category] >= a.cap {
				full = append(full, st.category[en.Row])
			}
			if a.full() {
				break
			}
		}
		if len(s.entries) < size {
			break // every row that passes has been looked at
		}
	}
	s.full = full
}

// fillList adds items of a ranked list (popular or trending) that pass fc
// until the answer is full. Scores are the list's when keepScores, else 0
// (a list's scores are not comparable with the items before them).
func (e *Engine) fillList(fc *reqFilter, a *answer, list []profile.ItemScore, src Source, reason ReasonKind, keepScores, capped bool) {
	for _, p := range list {
		if a.full() {
			return
		}
		k, ok := fc.itemOK(p.ItemID)
		if !ok || a.overCap(k, capped) {
			continue
		}
		score := float32(0)
		if keepScores {
			score = float32(p.Score)
		}
		a.add(fc, Item{ItemID: p.ItemID, Score: score, Source: src, Reason: Reason{Kind: reason}}, -1, k)
	}
}

// CapPerCategory returns the first k items of ranked (best first) that a
// greedy walk takes when at most maxPer items may share a category:
// category(i) gives an item's category, negative for none (never capped).
// It is the rule Recommend applies with Request.MaxPerCategory, exposed so
// offline evaluation can measure its cost on ranked lists. maxPer <= 0
// means no cap. dst is reused.
func CapPerCategory(dst, ranked []int32, k, maxPer int, category func(int32) int32) []int32 {
	dst = dst[:0]
	if maxPer <= 0 {
		return append(dst, ranked[:min(k, len(ranked))]...)
	}
	counts := make(map[int32]int)
	for _, it := range ranked {
		if len(dst) >= k {
			break
		}
		c := category(it)
		if c >= 0 && counts[c] >= maxPer {
			continue
		}
		if c >= 0 {
			counts[c]++
		}
		dst = append(dst, it)
	}
	return dst
}
