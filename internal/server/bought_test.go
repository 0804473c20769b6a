package server_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/recsys-dev/recsys/internal/cooccur"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/recommend"
	"github.com/recsys-dev/recsys/internal/redistest"
	"github.com/recsys-dev/recsys/internal/server"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// boughtCategories puts the planted model's clusters in three categories.
var boughtCategories = map[string]string{"a": "phones", "b": "cases", "c": "outdoor"}

// plantedBaskets is a generated purchase history over the planted model's
// items: a0 is bought with b0, a1 with b1 and a2 with c5 by 30 users each;
// c9 is a best seller two thirds of all users buy alongside whatever else
// they buy; every user also buys a random item the same day.
func plantedBaskets() []event.Event {
	rng := rand.New(rand.NewPCG(11, 12))
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	pairs := [][2]string{{"a0", "b0"}, {"a1", "b1"}, {"a2", "c5"}}
	var evs []event.Event
	buy := func(u int, item string, at time.Time) {
		evs = append(evs, event.Event{UserID: fmt.Sprint("u", u), ItemID: item, Type: event.Purchase, Time: at})
	}
	for u := range 300 {
		day := start.Add(time.Duration(rng.IntN(40)) * 24 * time.Hour)
		if u < 90 {
			p := pairs[u/30]
			buy(u, p[0], day)
			buy(u, p[1], day.Add(time.Hour))
		}
		if rng.IntN(3) < 2 {
			buy(u, "c9", day.Add(2*time.Hour))
		}
		buy(u, fmt.Sprintf("%c%d", "abc"[rng.IntN(3)], 3+rng.IntN(6)), day.Add(3*time.Hour))
	}
	return evs
}

// boughtEnv is a server with the planted model, a catalog of its items in
// three categories, and the co-purchase lists of plantedBaskets written to
// Redis the way the retraining job writes them.
func boughtEnv(t *testing.T, lists *redis.Client) *env {
	t.Helper()
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	var store *cooccur.Store
	var err error
	if lists != nil {
		store, err = cooccur.NewStore(lists, prefix)
	} else {
		store, err = cooccur.NewStore(rdb, prefix)
	}
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, envOptions{model: true, rdb: rdb, prefix: prefix,
		engine: func(c *recommend.Config) { c.Bought = store },
		server: func(_ *server.Config, d *server.Deps) { d.Bought = d.Recommender.(*recommend.Engine) },
	})
	var items []*recsysv1.Item
	for _, c := range "abc" {
		for i := range 10 {
			items = append(items, &recsysv1.Item{ItemId: fmt.Sprintf("%c%d", c, i), Category: boughtCategories[string(c)], Price: 10, Available: true})
		}
	}
	e.upsert(t, items...)
	if lists == nil {
		c, err := cooccur.NewCounter(cooccur.Config{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range plantedBaskets() {
			c.Add(ev)
		}
		if _, err := store.Write(context.Background(), c.Lists(), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

type itemWant struct {
	id     string
	source recsysv1.Source
	reason recsysv1.ReasonKind
	with   string // reason's item
}

func itemsOf(res interface {
	GetItems() []*recsysv1.ScoredItem
}) []itemWant {
	var out []itemWant
	for _, it := range res.GetItems() {
		out = append(out, itemWant{it.GetItemId(), it.GetSource(), it.GetReason().GetKind(), it.GetReason().GetItemId()})
	}
	return out
}

const (
	bt      = recsysv1.Source_SOURCE_BOUGHT_TOGETHER
	sim     = recsysv1.Source_SOURCE_SIMILAR
	pop     = recsysv1.Source_SOURCE_POPULAR
	rBought = recsysv1.ReasonKind_REASON_KIND_BOUGHT_TOGETHER
	rSim    = recsysv1.ReasonKind_REASON_KIND_SIMILAR
)

// The planted pairs come out on top, above the best seller that co-occurs
// with everything; a cart merges its items' lists and each item names the
// cart item it was bought with.
func TestBoughtTogetherPlantedPairs(t *testing.T) {
	e := boughtEnv(t, nil)
	tests := []struct {
		name  string
		req   *recsysv1.BoughtTogetherRequest
		want  []itemWant // the first items, in any order
		never []string
	}{
		{"one item", &recsysv1.BoughtTogetherRequest{ItemIds: []string{"a0"}, Count: 1},
			[]itemWant{{"b0", bt, rBought, "a0"}}, []string{"a0"}},
		{"the pair the other way", &recsysv1.BoughtTogetherRequest{ItemIds: []string{"b1"}, Count: 1},
			[]itemWant{{"a1", bt, rBought, "b1"}}, nil},
		{"a cart of two", &recsysv1.BoughtTogetherRequest{ItemIds: []string{"a0", "a2"}, Count: 2},
			[]itemWant{{"b0", bt, rBought, "a0"}, {"c5", bt, rBought, "a2"}}, []string{"a0", "a2"}},
		{"a repeated id counts once", &recsysv1.BoughtTogetherRequest{ItemIds: []string{"a1", "a1"}, Count: 1},
			[]itemWant{{"b1", bt, rBought, "a1"}}, nil},
		{"a cart holding the partner gets the next best", &recsysv1.BoughtTogetherRequest{ItemIds: []string{"a0", "b0"}, Count: 10},
			nil, []string{"a0", "b0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.rec.BoughtTogether(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			got := itemsOf(res)
			byID := func(x, y itemWant) int { return strings.Compare(x.id, y.id) }
			if len(got) < len(tt.want) || !slices.Equal(slices.SortedFunc(slices.Values(got[:len(tt.want)]), byID), tt.want) {
				t.Errorf("items = %v, want first %v", got, tt.want)
			}
			for _, id := range tt.never {
				if slices.ContainsFunc(got, func(w itemWant) bool { return w.id == id }) {
					t.Errorf("cart item %s returned: %v", id, got)
				}
			}
			if res.GetSource() != bt || res.GetDegraded() || res.GetModelVersion() != "v1" || res.GetRecommendationId() == "" {
				t.Errorf("source %v, degraded %v, model %q, id %q; want BOUGHT_TOGETHER, not degraded, v1, an id",
					res.GetSource(), res.GetDegraded(), res.GetModelVersion(), res.GetRecommendationId())
			}
		})
	}
}

// Lists that are missing or short are filled with the items the model puts
// closest to the cart, from other categories than the cart's, then popular
// items; `source` says which path answered.
func TestBoughtTogetherFallbacks(t *testing.T) {
	e := boughtEnv(t, nil)
	ctx := context.Background()
	// Popular items: x-items the model does not know, in no category.
	now := e.clock.Now()
	for i, id := range []string{"x1", "x2", "x3"} {
		for u := range 3 - i {
			e.record(t, ev(fmt.Sprint("p", u), id, recsysv1.EventType_EVENT_TYPE_PURCHASE, now))
		}
	}
	if err := e.engine.Popular().Refresh(ctx); err != nil {
		t.Fatal(err)
	}

	t.Run("no list: similar items from other categories", func(t *testing.T) {
		res, err := e.rec.BoughtTogether(ctx, &recsysv1.BoughtTogetherRequest{ItemIds: []string{"a9"}, Count: 5})
		if err != nil {
			t.Fatal(err)
		}
		if res.GetSource() != sim || len(res.GetItems()) != 5 {
			t.Fatalf("source %v with %d items, want SIMILAR with 5", res.GetSource(), len(res.GetItems()))
		}
		for _, it := range itemsOf(res) {
			if it.id[0] == 'a' || it.source != sim || it.reason != rSim || it.with != "a9" {
				t.Errorf("item %+v: want a similar item of another category than phones, named after a9 (never bought)", it)
			}
		}
	})
	t.Run("short list: bought together first, then similar", func(t *testing.T) {
		res, err := e.rec.BoughtTogether(ctx, &recsysv1.BoughtTogetherRequest{ItemIds: []string{"a2"}, Count: 30})
		if err != nil {
			t.Fatal(err)
		}
		got := itemsOf(res)
		if len(got) == 0 || got[0] != (itemWant{"c5", bt, rBought, "a2"}) {
			t.Fatalf("items %v, want c5 bought together with a2 first", got)
		}
		listed, similar := 0, 0
		for _, it := range got {
			switch {
			case it.source == bt && similar == 0:
				listed++
			case it.source == sim && it.id[0] != 'a' && it.reason == rSim && it.with == "a2":
				similar++
			case it.source != pop:
				t.Errorf("item %+v after %d listed and %d similar items", it, listed, similar)
			}
		}
		if listed == 0 || similar == 0 || res.GetSource() != bt {
			t.Errorf("%d listed, %d similar items, source %v; want both, BOUGHT_TOGETHER", listed, similar, res.GetSource())
		}
	})
	t.Run("unknown item: popular", func(t *testing.T) {
		res, err := e.rec.BoughtTogether(ctx, &recsysv1.BoughtTogetherRequest{ItemIds: []string{"nobody-knows"}, Count: 10})
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(res.GetItems()); res.GetSource() != pop || !slices.Equal(got, []string{"x1", "x2", "x3"}) || !res.GetPartial() {
			t.Errorf("source %v, items %v, partial %v; want POPULAR x1 x2 x3, partial", res.GetSource(), got, res.GetPartial())
		}
	})
	t.Run("a cart of every category: no similar items", func(t *testing.T) {
		// No other category exists: the similar-items fallback finds
		// nothing, popular items fill, and the answer is partial rather
		// than offering more of what is in the cart.
		res, err := e.rec.BoughtTogether(ctx, &recsysv1.BoughtTogetherRequest{ItemIds: []string{"a7", "b7", "c7"}, Count: 5})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range itemsOf(res) {
			if it.source == sim {
				t.Errorf("similar item %v although every category is in the cart", it)
			}
		}
	})
}

// The hard rules, the request's filter and the exclusions apply to the
// lists as to every other answer.
func TestBoughtTogetherRules(t *testing.T) {
	e := boughtEnv(t, nil)
	ctx := context.Background()
	e.upsert(t, &recsysv1.Item{ItemId: "b1", Category: "cases", Price: 10, Available: false})
	if _, err := e.catalog.AddToBlocklist(ctx, &recsysv1.AddToBlocklistRequest{ItemIds: []string{"c5"}}); err != nil {
		t.Fatal(err)
	}
	e.syncRules(t)
	tests := []struct {
		name string
		req  *recsysv1.BoughtTogetherRequest
		bad  string
	}{
		{"exclude_item_ids", &recsysv1.BoughtTogetherRequest{ItemIds: []string{"a0"}, Count: 5, ExcludeItemIds: []string{"b0"}}, "b0"},
		{"unavailable", &recsysv1.BoughtTogetherRequest{ItemIds: []string{"a1"}, Count: 5}, "b1"},
		{"blocked", &recsysv1.BoughtTogetherRequest{ItemIds: []string{"a2"}, Count: 5}, "c5"},
		{"filter excludes the category", &recsysv1.BoughtTogetherRequest{ItemIds: []string{"a0"}, Count: 5,
			Filter: &recsysv1.Filter{ExcludeCategories: []string{"cases"}}}, "b0"},
		{"filter price", &recsysv1.BoughtTogetherRequest{ItemIds: []string{"a0"}, Count: 5,
			Filter: &recsysv1.Filter{MinPrice: proto.Float64(20)}}, "b0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.rec.BoughtTogether(ctx, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(res.GetItems()); slices.Contains(got, tt.bad) {
				t.Errorf("items %v contain %s", got, tt.bad)
			}
		})
	}
	// Unavailable items are admitted when the filter asks, blocked never.
	res, err := e.rec.BoughtTogether(ctx, &recsysv1.BoughtTogetherRequest{ItemIds: []string{"a1", "a2"}, Count: 5,
		Filter: &recsysv1.Filter{Availability: recsysv1.Availability_AVAILABILITY_INCLUDE_UNAVAILABLE}})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(res.GetItems()); got[0] != "b1" || slices.Contains(got, "c5") {
		t.Errorf("items %v, want b1 first and never c5", got)
	}
}

// Without Redis for the lists, the answer comes from the fallbacks and says
// it is degraded.
func TestBoughtTogetherDegradedWithoutLists(t *testing.T) {
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = dead.Close() })
	e := boughtEnv(t, dead)
	res, err := e.rec.BoughtTogether(context.Background(), &recsysv1.BoughtTogetherRequest{ItemIds: []string{"a0"}, Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !res.GetDegraded() || res.GetSource() != sim || len(res.GetItems()) != 3 {
		t.Errorf("degraded %v, source %v, %d items; want degraded SIMILAR with 3", res.GetDegraded(), res.GetSource(), len(res.GetItems()))
	}
}

func TestBoughtTogetherValidation(t *testing.T) {
	e := boughtEnv(t, nil)
	many := make([]string, server.MaxCartItems+1)
	for i := range many {
		many[i] = fmt.Sprint("i", i)
	}
	tests := []struct {
		name  string
		req   *recsysv1.BoughtTogetherRequest
		field string
	}{
		{"no items", &recsysv1.BoughtTogetherRequest{Count: 5}, "item_ids"},
		{"too many items", &recsysv1.BoughtTogetherRequest{ItemIds: many, Count: 5}, "item_ids"},
		{"empty id", &recsysv1.BoughtTogetherRequest{ItemIds: []string{"a0", ""}, Count: 5}, "item_ids[1]"},
		{"long id", &recsysv1.BoughtTogetherRequest{ItemIds: []string{strings.Repeat("x", 300)}, Count: 5}, "item_ids[0]"},
		{"count 0", &recsysv1.BoughtTogetherRequest{ItemIds: []string{"a0"}}, "count"},
		{"count 501", &recsysv1.BoughtTogetherRequest{ItemIds: []string{"a0"}, Count: 501}, "count"},
		{"bad exclude", &recsysv1.BoughtTogetherRequest{ItemIds: []string{"a0"}, Count: 5, ExcludeItemIds: []string{""}}, "exclude_item_ids[0]"},
		{"bad filter", &recsysv1.BoughtTogetherRequest{ItemIds: []string{"a0"}, Count: 5, Filter: &recsysv1.Filter{MinPrice: proto.Float64(-1)}}, "filter.min_price"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.rec.BoughtTogether(context.Background(), tt.req)
			if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), tt.field+":") {
				t.Errorf("err = %v, want InvalidArgument naming %s", err, tt.field)
			}
		})
	}
	// The largest cart is accepted.
	if _, err := e.rec.BoughtTogether(context.Background(), &recsysv1.BoughtTogetherRequest{ItemIds: many[:server.MaxCartItems], Count: 500}); err != nil {
		t.Errorf("a cart of %d items: %v", server.MaxCartItems, err)
	}
}

// A server without a bought-together engine says so.
func TestBoughtTogetherNotConfigured(t *testing.T) {
	e := newEnv(t, true)
	_, err := e.rec.BoughtTogether(context.Background(), &recsysv1.BoughtTogetherRequest{ItemIds: []string{"a0"}, Count: 5})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("err = %v, want FailedPrecondition", err)
	}
}
