package synth_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/dataset"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/synth"
)

func collect(t testing.TB, s *synth.Shop) []event.Event {
	t.Helper()
	var out []event.Event
	if err := s.Generate(context.Background(), func(e event.Event) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func newShop(t testing.TB, cfg synth.Config) *synth.Shop {
	t.Helper()
	s, err := synth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGenerateDeterministic(t *testing.T) {
	cfg := synth.Config{Users: 300, Items: 200, Events: 10_000, Seed: 42}
	a := collect(t, newShop(t, cfg))
	b := collect(t, newShop(t, cfg))
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two shops of one config generated different events")
	}
	s := newShop(t, cfg)
	if again := collect(t, s); !reflect.DeepEqual(a, again) {
		t.Fatal("a second Generate call generated different events")
	}
	items, err := synth.Catalog(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(items, s.Items()) {
		t.Error("Catalog and Shop.Items differ for one config")
	}

	cfg.Seed++
	other := collect(t, newShop(t, cfg))
	same := 0
	for i := range min(len(a), len(other)) {
		if a[i].ItemID == other[i].ItemID && a[i].Time.Equal(other[i].Time) {
			same++
		}
	}
	if same > len(a)/10 {
		t.Errorf("seeds 42 and 43 agree on %d of %d events, want nearly none", same, len(a))
	}
}

// shape holds one mid-sized generation shared by the tests of its
// properties.
var shape = struct {
	once   sync.Once
	cfg    synth.Config
	shop   *synth.Shop
	events []event.Event
}{cfg: synth.Config{Users: 2000, Items: 1000, Events: 100_000, Categories: 20, Seed: 7}}

func shapeData(t *testing.T) (synth.Config, *synth.Shop, []event.Event) {
	shape.once.Do(func() {
		shape.shop = newShop(t, shape.cfg)
		shape.events = collect(t, shape.shop)
	})
	if shape.shop == nil {
		t.Fatal("generation failed in another test")
	}
	return shape.shop.Config(), shape.shop, shape.events
}

func TestGenerateCounts(t *testing.T) {
	cfg, _, events := shapeData(t)
	users, items := map[string]bool{}, map[string]bool{}
	for _, e := range events {
		users[e.UserID], items[e.ItemID] = true, true
	}
	t.Logf("%d events, %d users, %d items", len(events), len(users), len(items))
	if got, want := len(events), cfg.Events; got < want*97/100 || got > want*103/100 {
		t.Errorf("got %d events, want %d ± 3%%", got, want)
	}
	if len(users) != cfg.Users {
		t.Errorf("got %d users with events, want all %d", len(users), cfg.Users)
	}
	if len(items) < cfg.Items*9/10 {
		t.Errorf("got %d items with events, want at least 90%% of %d", len(items), cfg.Items)
	}
}

func TestGenerateEventsWellFormed(t *testing.T) {
	cfg, shop, events := shapeData(t)
	created := map[string]time.Time{}
	for _, it := range shop.Items() {
		created[it.ID] = it.CreatedAt
	}
	ids := make(map[string]bool, len(events))
	done := map[string]bool{} // users whose block of events has ended
	for i, e := range events {
		if ids[e.ID] {
			t.Fatalf("event id %q appears twice", e.ID)
		}
		ids[e.ID] = true
		if i > 0 && events[i-1].UserID != e.UserID {
			done[events[i-1].UserID] = true
			if done[e.UserID] {
				t.Fatalf("events of %s are not contiguous", e.UserID)
			}
		}
		if i > 0 && events[i-1].UserID == e.UserID && !e.Time.After(events[i-1].Time) {
			t.Fatalf("%s: event %s at %v is not after the previous one at %v", e.UserID, e.ID, e.Time, events[i-1].Time)
		}
		if e.Time.Before(cfg.Start) || !e.Time.Before(cfg.End) {
			t.Fatalf("event %s at %v outside [%v, %v)", e.ID, e.Time, cfg.Start, cfg.End)
		}
		if c, ok := created[e.ItemID]; !ok || c.After(e.Time) {
			t.Fatalf("event %s at %v on item %s created at %v (known %v)", e.ID, e.Time, e.ItemID, c, ok)
		}
		if !e.Type.Valid() || e.Type == event.Custom || e.Quantity < 1 || e.Weight != 0 {
			t.Fatalf("malformed event %+v", e)
		}
	}
}

func TestGenerateFunnel(t *testing.T) {
	_, _, events := shapeData(t)
	n := map[event.Type]int{}
	qty1 := 0
	type key struct{ user, item string }
	viewed, carted := map[key]bool{}, map[key]int{}
	for _, e := range events {
		n[e.Type]++
		k := key{e.UserID, e.ItemID}
		switch e.Type {
		case event.View:
			viewed[k] = true
		case event.AddToCart:
			if !viewed[k] {
				t.Fatalf("cart %s without an earlier view of the item", e.ID)
			}
			carted[k]++
			if e.Quantity == 1 {
				qty1++
			}
		case event.Purchase:
			if carted[k] == 0 {
				t.Fatalf("purchase %s without an earlier cart of the item", e.ID)
			}
			carted[k]--
		}
	}
	views, carts, buys := n[event.View], n[event.AddToCart], n[event.Purchase]
	t.Logf("views %d, carts %d (%.3f of views), purchases %d (%.3f of carts), quantity 1 in %.3f of carts",
		views, carts, float64(carts)/float64(views), buys, float64(buys)/float64(carts), float64(qty1)/float64(carts))
	b := synth.DefaultBehavior()
	if r := float64(carts) / float64(views); r < b.CartRate-0.03 || r > b.CartRate+0.03 {
		t.Errorf("got %.3f carts per view, want %.2f ± 0.03", r, b.CartRate)
	}
	// Budgets that run out between cart and checkout lose a few purchases.
	if r := float64(buys) / float64(carts); r < b.PurchaseRate-0.1 || r > b.PurchaseRate+0.03 {
		t.Errorf("got %.3f purchases per cart, want %.2f (-0.1, +0.03)", r, b.PurchaseRate)
	}
	if r := float64(qty1) / float64(carts); r < 0.8 || r > 0.9 {
		t.Errorf("got quantity 1 in %.3f of carts, want 0.85 ± 0.05", r)
	}
}

// topShare is the share of the total held by the largest tenth of counts.
func topShare(counts []int) float64 {
	c := slices.Clone(counts)
	sort.Sort(sort.Reverse(sort.IntSlice(c)))
	top, all := 0, 0
	for i, v := range c {
		if i < max(len(c)/10, 1) {
			top += v
		}
		all += v
	}
	return float64(top) / float64(all)
}

func TestGeneratePopularity(t *testing.T) {
	cfg, shop, events := shapeData(t)
	count := map[string]int{}
	for _, e := range events {
		count[e.ItemID]++
	}
	items := shop.Items()
	counts := make([]int, len(items))
	for i, it := range items {
		counts[i] = count[it.ID]
	}
	observed := topShare(counts)
	// The tenth of items with the largest planted prior.
	byPrior := slices.Clone(items)
	sort.Slice(byPrior, func(a, b int) bool { return byPrior[a].Popularity > byPrior[b].Popularity })
	planted := 0
	for _, it := range byPrior[:cfg.Items/10] {
		planted += count[it.ID]
	}
	plantedShare := float64(planted) / float64(len(events))
	t.Logf("top 10%% of items by events hold %.3f of events; top 10%% by planted prior hold %.3f", observed, plantedShare)
	// Uniform choice would give 0.1; the Zipf(1) prior gives about 0.7.
	if observed < 0.5 {
		t.Errorf("top 10%% of items hold %.3f of events, want > 0.5 (power-law popularity)", observed)
	}
	if plantedShare < 0.4 {
		t.Errorf("top 10%% of items by planted popularity hold %.3f of events, want > 0.4", plantedShare)
	}
}

func TestGenerateActivity(t *testing.T) {
	cfg, shop, events := shapeData(t)
	perUser := map[string]int{}
	for _, e := range events {
		perUser[e.UserID]++
	}
	counts := make([]int, cfg.Users)
	activity := make([]float64, cfg.Users)
	for i := range cfg.Users {
		u, err := shop.User(i)
		if err != nil {
			t.Fatal(err)
		}
		counts[i], activity[i] = perUser[u.ID], u.Activity
	}
	observed := topShare(counts)
	order := make([]int, cfg.Users)
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return activity[order[a]] > activity[order[b]] })
	planted := 0
	for _, i := range order[:cfg.Users/10] {
		planted += counts[i]
	}
	plantedShare := float64(planted) / float64(len(events))
	t.Logf("top 10%% of users hold %.3f of events; the 10%% most active by plan hold %.3f", observed, plantedShare)
	// Equal activity would give 0.1; a log-normal with sigma 1 gives about 0.39.
	if observed < 0.3 || plantedShare < 0.3 {
		t.Errorf("top 10%% of users hold %.3f (by plan %.3f) of events, want > 0.3 (heavy tail)", observed, plantedShare)
	}
}

func TestGeneratePreferences(t *testing.T) {
	cfg, shop, events := shapeData(t)
	category := map[string]string{}
	mass := map[string]float64{} // popularity mass per category
	var total float64
	for _, it := range shop.Items() {
		category[it.ID] = it.Category
		mass[it.Category] += it.Popularity
		total += it.Popularity
	}
	prefs := make(map[string][]string, cfg.Users)
	var baseline float64 // share a popularity-only shopper would put in the same categories
	for i := range cfg.Users {
		u, err := shop.User(i)
		if err != nil {
			t.Fatal(err)
		}
		prefs[u.ID] = u.Categories
	}
	in := 0
	for _, e := range events {
		p := prefs[e.UserID]
		if slices.Contains(p, category[e.ItemID]) {
			in++
		}
		for _, c := range p {
			baseline += mass[c] / total
		}
	}
	share := float64(in) / float64(len(events))
	baseline /= float64(len(events))
	t.Logf("%.3f of events fall in the user's preferred categories; popularity alone would put %.3f there", share, baseline)
	if share < 0.8 || share < 2*baseline {
		t.Errorf("%.3f of events in preferred categories, want > 0.8 and > 2 x the popularity baseline %.3f", share, baseline)
	}
}

// TestGenerateTaste checks the planted within-category taste: the items a
// user picks score higher on user·item than the popularity-weighted average
// of their category, and clearly more so than in a taste-free shop.
func TestGenerateTaste(t *testing.T) {
	lift := func(t *testing.T, b synth.Behavior) float64 {
		cfg := synth.Config{Users: 500, Items: 1000, Events: 30_000, Categories: 10, Seed: 3, Behavior: b}
		shop := newShop(t, cfg)
		items := shop.Items()
		index := map[string]int{}
		byCat := map[string][]int{}
		for i, it := range items {
			index[it.ID] = i
			byCat[it.Category] = append(byCat[it.Category], i)
		}
		dot := func(u, v []float32) float64 {
			var s float64
			for f := range u {
				s += float64(u[f]) * float64(v[f])
			}
			return s
		}
		users := map[string]synth.User{}
		for i := range cfg.Users {
			u, err := shop.User(i)
			if err != nil {
				t.Fatal(err)
			}
			users[u.ID] = u
		}
		type key struct{ user, cat string }
		avg := map[key]float64{}
		var sum float64
		var n int
		for _, e := range collect(t, shop) {
			if e.Type != event.View {
				continue
			}
			u, it := users[e.UserID], items[index[e.ItemID]]
			k := key{e.UserID, it.Category}
			a, ok := avg[k]
			if !ok {
				var w float64
				for _, j := range byCat[it.Category] {
					a += items[j].Popularity * dot(u.Vector, items[j].Vector)
					w += items[j].Popularity
				}
				a /= w
				avg[k] = a
			}
			sum += dot(u.Vector, it.Vector) - a
			n++
		}
		return sum / float64(n)
	}
	withTaste := lift(t, synth.DefaultBehavior())
	noTaste := synth.DefaultBehavior()
	noTaste.Taste = 0
	without := lift(t, noTaste)
	t.Logf("mean user·item above the category's popularity-weighted mean: %.3f with taste, %.3f without", withTaste, without)
	if withTaste < without+0.2 {
		t.Errorf("taste lifts user·item by %.3f, the taste-free shop by %.3f; want at least 0.2 more", withTaste, without)
	}
}

func TestCatalog(t *testing.T) {
	cfg, shop, _ := shapeData(t)
	items := shop.Items()
	if len(items) != cfg.Items {
		t.Fatalf("got %d items, want %d", len(items), cfg.Items)
	}
	size := map[string]int{}
	before, available, top := 0, 0, 0
	for i, it := range items {
		if it.ID != synth.ItemID(i) {
			t.Fatalf("item %d has id %q, want %q", i, it.ID, synth.ItemID(i))
		}
		if it.Price <= 0 || it.Popularity <= 0 || it.Popularity > 1 || len(it.Vector) != cfg.Factors || it.Category == "" {
			t.Fatalf("malformed item %+v", it)
		}
		size[it.Category]++
		if it.CreatedAt.Before(cfg.Start) {
			before++
		}
		if it.CreatedAt.After(cfg.End) {
			t.Fatalf("item %s created at %v, after the period", it.ID, it.CreatedAt)
		}
		if it.Available {
			available++
		}
		if it.Popularity == 1 {
			top++
		}
	}
	sizes := make([]int, 0, len(size))
	for _, n := range size {
		sizes = append(sizes, n)
	}
	slices.Sort(sizes)
	t.Logf("category sizes %v; %d items created before the start; %d available", sizes, before, available)
	if len(sizes) != cfg.Categories {
		t.Errorf("got %d categories with items, want %d", len(sizes), cfg.Categories)
	}
	if sizes[len(sizes)-1] < 3*sizes[0] {
		t.Errorf("category sizes %v, want skewed (largest >= 3 x smallest)", sizes)
	}
	if before < cfg.Items*4/10 || before > cfg.Items*6/10 {
		t.Errorf("%d of %d items created before the start, want about half", before, cfg.Items)
	}
	if r := float64(available) / float64(cfg.Items); r < 0.92 || r > 0.98 {
		t.Errorf("%.3f of items available, want 0.95 ± 0.03", r)
	}
	if top != 1 {
		t.Errorf("%d items with popularity 1, want exactly one (rank 0)", top)
	}
}

func TestUser(t *testing.T) {
	_, shop, _ := shapeData(t)
	for i := range 200 {
		u, err := shop.User(i)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := shop.User(i)
		if !reflect.DeepEqual(u, again) {
			t.Fatalf("User(%d) differs between calls", i)
		}
		if u.ID != synth.UserID(i) || len(u.Categories) < 1 || len(u.Categories) > 3 || len(u.Weights) != len(u.Categories) || u.Activity <= 0 {
			t.Fatalf("malformed user %+v", u)
		}
		var sum float64
		for j, w := range u.Weights {
			sum += w
			if j > 0 && w > u.Weights[j-1] {
				t.Fatalf("user %s weights %v not strongest first", u.ID, u.Weights)
			}
			if slices.Index(u.Categories, u.Categories[j]) != j {
				t.Fatalf("user %s prefers %v: a category twice", u.ID, u.Categories)
			}
		}
		if sum < 0.999999 || sum > 1.000001 {
			t.Fatalf("user %s weights sum to %v", u.ID, sum)
		}
	}
	for _, i := range []int{-1, shop.Config().Users} {
		if _, err := shop.User(i); err == nil {
			t.Errorf("User(%d): got no error", i)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	ok := synth.Config{Users: 10, Items: 10, Events: 100}
	tests := []struct {
		name    string
		change  func(*synth.Config)
		wantErr string
	}{
		{"no users", func(c *synth.Config) { c.Users = 0 }, "users"},
		{"no items", func(c *synth.Config) { c.Items = 0 }, "items"},
		{"fewer events than users", func(c *synth.Config) { c.Events = 9 }, "events must be >= users"},
		{"more categories than items", func(c *synth.Config) { c.Categories = 11 }, "categories"},
		{"negative factors", func(c *synth.Config) { c.Factors = -1 }, "factors"},
		{"end before start", func(c *synth.Config) { c.End = synth.DefaultStart().Add(-time.Hour) }, "end must be"},
		{"probability above 1", func(c *synth.Config) { c.Behavior = synth.DefaultBehavior(); c.Behavior.CartRate = 1.5 }, "cart rate"},
		{"no views", func(c *synth.Config) { c.Behavior = synth.DefaultBehavior(); c.Behavior.ViewsPerSession = 0.5 }, "views per session"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.change(&cfg)
			_, err := synth.New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got %v, want an error about %q", err, tt.wantErr)
			}
		})
	}
	if _, err := synth.New(ok); err != nil {
		t.Errorf("the base config: %v", err)
	}
}

func TestGenerateSmallAndDegenerate(t *testing.T) {
	flat := synth.DefaultBehavior()
	flat.Popularity, flat.Taste, flat.ActivitySkew, flat.Explore = 0, 0, 0, 0
	tests := []synth.Config{
		{Users: 1, Items: 1, Events: 1},
		{Users: 5, Items: 3, Events: 5, Categories: 3},
		{Users: 50, Items: 40, Events: 1000, Factors: 1, Behavior: flat},
		{Users: 20, Items: 100, Events: 2000, Start: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2025, 1, 1, 2, 0, 0, 0, time.UTC)},
	}
	for _, cfg := range tests {
		t.Run(fmt.Sprintf("%d users %d items %d events", cfg.Users, cfg.Items, cfg.Events), func(t *testing.T) {
			shop := newShop(t, cfg)
			events := collect(t, shop)
			users := map[string]bool{}
			for _, e := range events {
				users[e.UserID] = true
			}
			if len(users) != cfg.Users {
				t.Errorf("got %d users with events, want %d", len(users), cfg.Users)
			}
			t.Logf("%d events for a target of %d", len(events), cfg.Events)
		})
	}
}

func TestGenerateStops(t *testing.T) {
	shop := newShop(t, synth.Config{Users: 100, Items: 50, Events: 5000})
	t.Run("callback error", func(t *testing.T) {
		stop := errors.New("stop")
		n := 0
		err := shop.Generate(context.Background(), func(event.Event) error {
			n++
			if n == 10 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || n != 10 {
			t.Errorf("got %v after %d events, want the callback's error after 10", err, n)
		}
	})
	t.Run("canceled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		err := shop.Generate(ctx, func(event.Event) error {
			n++
			if n == 10 {
				cancel()
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) || n >= 5000 {
			t.Errorf("got %v after %d events, want context.Canceled early", err, n)
		}
	})
}

// TestCSVRoundTrip writes generated events with the dataset package's
// writer and reads them back through its reader.
func TestCSVRoundTrip(t *testing.T) {
	want := collect(t, newShop(t, synth.Config{Users: 200, Items: 100, Events: 5000, Seed: 9}))
	var buf bytes.Buffer
	w := dataset.NewCSVWriter(&buf)
	for _, e := range want {
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	var got []event.Event
	st, err := dataset.Read(context.Background(), &buf, dataset.CSV, dataset.Options{}, func(e event.Event) error {
		got = append(got, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != int64(len(want)) || len(got) != len(want) {
		t.Fatalf("read %d events (%+v), wrote %d", len(got), st, len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.Time.Equal(w.Time) {
			t.Fatalf("event %d: got time %v, want %v", i, g.Time, w.Time)
		}
		g.Time, w.Time = time.Time{}, time.Time{}
		if g != w {
			t.Fatalf("event %d: got %+v, want %+v", i, g, w)
		}
	}
}
