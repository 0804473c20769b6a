package recommend

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/catalog"
	"github.com/recsys-dev/recsys/internal/content"
)

// rangeCatalog is a staticCatalog that content placement can scan.
type rangeCatalog struct{ *staticCatalog }

func (c rangeCatalog) Range(fn func(catalog.Item) bool) {
	c.mu.Lock()
	items := make([]catalog.Item, 0, len(c.items))
	for _, it := range c.items {
		items = append(items, it)
	}
	c.mu.Unlock()
	for _, it := range items {
		if !fn(it) {
			return
		}
	}
}

// BenchmarkContentRefresh is what a catalog change that touches an item
// the model lacks costs the server: scanning the catalog for such items,
// placing them (the content map) and building the served model again (its
// rows, row state and flat index), for a model of n items and 1,000 new
// catalog items.
func BenchmarkContentRefresh(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run("items="+strconv.Itoa(n)+"/factors=64/new=1000", func(b *testing.B) {
			m := benchModel(b, n, 64)
			describe := func(i int) catalog.Item {
				return catalog.Item{ID: "x" + strconv.Itoa(i), Category: "c" + strconv.Itoa(i%100), Brand: "b" + strconv.Itoa(i%500),
					Price: float64(1 + i%300), Available: true}
			}
			cat := &staticCatalog{items: map[string]catalog.Item{}}
			for r := range int32(n) {
				it := describe(int(r))
				it.ID = m.ItemID(r)
				cat.items[it.ID] = it
			}
			mp, err := content.Fit(context.Background(), m, func(id string) (content.Item, bool) {
				it, ok := cat.items[id]
				return it.Content(), ok
			}, content.Options{Iterations: 10})
			if err != nil {
				b.Fatal(err)
			}
			if m, err = m.WithSections(mp.Section()); err != nil {
				b.Fatal(err)
			}
			for i := range 1000 {
				cat.items["new"+strconv.Itoa(i)] = describe(i)
			}
			cat.version = 1
			eng, err := New(Config{Now: time.Now}, staticProfiles{}, rangeCatalog{cat}, NewPopular(noPopular{}, 10, quietLog()))
			if err != nil {
				b.Fatal(err)
			}
			if err := eng.SetModel(m); err != nil {
				b.Fatal(err)
			}
			if got := eng.Model().NumItems(); got != n+1000 {
				b.Fatalf("serving %d items, want %d", got, n+1000)
			}
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				it := describe(i)
				it.ID = "new" + strconv.Itoa(i%1000)
				it.Brand = "b" + strconv.Itoa(i%7) // moves the item
				cat.set(it)
				eng.refreshContent()
				i++
			}
		})
	}
}
