package retrain_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/retrain"
)

// TestHostileIDsAreSkippedNotTrained: a training file in which 1 % of the
// rows carry a hostile item id (invalid UTF-8, 257 bytes, 2 MB) trains and
// publishes; the bad rows are skipped with a counted warning naming their
// lines, and every id of the published model passes the id rule.
func TestHostileIDsAreSkippedNotTrained(t *testing.T) {
	evs := shop(t)
	now := evs[len(evs)-1].Time.Add(time.Hour)
	var csv bytes.Buffer
	csv.WriteString("user_id,item_id,event_type,timestamp\n")
	hostile := []string{"i271\xff", strings.Repeat("x", 257), strings.Repeat("y", 2<<20)}
	bad := 0
	for i, e := range evs {
		item := e.ItemID
		if i%100 == 50 {
			item = hostile[bad%len(hostile)] + fmt.Sprint(i)
			bad++
		}
		fmt.Fprintf(&csv, "%s,%s,%s,%d\n", e.UserID, item, e.Type, e.Time.Unix())
	}
	path := filepath.Join(t.TempDir(), "bad.csv")
	if err := os.WriteFile(path, csv.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	pub := &recordingPublisher{}
	out, err := retrain.Run(context.Background(), retrain.Config{Hyper: good, AsOf: now, Now: func() time.Time { return now }, Logger: log, SkipBaselines: true},
		retrain.FileSource([]string{path}, "", log), nil, pub)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(pub.published) != 1 {
		t.Fatalf("published %d models, want 1", len(pub.published))
	}
	m := pub.published[0]
	for i := range int32(m.NumItems()) {
		if err := event.CheckID(m.ItemID(i)); err != nil {
			t.Fatalf("published item %d: id %v", i, err)
		}
	}
	if out.Events != int64(len(evs)-bad) {
		t.Errorf("trained on %d events, want %d (all but the %d bad rows)", out.Events, len(evs)-bad, bad)
	}
	got := logs.String()
	if !strings.Contains(got, "level=WARN msg=\"bad rows skipped\"") || !strings.Contains(got, fmt.Sprintf("skipped=%d", bad)) ||
		!strings.Contains(got, ":52: item_id") { // evs[50] is on line 52
		t.Errorf("want a warning counting %d skipped rows with their lines, got:\n%.2000s", bad, got)
	}
	if len(got) > 64<<10 {
		t.Errorf("%d bytes of logs: a hostile id was echoed", len(got))
	}
}

// TestRunSkipsBadIDsOfAnySource: events of a source that does not check
// (the Redis stream of an older server) pass the id rule in Run itself.
func TestRunSkipsBadIDsOfAnySource(t *testing.T) {
	evs := shop(t)
	now := evs[len(evs)-1].Time.Add(time.Hour)
	evs[10].ItemID = "i\xff"
	evs[20].UserID = strings.Repeat("u", 2<<20)
	var logs bytes.Buffer
	out, err := retrain.Run(context.Background(), retrain.Config{Hyper: good, AsOf: now, Now: func() time.Time { return now },
		SkipBaselines: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, sliceSource(evs), nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if out.BadIDs != 2 {
		t.Errorf("BadIDs = %d, want 2", out.BadIDs)
	}
	if !strings.Contains(logs.String(), "bad_ids=2") {
		t.Errorf("no count in the log:\n%.2000s", logs.String())
	}
}
