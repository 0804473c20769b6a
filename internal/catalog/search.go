package catalog

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
)

// SearchMatch is a catalog value a search query matched: a category name
// or a string attribute value (brand, seller, a declared string attribute).
type SearchMatch struct {
	Attribute string // AttrCategory, AttrBrand, AttrSeller or a declared name
	Value     string
}

// MaxSearchMatches bounds the matches of one query.
const MaxSearchMatches = 20

// searchRebuildEvery is the least time between two rebuilds of the search
// index: a catalog that changes all the time is scanned at most this often
// (on a search), and searches in between match the previous index.
const searchRebuildEvery = 10 * time.Second

// SearchIndex matches search queries against the category names and string
// attribute values of a Cache. It is built from the cache on first use and
// rebuilt, on a search, when the catalog has changed and the last build is
// at least 10 s old. Safe for concurrent use.
type SearchIndex struct {
	cache *Cache
	now   func() time.Time

	mu      sync.Mutex
	built   bool
	version uint64
	at      time.Time
	tokens  map[string][]int32 // token -> indexes into values
	values  []indexedValue
}

type indexedValue struct {
	SearchMatch
	tokens int // how many distinct tokens the value has
}

// NewSearchIndex returns an index of c; now is the clock (nil: time.Now).
func NewSearchIndex(c *Cache, now func() time.Time) *SearchIndex {
	if now == nil {
		now = time.Now
	}
	return &SearchIndex{cache: c, now: now}
}

// Tokens splits text into lowercase words of letters and digits, at least
// two characters long, each once, in order of first appearance.
func Tokens(text string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		if len([]rune(f)) >= 2 && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// Match returns the catalog values that share a token with the query, the
// ones with the largest share of their tokens in the query first (ties by
// attribute and value), at most MaxSearchMatches.
func (x *SearchIndex) Match(query string) []SearchMatch {
	q := Tokens(query)
	if len(q) == 0 {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.refresh()
	hits := map[int32]int{}
	for _, t := range q {
		for _, v := range x.tokens[t] {
			hits[v]++
		}
	}
	type scored struct {
		v     int32
		share float64
	}
	all := make([]scored, 0, len(hits))
	for v, n := range hits {
		all = append(all, scored{v, float64(n) / float64(x.values[v].tokens)})
	}
	slices.SortFunc(all, func(a, b scored) int {
		if c := cmp.Compare(b.share, a.share); c != 0 {
			return c
		}
		va, vb := x.values[a.v], x.values[b.v]
		if c := cmp.Compare(va.Attribute, vb.Attribute); c != 0 {
			return c
		}
		return cmp.Compare(va.Value, vb.Value)
	})
	out := make([]SearchMatch, 0, min(len(all), MaxSearchMatches))
	for _, s := range all[:min(len(all), MaxSearchMatches)] {
		out = append(out, x.values[s.v].SearchMatch)
	}
	return out
}

// refresh rebuilds the index when it is missing, or stale and old enough.
// x.mu is held.
func (x *SearchIndex) refresh() {
	v, now := x.cache.Version(), x.now()
	if x.built && (v == x.version || now.Sub(x.at) < searchRebuildEvery) {
		return
	}
	x.built, x.version, x.at = true, v, now
	x.tokens = map[string][]int32{}
	x.values = x.values[:0]
	seen := map[SearchMatch]struct{}{}
	add := func(attr, value string) {
		// A newline separates matches where a profile stores them.
		if value == "" || strings.ContainsAny(value, "\n\x00") {
			return
		}
		m := SearchMatch{attr, value}
		if _, ok := seen[m]; ok {
			return
		}
		seen[m] = struct{}{}
		toks := Tokens(value)
		if len(toks) == 0 {
			return
		}
		i := int32(len(x.values))
		x.values = append(x.values, indexedValue{m, len(toks)})
		for _, t := range toks {
			x.tokens[t] = append(x.tokens[t], i)
		}
	}
	x.cache.Range(func(it Item) bool {
		add(AttrCategory, it.Category)
		add(AttrBrand, it.Brand)
		add(AttrSeller, it.Seller)
		for _, a := range it.Attributes {
			if a.Type == AttrString {
				add(a.Name, a.Str)
			}
		}
		return true
	})
}
