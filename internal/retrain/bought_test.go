package retrain_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/cooccur"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/redistest"
	"github.com/recsys-dev/recsys/internal/registry"
	"github.com/recsys-dev/recsys/internal/retrain"
)

// The job computes the bought-together lists from the events it trains on
// and stores them after publishing the model; a dry run stores none.
func TestRunPublishesBoughtTogetherLists(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	ctx := context.Background()
	evs := shop(t)
	now := evs[len(evs)-1].Time.Add(time.Hour)
	// A planted pair on top of the generated shop: 5 users buy the
	// generated items i1 and i2 within an hour.
	for u := range 5 {
		at := now.Add(-time.Duration(u+2) * 24 * time.Hour)
		evs = append(evs,
			event.Event{UserID: fmt.Sprint("planted", u), ItemID: "i1", Type: event.Purchase, Time: at},
			event.Event{UserID: fmt.Sprint("planted", u), ItemID: "i2", Type: event.Purchase, Time: at.Add(time.Hour)})
	}
	store, err := cooccur.NewStore(rdb, prefix)
	if err != nil {
		t.Fatal(err)
	}
	cfg := retrain.Config{Hyper: good, AsOf: now, Now: func() time.Time { return now }, SkipBaselines: true,
		Lists: store, ListTTL: 48 * time.Hour}

	dry, err := retrain.Run(ctx, cfg, sliceSource(evs), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := store.Read(ctx, []string{"i1"}); dry.Lists != 0 || got[0] != nil {
		t.Fatalf("a dry run wrote %d lists (i1's: %v), want none", dry.Lists, got[0])
	}

	reg, err := registry.NewRedis(rdb, registry.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	out, err := retrain.Run(ctx, cfg, sliceSource(evs), nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	// What is stored is exactly what a counter makes of the same events.
	c, err := cooccur.NewCounter(cooccur.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		c.Add(e)
	}
	want := c.Lists()
	if out.Lists != len(want) || len(want) < 10 {
		t.Fatalf("wrote %d lists, the counter makes %d (want at least 10)", out.Lists, len(want))
	}
	ids := make([]string, len(want))
	for i, l := range want {
		ids[i] = l.ItemID
	}
	got, err := store.Read(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range want {
		if !reflect.DeepEqual(got[i], l.Entries) {
			t.Errorf("list of %s = %v, want %v", l.ItemID, got[i], l.Entries)
		}
	}
	// A refused model (regularized into uselessness) publishes nothing,
	// but the lists, which do not depend on it, are refreshed.
	if err := rdb.Del(ctx, store.Key("i1")).Err(); err != nil {
		t.Fatal(err)
	}
	bad := cfg
	bad.Hyper.Regularization, bad.Hyper.Iterations = 1e7, 2
	refused, err := retrain.Run(ctx, bad, sliceSource(evs), nil, reg)
	if !errors.Is(err, retrain.ErrRefused) {
		t.Fatalf("useless model: got %v, want ErrRefused", err)
	}
	if len(refused.Versions) != 0 || refused.Lists != len(want) {
		t.Errorf("refused run published %d versions and %d lists, want 0 and %d", len(refused.Versions), refused.Lists, len(want))
	}
	i1, _ := store.Read(ctx, []string{"i1"})
	if len(i1[0]) == 0 {
		t.Fatal("the planted item i1 has no list")
	}
	found := false
	for _, e := range i1[0] {
		found = found || (e.ItemID == "i2" && e.Count >= 5)
	}
	if !found {
		t.Errorf("i1's list %v lacks the planted partner i2 bought together by 5 users", i1[0])
	}
	if ttl := rdb.TTL(ctx, store.Key("i1")).Val(); ttl <= 0 || ttl > 48*time.Hour {
		t.Errorf("TTL of i1's list = %v, want within (0, 48h]", ttl)
	}
}
