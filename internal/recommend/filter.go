package recommend

import (
	"context"
	"fmt"
	"log/slog"
	"math/bits"
	"slices"
	"time"

	"github.com/recsys-dev/recsys/internal/catalog"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/periodic"
)

// Filter restricts the items of an answer beyond the hard rules (blocklist,
// availability, sale windows, member-only items), which always apply.
// The zero value adds no restriction.
type Filter struct {
	// IncludeCategories, when not empty, admits only items whose catalog
	// category is one of them (items the catalog does not know are left
	// out).
	IncludeCategories []string
	// ExcludeCategories leaves out items of these categories.
	ExcludeCategories []string
	// Price, when set, admits only items with a known price (> 0) within
	// the range.
	Price *PriceRange
	// IncludeUnavailable admits items the catalog marks unavailable.
	IncludeUnavailable bool
	// MemberTier is the requester's membership tier; member-only items are
	// admitted only when it is set.
	MemberTier string
	// IncludePurchased lets Recommend return items the user bought.
	IncludePurchased bool
	// Region is the shopper's region: items the catalog sells only in
	// other regions are left out. Empty: unknown, no item is left out for
	// its regions (SimilarItems and BoughtTogether have no region).
	Region string
}

// PriceRange is an inclusive price range; Max may be +Inf.
type PriceRange struct{ Min, Max float64 }

// Rules gives the shop's current rules (blocklist, category settings).
// *catalog.RulesCache implements it.
type Rules interface {
	Rules() *catalog.Rules
}

// Per-row flags of the request-independent rules.
const (
	rowUnavailable uint8 = 1 << iota // the catalog says not available
	rowBlocked                       // on the blocklist (by id or category)
	rowMemberOnly                    // for members only
	rowWindow                        // has a sale window; check it at request time
	rowRegional                      // sold only in some regions; check them at request time
)

// rowState is the per-model-row form of the catalog and the rules, so the
// scoring loop's candidates are checked with array reads instead of map
// lookups. It is rebuilt, lazily and once, when the model, the catalog
// version or the rules version changes (rowsFor).
type rowState struct {
	model          *mf.Model
	catalogVersion uint64
	rulesVersion   int64

	flags []uint8
	// flagged has a bit per row, set when its flags are not 0: 1/8 of
	// flags' bytes, so it stays in cache where the random reads of flags
	// by a search's candidate rows missed it (most rows have no flag).
	flagged    []uint64
	category   []int32   // index into categories, -1 for none
	price      []float64 // 0 when unknown; nil when no row has a price
	windows    map[int32]window
	regions    map[int32][]string // of the rowRegional rows
	categories []string
	catIndex   map[string]int32
	// brand and seller index into names (-1: none); nil when no row has
	// one.
	brand, seller []int32
	names         []string
	nameIndex     map[string]int32
	// boosts are the shop's boost rules matched to rows (boost.go); nil
	// without rules.
	boosts *rowBoosts
}

// keysOf returns what the diversity caps count row r by.
func (st *rowState) keysOf(r int32) itemKeys {
	k := itemKeys{category: st.categoryOf(r)}
	if st.brand != nil && st.brand[r] >= 0 {
		k.brand = st.names[st.brand[r]]
	}
	if st.seller != nil && st.seller[r] >= 0 {
		k.seller = st.names[st.seller[r]]
	}
	return k
}

// setName interns a brand or seller name for column col (allocated, all
// -1, on first use) at row i.
func (st *rowState) setName(col *[]int32, i int, name string) {
	if name == "" {
		return
	}
	if *col == nil {
		*col = make([]int32, len(st.flags))
		for j := range *col {
			(*col)[j] = -1
		}
	}
	if st.nameIndex == nil {
		st.nameIndex = map[string]int32{}
	}
	c, ok := st.nameIndex[name]
	if !ok {
		c = int32(len(st.names))
		st.nameIndex[name] = c
		st.names = append(st.names, name)
	}
	(*col)[i] = c
}

type window struct{ from, until time.Time }

func (w window) contains(t time.Time) bool {
	return catalog.Item{ValidFrom: w.from, ValidUntil: w.until}.InWindow(t)
}

// catalogVersion is the version of the catalog in use, 0 without one.
func (e *Engine) catalogVersion() uint64 {
	if e.catalog == nil || !e.catalog.Known() {
		return 0
	}
	return e.catalog.Version()
}

// rules returns the shop's rules in use; nil means none.
func (e *Engine) rules() *catalog.Rules {
	if e.cfg.Rules == nil {
		return nil
	}
	return e.cfg.Rules.Rules()
}

// rowsFor returns the row state of m for the current catalog and rules.
//
// A state for m that is out of date is rebuilt by RunRowState when that
// runs (the daemon's case): requests keep using the previous state, at most
// one rebuild interval old, and never pay for a rebuild (tens of
// milliseconds at 100K items). Without RunRowState the first request to see
// the change rebuilds it; while one does, the others use the previous
// state. Only a model without any state makes requests wait (SetModel
// builds it first, so that happens only for a model set concurrently).
func (e *Engine) rowsFor(m *mf.Model) *rowState {
	st := e.rows.Load()
	if st != nil && st.model == m {
		if e.rowsRunner.Load() || e.rowsCurrent(st) {
			return st
		}
		if !e.rowsMu.TryLock() {
			return st
		}
	} else {
		e.rowsMu.Lock()
	}
	defer e.rowsMu.Unlock()
	return e.refreshRowsLocked(m)
}

// rowsCurrent reports whether st reflects the current catalog and rules.
func (e *Engine) rowsCurrent(st *rowState) bool {
	var rv int64
	if r := e.rules(); r != nil {
		rv = r.Version
	}
	return st.catalogVersion == e.catalogVersion() && st.rulesVersion == rv
}

// refreshRowsLocked returns the state of m, rebuilding it if it is missing
// or out of date. The caller holds rowsMu.
func (e *Engine) refreshRowsLocked(m *mf.Model) *rowState {
	if st := e.rows.Load(); st != nil && st.model == m && e.rowsCurrent(st) {
		return st
	}
	st := e.buildRows(m, e.catalogVersion(), e.rules())
	e.rows.Store(st)
	return st
}

// RunRowState keeps the per-row filter state of the serving model up to
// date with the catalog and the rules, checking every interval, until ctx
// ends, so that requests never rebuild it themselves. It returns nil when
// ctx ends.
func (e *Engine) RunRowState(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		return fmt.Errorf("row state interval must be > 0, got %v", every)
	}
	e.rowsRunner.Store(true)
	defer e.rowsRunner.Store(false)
	// The refresh cannot fail, so nothing is ever logged.
	return periodic.Run(ctx, "row state refresh", every, slog.New(slog.DiscardHandler), func(context.Context) error {
		if last := e.contentLast.Load(); time.Since(time.Unix(0, last)) >= e.cfg.ContentInterval {
			e.refreshContent() // content.go
		}
		if m := e.model.Load(); m != nil {
			e.rowsMu.Lock()
			e.refreshRowsLocked(m)
			e.rowsMu.Unlock()
		}
		return nil
	})
}

func (e *Engine) buildRows(m *mf.Model, cv uint64, rules *catalog.Rules) *rowState {
	n := m.NumItems()
	st := &rowState{
		model: m, catalogVersion: cv,
		flags: make([]uint8, n), category: make([]int32, n),
		windows: map[int32]window{}, regions: map[int32][]string{}, catIndex: map[string]int32{},
	}
	if rules != nil {
		st.rulesVersion = rules.Version
	}
	useCatalog := cv != 0
	for i := range n {
		r := int32(i)
		id := m.ItemID(r)
		st.category[i] = -1
		var it catalog.Item
		found := false
		if useCatalog {
			it, found = e.catalog.Lookup(id)
		}
		if rules.Blocked(id, it.Category) {
			st.flags[i] |= rowBlocked
		}
		if !found {
			continue
		}
		if !it.Available {
			st.flags[i] |= rowUnavailable
		}
		if it.MemberOnly {
			st.flags[i] |= rowMemberOnly
		}
		if it.HasWindow() {
			st.flags[i] |= rowWindow
			st.windows[r] = window{it.ValidFrom, it.ValidUntil}
		}
		if len(it.Regions) > 0 {
			st.flags[i] |= rowRegional
			st.regions[r] = it.Regions
		}
		if it.Category != "" {
			c, ok := st.catIndex[it.Category]
			if !ok {
				c = int32(len(st.categories))
				st.catIndex[it.Category] = c
				st.categories = append(st.categories, it.Category)
			}
			st.category[i] = c
		}
		if it.Price > 0 {
			if st.price == nil {
				st.price = make([]float64, n)
			}
			st.price[i] = it.Price
		}
		st.setName(&st.brand, i, it.Brand)
		st.setName(&st.seller, i, it.Seller)
	}
	st.flagged = make([]uint64, (n+63)/64)
	for i, fl := range st.flags {
		if fl != 0 {
			st.flagged[i>>6] |= 1 << (uint(i) & 63)
		}
	}
	if useCatalog {
		st.boosts = buildBoosts(st, rules, func(r int32) (catalog.Item, bool) { return e.catalog.Lookup(m.ItemID(r)) })
	}
	return st
}

// categoryOf is a row's category name, "" for none.
func (st *rowState) categoryOf(r int32) string {
	if c := st.category[r]; c >= 0 {
		return st.categories[c]
	}
	return ""
}

// bitset is a set of model rows. It remembers which words it set, so
// making it empty again clears those words only: a request marks a few
// dozen rows of a set sized for every row (125 KB at 1M items), and
// clearing all of it per request (per user of a push) cost more than
// using it. A summary bit per 512 rows (256 bytes at 1M items, it stays in
// the L1 cache) answers has for most rows without reading the words, whose
// lines are mostly cold.
type bitset struct {
	words   []uint64
	summary []uint64 // bit i: some row of words[8i : 8i+8] is set
	touched []int32  // indexes of the words set since the last sized
}

func (b *bitset) has(r int32) bool {
	if b.summary[r>>15]&(1<<(uint(r>>9)&63)) == 0 {
		return false
	}
	return b.words[r>>6]&(1<<(uint(r)&63)) != 0
}

func (b *bitset) set(r int32) {
	w := r >> 6
	if b.words[w] == 0 {
		b.touched = append(b.touched, w)
	}
	b.words[w] |= 1 << (uint(r) & 63)
	b.summary[r>>15] |= 1 << (uint(r>>9) & 63)
}

// sized makes b an empty set with room for n rows.
func (b *bitset) sized(n int) {
	w := (n + 63) / 64
	switch {
	case cap(b.words) < w:
		b.words = make([]uint64, w)
	case len(b.words) != w || len(b.touched) > w/8:
		b.words = b.words[:w]
		clear(b.words)
	default:
		for _, i := range b.touched {
			b.words[i] = 0
		}
	}
	b.touched = b.touched[:0]
	sw := (n + 1<<15 - 1) >> 15
	if cap(b.summary) < sw {
		b.summary = make([]uint64, sw)
	}
	b.summary = b.summary[:sw]
	clear(b.summary)
}

func (b *bitset) count() int {
	n := 0
	for _, w := range b.words {
		n += bits.OnesCount64(w)
	}
	return n
}

// reqFilter is a request's filter compiled against the row state: what an
// item must pass to enter the answer. Items of the model are checked by row
// (rowOK, on the hot path, only for rows that could enter the heap); other
// items (popular, trending, new arrivals) by id through the catalog
// (itemOK). Both apply the same rules.
type reqFilter struct {
	st       *rowState // nil without a model
	catalog  Catalog   // nil or unknown: no catalog rules
	rules    *catalog.Rules
	now      time.Time
	f        Filter
	hardMask uint8
	inc, exc []int32 // category indexes of the filter's categories known to st

	excluded    bitset              // rows never to return (exclusions, chosen)
	excludedIDs map[string]struct{} // the same by id, for items of any source
	rotated     bitset              // rows rotated down by impressions
	rotatedIDs  map[string]struct{}
	// allowRotated admits rotated items (the last fill stage).
	allowRotated bool
}

// reset prepares fc for a request; the sets keep their memory.
func (fc *reqFilter) reset(st *rowState, cat Catalog, rules *catalog.Rules, f Filter, now time.Time) {
	fc.st, fc.rules, fc.f, fc.now, fc.allowRotated = st, rules, f, now, false
	fc.catalog = nil
	if cat != nil && cat.Known() {
		fc.catalog = cat
	}
	fc.hardMask = rowBlocked
	if !f.IncludeUnavailable {
		fc.hardMask |= rowUnavailable
	}
	if f.MemberTier == "" {
		fc.hardMask |= rowMemberOnly
	}
	fc.inc, fc.exc = fc.inc[:0], fc.exc[:0]
	n := 0
	if st != nil {
		n = len(st.flags)
		for _, c := range f.IncludeCategories {
			if i, ok := st.catIndex[c]; ok {
				fc.inc = append(fc.inc, i)
			}
		}
		for _, c := range f.ExcludeCategories {
			if i, ok := st.catIndex[c]; ok {
				fc.exc = append(fc.exc, i)
			}
		}
	}
	fc.excluded.sized(n)
	fc.rotated.sized(n)
	if fc.excludedIDs == nil || len(fc.excludedIDs) > 4096 {
		fc.excludedIDs = make(map[string]struct{})
	}
	if fc.rotatedIDs == nil || len(fc.rotatedIDs) > 4096 {
		fc.rotatedIDs = make(map[string]struct{})
	}
	clear(fc.excludedIDs)
	clear(fc.rotatedIDs)
}

// exclude keeps an item out of the answer.
func (fc *reqFilter) exclude(id string) { fc.mark(fc.excludedIDs, &fc.excluded, id) }

// mark records id in ids and, when the model has it, its row in rows.
func (fc *reqFilter) mark(ids map[string]struct{}, rows *bitset, id string) {
	ids[id] = struct{}{}
	if fc.st != nil {
		if r, ok := fc.st.model.Index(id); ok {
			rows.set(r)
		}
	}
}

// avoidCategories leaves items of cats out too, as if the filter excluded
// them, until the returned function restores the filter as it was.
func (fc *reqFilter) avoidCategories(cats []string) (restore func()) {
	f, exc := fc.f, fc.exc
	if len(cats) == 0 {
		return func() {}
	}
	fc.f.ExcludeCategories = append(slices.Clip(f.ExcludeCategories), cats...)
	if fc.st != nil {
		for _, c := range cats {
			if i, ok := fc.st.catIndex[c]; ok {
				fc.exc = append(fc.exc, i)
			}
		}
	}
	return func() { fc.f, fc.exc = f, exc }
}

// rotate marks an item rotated down.
func (fc *reqFilter) rotate(id string) { fc.mark(fc.rotatedIDs, &fc.rotated, id) }

// boosts are the boost rules matched to fc's rows, or nil.
func (fc *reqFilter) boosts() *rowBoosts {
	if fc.st == nil {
		return nil
	}
	return fc.st.boosts
}

// model is the model fc filters rows of, or nil.
func (fc *reqFilter) model() *mf.Model {
	if fc.st == nil {
		return nil
	}
	return fc.st.model
}

// rowOK reports whether model row r may enter the answer.
func (fc *reqFilter) rowOK(r int32) bool {
	st := fc.st
	if fc.excluded.has(r) || (!fc.allowRotated && fc.rotated.has(r)) {
		return false
	}
	if st.flagged[r>>6]&(1<<(uint(r)&63)) != 0 {
		fl := st.flags[r]
		if fl&fc.hardMask != 0 {
			return false
		}
		if fl&rowWindow != 0 && !st.windows[r].contains(fc.now) {
			return false
		}
		if fl&rowRegional != 0 && fc.f.Region != "" && !slices.Contains(st.regions[r], fc.f.Region) {
			return false
		}
	}
	if len(fc.f.IncludeCategories) > 0 && !slices.Contains(fc.inc, st.category[r]) {
		return false
	}
	if len(fc.exc) > 0 && slices.Contains(fc.exc, st.category[r]) {
		return false
	}
	if pr := fc.f.Price; pr != nil {
		var p float64
		if st.price != nil {
			p = st.price[r]
		}
		if !(p > 0) || p < pr.Min || p > pr.Max {
			return false
		}
	}
	return true
}

// itemOK reports whether an item of any source may enter the answer, and
// returns what the diversity caps count it by (empty when unknown).
func (fc *reqFilter) itemOK(id string) (itemKeys, bool) {
	k, d := fc.verdict(id)
	return k, d == Admitted
}

// Verdict says whether an item may enter an answer and, if not, which rule
// keeps it out.
type Verdict uint8

// The verdicts, in the order the rules are checked.
const (
	Admitted    Verdict = iota
	Excluded            // the request or the user's profile excludes it
	Rotated             // rotated down after repeated impressions
	Blocked             // on the blocklist, by id or category
	Unavailable         // the catalog marks it unavailable
	MemberOnly          // for members only, and the request has no tier
	OutOfWindow         // outside its sale window
	Filtered            // the request's filter (categories, price) leaves it out
	NotInRegion         // sold only in regions other than the request's
)

// verdict checks an item of any source against the exclusions, the hard
// rules and the filter, and returns its cap keys (empty when unknown).
func (fc *reqFilter) verdict(id string) (itemKeys, Verdict) {
	if _, ex := fc.excludedIDs[id]; ex {
		return itemKeys{}, Excluded
	}
	if !fc.allowRotated {
		if _, rot := fc.rotatedIDs[id]; rot {
			return itemKeys{}, Rotated
		}
	}
	var it catalog.Item
	found := false
	if fc.catalog != nil {
		it, found = fc.catalog.Lookup(id)
	}
	if fc.rules.Blocked(id, it.Category) {
		return itemKeys{}, Blocked
	}
	f := fc.f
	if found {
		switch {
		case !it.Available && !f.IncludeUnavailable:
			return itemKeys{}, Unavailable
		case it.MemberOnly && f.MemberTier == "":
			return itemKeys{}, MemberOnly
		case !it.InWindow(fc.now):
			return itemKeys{}, OutOfWindow
		case f.Region != "" && !it.InRegion(f.Region):
			return itemKeys{}, NotInRegion
		}
	}
	if len(f.IncludeCategories) > 0 && (!found || !slices.Contains(f.IncludeCategories, it.Category)) {
		return itemKeys{}, Filtered
	}
	if found && len(f.ExcludeCategories) > 0 && slices.Contains(f.ExcludeCategories, it.Category) {
		return itemKeys{}, Filtered
	}
	if pr := f.Price; pr != nil && (!found || !(it.Price > 0) || it.Price < pr.Min || it.Price > pr.Max) {
		return itemKeys{}, Filtered
	}
	return itemKeys{it.Category, it.Brand, it.Seller}, Admitted
}
