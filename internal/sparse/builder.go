package sparse

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
)

// MaxIDLength is the longest user or item id accepted: the one id rule's
// limit (event.CheckID), so every item that trains can also be served.
const MaxIDLength = event.MaxIDBytes

// Index assigns dense int32 indices to string ids in order of first
// appearance. The zero value is ready to use.
type Index struct {
	index map[string]int32
	ids   []string
}

// Intern returns the index of id, assigning the next one if id is new. The
// string is copied on first sight so the index does not pin the caller's
// (possibly large) read buffer.
func (x *Index) Intern(id string) int32 {
	if i, ok := x.index[id]; ok {
		return i
	}
	if x.index == nil {
		x.index = make(map[string]int32)
	}
	i := int32(len(x.ids))
	id = strings.Clone(id)
	x.index[id] = i
	x.ids = append(x.ids, id)
	return i
}

// Lookup returns the index of id, or false if it was never interned.
func (x *Index) Lookup(id string) (int32, bool) {
	i, ok := x.index[id]
	return i, ok
}

// Len is the number of ids.
func (x *Index) Len() int { return len(x.ids) }

// IDs returns the id table (index → id); callers must not modify it.
func (x *Index) IDs() []string { return x.ids }

// Builder aggregates events into a user×item matrix. The strength of a
// (user, item) pair is the sum of Weighting.Of(e, asOf) over that pair's
// events, the same definition the online profile uses. Users and items are
// numbered in order of first appearance, so the same events in the same order
// always give the same matrix. A Builder is not safe for concurrent use.
type Builder struct {
	w       event.Weighting
	asOf    time.Time
	users   Index
	items   Index
	t       Triples
	dropped int64
}

// NewBuilder returns a Builder that weighs events with w as of asOf (the
// time the model is built, so decay is measured from then).
func NewBuilder(w event.Weighting, asOf time.Time) *Builder {
	return &Builder{w: w, asOf: asOf}
}

// Grow reserves room for n more events, sparing the copies of growing the
// event arrays when the caller knows roughly how many events will come.
func (b *Builder) Grow(n int) {
	if n <= 0 {
		return
	}
	b.t.Row = slices.Grow(b.t.Row, n)
	b.t.Col = slices.Grow(b.t.Col, n)
	b.t.Val = slices.Grow(b.t.Val, n)
}

// Add adds one event. It rejects events without a user or item id, with an
// over-long id or an unknown type. An event whose weight is 0 (its type is
// weighted 0) adds nothing and is counted by Dropped.
func (b *Builder) Add(e event.Event) error {
	switch {
	case e.UserID == "":
		return fmt.Errorf("event %q: empty user id", e.ID)
	case e.ItemID == "":
		return fmt.Errorf("event %q: empty item id", e.ID)
	case event.CheckID(e.UserID) != nil:
		return fmt.Errorf("event %q: user id %w", e.ID, event.CheckID(e.UserID))
	case event.CheckID(e.ItemID) != nil:
		return fmt.Errorf("event %q: item id %w", e.ID, event.CheckID(e.ItemID))
	case !e.Type.Valid():
		return fmt.Errorf("event %q: unknown event type %v", e.ID, e.Type)
	}
	w := b.w.Of(e, b.asOf)
	if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 || w > math.MaxFloat32 {
		return fmt.Errorf("event %q: weight %v is not a finite non-negative float32", e.ID, w)
	}
	// An event weighs 0 when its type does, or when it decayed below
	// float32's smallest value (some thousand half-lives old): a zero
	// strength would be an interaction that counts for nothing.
	if float32(w) == 0 {
		b.dropped++
		return nil
	}
	if b.users.Len() == math.MaxInt32 || b.items.Len() == math.MaxInt32 {
		return fmt.Errorf("event %q: more than %d users or items", e.ID, math.MaxInt32)
	}
	b.t.Append(b.users.Intern(e.UserID), b.items.Intern(e.ItemID), float32(w))
	return nil
}

// Events is the number of events added with a non-zero weight.
func (b *Builder) Events() int { return b.t.Len() }

// Dropped is the number of events that weighed 0 and were left out.
func (b *Builder) Dropped() int64 { return b.dropped }

// Build returns the aggregated matrix (users are rows, items are columns).
// It fails only if a pair's summed strength overflows float32. The Builder
// keeps its events and may be added to and built again.
func (b *Builder) Build() (*Matrix, error) {
	m, err := FromTriples(b.users.Len(), b.items.Len(), &b.t, b.users.IDs(), b.items.IDs())
	if err != nil {
		return nil, fmt.Errorf("build user×item matrix: %w", err)
	}
	return m, nil
}

// Triples returns the weighted events added so far, one triple per event in
// the order added (row = user, column = item); callers must not modify them.
// Evaluation uses them to split events before aggregation.
func (b *Builder) Triples() *Triples { return &b.t }

// UserIDs returns the user id table (row → id); callers must not modify it.
func (b *Builder) UserIDs() []string { return b.users.IDs() }

// ItemIDs returns the item id table (column → id); callers must not modify it.
func (b *Builder) ItemIDs() []string { return b.items.IDs() }
