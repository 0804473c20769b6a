package daemon_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/client"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/ingest"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/retrain"
	"github.com/recsys-dev/recsys/internal/synth"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// TestHostileTrainingFileEndToEnd is issue 13's target: a shop file in which
// 1 % of the rows carry a hostile id (invalid UTF-8, 257 bytes, 2 MB) is
// imported (the bad rows rejected with their lines, the good ones stored),
// trains, publishes, reaches the running server, and then every answer
// marshals: SimilarItems for every item of the model and Recommend for every
// user, none failing.
func TestHostileTrainingFileEndToEnd(t *testing.T) {
	r := start(t)
	ctx := context.Background()
	end := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	var evs []event.Event
	if err := synth.Generate(ctx, synth.Config{Users: 300, Items: 150, Events: 12000, Seed: 7,
		Start: end.Add(-20 * 24 * time.Hour), End: end}, func(e event.Event) error {
		evs = append(evs, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	hostile := []string{"i271\xff", strings.Repeat("x", 257), strings.Repeat("y", 2<<20)}
	var csv bytes.Buffer
	csv.WriteString("user_id,item_id,event_type,timestamp\n")
	bad := 0
	users := map[string]bool{}
	for i, e := range evs {
		user, item := e.UserID, e.ItemID
		switch {
		case i%100 == 50: // 1 % hostile items
			item = hostile[bad%len(hostile)] + fmt.Sprint(i)
			bad++
		case i%100 == 75 && bad%2 == 0: // and some hostile users
			user = hostile[bad%len(hostile)] + "u"
			bad++
		default:
			users[user] = true
		}
		fmt.Fprintf(&csv, "%s,%s,%s,%d\n", user, item, e.Type, e.Time.Unix())
	}
	path := filepath.Join(t.TempDir(), "hostile.csv")
	if err := os.WriteFile(path, csv.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	c, err := client.New(r.d.Addr().String(), client.WithToken(operatorToken))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	st, err := ingest.ImportEvents(ctx, c, path, "", 30*time.Second, io.Discard)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if st.Rejected != int64(bad) || st.Sent != int64(len(evs)-bad) {
		t.Fatalf("import %+v: want %d rejected, %d sent", st, bad, len(evs)-bad)
	}

	log := slog.New(slog.DiscardHandler)
	hyper := mf.Hyperparameters{Factors: 8, Iterations: 5, Regularization: 0.05, Alpha: 10, Seed: 1}
	out, err := retrain.Run(ctx, retrain.Config{Hyper: hyper, AsOf: end.Add(time.Minute), Logger: log, SkipBaselines: true},
		retrain.FileSource([]string{path}, "", log), nil, r.reg)
	if err != nil {
		t.Fatalf("train: %v", err)
	}
	if len(out.Versions) != 1 {
		t.Fatalf("published %v, want one version", out.Versions)
	}
	want := out.Versions[0].Info.Version
	eventually(t, "the trained model serving", func() bool { return r.servingVersion(t) == want })

	m, err := r.reg.Load(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	for i := range int32(m.NumItems()) {
		id := m.ItemID(i)
		if _, err := r.rec.SimilarItems(ctx, &recsysv1.SimilarItemsRequest{ItemId: id, Count: 500}); err != nil {
			t.Fatalf("SimilarItems(%q): %v", id, err)
		}
	}
	for u := range users {
		if _, err := r.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: u, Count: 500}); err != nil {
			t.Fatalf("Recommend(%q): %v", u, err)
		}
	}
}
