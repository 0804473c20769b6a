package recommend

import (
	"context"
	"slices"
	"strconv"
	"testing"

	"github.com/recsys-dev/recsys/internal/profile"
)

type fixedPopular []profile.ItemScore

func (f fixedPopular) Popular(context.Context, int) ([]profile.ItemScore, error) { return f, nil }

// Rank explains exactly the first ExplainedRanks personalized items, and
// orders the items without a score by popularity when asked.
func TestRankExplainsTheFirstItemsAndOrdersUnknownByPopularity(t *testing.T) {
	eng, _, _ := shopEngine(t, 300, Config{})
	eng.popular = NewPopular(fixedPopular{{ItemID: "new-b", Score: 9}, {ItemID: "new-c", Score: 4}}, 10, quietLog())
	if err := eng.popular.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	m := eng.Model()
	var cands []string
	for i := range 120 {
		cands = append(cands, m.ItemID(int32(i*2)))
	}
	cands = append(cands, "new-a", "new-b", "new-c")
	res, err := eng.Rank(context.Background(), RankRequest{UserID: "u", ItemIDs: cands, Unknown: ByPopularity})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != len(cands) || len(res.Dropped) != 0 {
		t.Fatalf("%d items, %d dropped; want %d and 0", len(res.Items), len(res.Dropped), len(cands))
	}
	for i, it := range res.Items[:120] {
		if it.Source != SourcePersonalized {
			t.Fatalf("item %d: source %v", i, it.Source)
		}
		if i > 0 && it.Score > res.Items[i-1].Score {
			t.Fatalf("item %d scores %v above item %d's %v", i, it.Score, i-1, res.Items[i-1].Score)
		}
		if explained := it.Reason.Kind == ReasonProfileItem; explained != (i < ExplainedRanks) {
			t.Errorf("item %d: reason %v", i, it.Reason)
		}
	}
	var tail []string
	for _, it := range res.Items[120:] {
		tail = append(tail, it.ItemID)
	}
	if want := []string{"new-b", "new-c", "new-a"}; !slices.Equal(tail, want) {
		t.Errorf("unknown items %v, want %v (by popularity, then the caller's order)", tail, want)
	}
	if r := res.Items[120].Reason.Kind; r != ReasonPopular || res.Items[122].Reason.Kind != ReasonUnspecified {
		t.Errorf("reasons of unknown items: %v, %v", r, res.Items[122].Reason.Kind)
	}
}

func BenchmarkRankItems(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run("items="+strconv.Itoa(n)+"/candidates=1000", func(b *testing.B) {
			eng, _, _ := shopEngine(b, n, Config{})
			m := eng.Model()
			cands := make([]string, 1000)
			for i := range cands {
				cands[i] = m.ItemID(int32(i * (n / 1000)))
			}
			req := RankRequest{UserID: "u", ItemIDs: cands}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := eng.Rank(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
