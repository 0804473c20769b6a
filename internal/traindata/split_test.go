package traindata

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/sparse/sparsetest"
)

// ev is one event of a hand-made data set.
type ev struct {
	user, item int32
	val        float32
	time       int64
}

func handData(users, items int, evs []ev) *Data {
	d := &Data{Users: users, Items: items}
	for _, e := range evs {
		d.Append(e.user, e.item, e.val)
		d.Time = append(d.Time, e.time)
	}
	return d
}

func TestLeaveLastOut(t *testing.T) {
	d := handData(3, 5, []ev{
		// User 0: three events, the last by time (item 1) is the test item.
		{0, 1, 1, 9}, {0, 0, 1, 1}, {0, 2, 1, 5},
		// User 1: two events, too few: trained on, no case.
		{1, 3, 1, 1}, {1, 4, 1, 2},
		// User 2: four events with equal times: input order decides.
		{2, 4, 1, 7}, {2, 2, 1, 7}, {2, 3, 1, 7}, {2, 0, 1, 7},
	})
	s, err := LeaveLastOut(d)
	if err != nil {
		t.Fatal(err)
	}
	want := []Case{
		{User: 0, Known: []int32{0, 2}, KnownWeights: []float32{1, 1}, Test: []int32{1}},
		{User: 2, Known: []int32{2, 3, 4}, KnownWeights: []float32{1, 1, 1}, Test: []int32{0}},
	}
	if !reflect.DeepEqual(s.Cases, want) {
		t.Errorf("cases\n got %+v\nwant %+v", s.Cases, want)
	}
	if cols, _ := s.Matrix.Row(1); !slices.Equal(cols, []int32{3, 4}) {
		t.Errorf("user 1 trains on %v, want [3 4]", cols)
	}
	if !strings.Contains(s.Name, "leave-last-out") {
		t.Errorf("split name %q does not say leave-last-out", s.Name)
	}
}

func TestSplitByTime(t *testing.T) {
	d := handData(4, 6, []ev{
		// User 0 in input order, not time order: the latest (t=30) is item 2.
		{0, 2, 1, 30}, {0, 0, 1, 10}, {0, 1, 2, 20},
		// User 1: latest item 0 was also seen earlier: a test item that
		// counts as a miss (it is never ranked).
		{1, 0, 1, 1}, {1, 3, 1, 2}, {1, 0, 5, 3},
		// User 2: a single event, too few to hold one out.
		{2, 4, 1, 1},
		// User 3: ties at t=5 keep input order, so item 5 is the latest.
		{3, 1, 1, 1}, {3, 4, 1, 5}, {3, 5, 3, 5},
	})
	s, err := SplitByTime(d, TimeSplit{LastN: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := []Case{
		{User: 0, Known: []int32{0, 1}, KnownWeights: []float32{1, 2}, Test: []int32{2}},
		{User: 1, Known: []int32{0, 3}, KnownWeights: []float32{1, 1}, Test: []int32{0}},
		{User: 3, Known: []int32{1, 4}, KnownWeights: []float32{1, 1}, Test: []int32{5}},
	}
	if !reflect.DeepEqual(s.Cases, want) {
		t.Errorf("cases\n got %+v\nwant %+v", s.Cases, want)
	}
	// Held-out events are not trained on, even user 1's repeat of item 0.
	if got, want := s.Train.Len(), d.Len()-3; got != want {
		t.Errorf("%d training events, want %d", got, want)
	}
	if cols, vals := s.Matrix.Row(1); !slices.Equal(cols, []int32{0, 3}) || !slices.Equal(vals, []float32{1, 1}) {
		t.Errorf("user 1 trains on %v %v, want [0 3] [1 1]", cols, vals)
	}
	if cols, _ := s.Matrix.Row(2); !slices.Equal(cols, []int32{4}) {
		t.Errorf("user 2 trains on %v, want [4]", cols)
	}
	if s.Name != "time-holdout last 1" {
		t.Errorf("name %q", s.Name)
	}
}

func TestSplitByTimeFraction(t *testing.T) {
	var evs []ev
	for k := range 10 {
		evs = append(evs, ev{0, int32(k), 1, int64(k)})
	}
	evs = append(evs, ev{1, 0, 1, 0}, ev{1, 1, 1, 1}) // 2 events: ⌈0.2·2⌉ = 1 held out
	s, err := SplitByTime(handData(2, 10, evs), TimeSplit{Fraction: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Cases) != 2 || !slices.Equal(s.Cases[0].Test, []int32{8, 9}) || !slices.Equal(s.Cases[1].Test, []int32{1}) {
		t.Errorf("cases %+v, want tests [8 9] and [1]", s.Cases)
	}
	// MinTrain 2 excludes user 1 (it would keep only one event).
	s, err = SplitByTime(handData(2, 10, evs), TimeSplit{Fraction: 0.2, MinTrain: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Cases) != 1 || s.Cases[0].User != 0 {
		t.Errorf("cases %+v, want only user 0", s.Cases)
	}
	if s.Train.Len() != 8+2 {
		t.Errorf("%d training events, want 10 (user 1 stays train-only)", s.Train.Len())
	}
}

func TestSplitByUser(t *testing.T) {
	d := plantedData()
	opt := UserSplit{Users: 100, Seed: 3}
	s, err := SplitByUser(d, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Cases) != 100 {
		t.Fatalf("%d cases, want 100", len(s.Cases))
	}
	all, err := d.Matrix()
	if err != nil {
		t.Fatal(err)
	}
	// Find each case's user by its items: Known ∪ Test must be exactly one
	// user's items, who is absent from training.
	heldOut := map[int]bool{}
	for _, c := range s.Cases {
		if c.User != -1 {
			t.Fatalf("case user %d, want -1 (not trained on)", c.User)
		}
		items := slices.Sorted(slices.Values(append(slices.Clone(c.Known), c.Test...)))
		if len(slices.Compact(slices.Clone(items))) != len(items) {
			t.Fatalf("known %v and test %v overlap", c.Known, c.Test)
		}
		share := float64(len(c.Known)) / float64(len(items))
		if share < 0.6 || share > 0.9 || len(c.Test) == 0 {
			t.Errorf("fold-in share %.2f of %d items", share, len(items))
		}
		found := -1
		for u := 0; u < all.Rows && found < 0; u++ {
			if cols, _ := all.Row(u); slices.Equal(cols, items) {
				found = u
			}
		}
		if found < 0 {
			t.Fatalf("case items %v are no user's items", items)
		}
		heldOut[found] = true
		if s.Matrix.RowLen(found) != 0 {
			t.Errorf("held-out user %d has %d training entries", found, s.Matrix.RowLen(found))
		}
		for j, i := range c.Known {
			cols, vals := all.Row(found)
			k, _ := slices.BinarySearch(cols, i)
			if vals[k] != c.KnownWeights[j] {
				t.Errorf("known weight %v, want the aggregated %v", c.KnownWeights[j], vals[k])
			}
		}
	}
	if len(heldOut) != 100 {
		t.Errorf("%d distinct held-out users, want 100", len(heldOut))
	}
	if got, want := s.Matrix.NNZ()+countEntries(all, heldOut), all.NNZ(); got != want {
		t.Errorf("training entries + held-out entries = %d, want all %d", got, want)
	}
	again, err := SplitByUser(d, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.Cases, s.Cases) {
		t.Error("the same seed gave a different split")
	}
	opt.Seed++
	other, err := SplitByUser(d, opt)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(other.Cases, s.Cases) {
		t.Error("a different seed gave the same split")
	}
}

// plantedData: 2000 users, 1000 items, 8 latent clusters, Zipf-1 item
// popularity, ~29 events per user, 15% noise (internal/eval's quality data).
func plantedData() *Data {
	g := sparsetest.Generate(sparsetest.Config{Users: 2000, Items: 1000, Clusters: 8, PerUser: 30, Zipf: 1.0, Noise: 0.15, Seed: 11})
	return &Data{
		Users: g.Users, Items: g.Items,
		UserIDs: sparsetest.IDs("u", g.Users), ItemIDs: sparsetest.IDs("i", g.Items),
		Triples: g.Triples, Time: g.Time,
	}
}

func countEntries(m interface{ RowLen(int) int }, users map[int]bool) int {
	n := 0
	for u := range users {
		n += m.RowLen(u)
	}
	return n
}

func TestSplitsRejectBadOptions(t *testing.T) {
	d := handData(2, 2, []ev{{0, 0, 1, 1}, {0, 1, 1, 2}, {1, 0, 1, 1}})
	bad := handData(1, 1, []ev{{0, 3, 1, 1}})
	for _, tc := range []struct {
		name string
		run  func() error
		want string
	}{
		{"negative last_n", func() error { _, err := SplitByTime(d, TimeSplit{LastN: -1}); return err }, "last_n"},
		{"fraction 0", func() error { _, err := SplitByTime(d, TimeSplit{}); return err }, "fraction"},
		{"fraction 1", func() error { _, err := SplitByTime(d, TimeSplit{Fraction: 1}); return err }, "fraction"},
		{"nobody to test", func() error { _, err := SplitByTime(d, TimeSplit{LastN: 5}); return err }, "no user"},
		{"item out of range", func() error { _, err := SplitByTime(bad, TimeSplit{LastN: 1}); return err }, "out of range"},
		{"too many users", func() error { _, err := SplitByUser(d, UserSplit{Users: 5, MinItems: 2}); return err }, "eligible"},
		{"user fraction", func() error { _, err := SplitByUser(d, UserSplit{Fraction: 2}); return err }, "fraction"},
		{"fold-in 1", func() error { _, err := SplitByUser(d, UserSplit{Users: 1, FoldIn: 1}); return err }, "fold_in"},
		{"min items 1", func() error { _, err := SplitByUser(d, UserSplit{Users: 1, MinItems: 1}); return err }, "min_items"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestCollectorUsesSharedWeighting(t *testing.T) {
	asOf := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	w := event.DefaultWeighting()
	w.View = 0
	c := NewCollector(w, asOf)
	events := []event.Event{
		{ID: "1", UserID: "a", ItemID: "x", Type: event.Purchase, Time: asOf.Add(-30 * 24 * time.Hour)},
		{ID: "2", UserID: "b", ItemID: "y", Type: event.View, Time: asOf}, // weighs 0
		{ID: "3", UserID: "b", ItemID: "x", Type: event.AddToCart, Time: asOf.Add(-time.Hour)},
	}
	for _, e := range events {
		if err := c.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Add(event.Event{ID: "4", ItemID: "x", Type: event.View}); err == nil {
		t.Error("an event without a user was accepted")
	}
	d := c.Data()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Dropped() != 1 || d.Len() != 2 || d.Users != 2 || d.Items != 1 {
		t.Fatalf("dropped %d, %d events, %d users, %d items; want 1, 2, 2, 1", c.Dropped(), d.Len(), d.Users, d.Items)
	}
	for k, e := range []event.Event{events[0], events[2]} {
		if got, want := d.Val[k], float32(w.Of(e, asOf)); got != want {
			t.Errorf("event %d strength %v, want %v", k, got, want)
		}
		if got, want := d.Time[k], e.Time.UnixNano(); got != want {
			t.Errorf("event %d time %v, want %v", k, got, want)
		}
	}
	if !slices.Equal(d.UserIDs, []string{"a", "b"}) || !slices.Equal(d.ItemIDs, []string{"x"}) {
		t.Errorf("ids %v %v", d.UserIDs, d.ItemIDs)
	}
}
