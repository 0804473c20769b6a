package dataset_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/recsys-dev/recsys/internal/dataset"
	"github.com/recsys-dev/recsys/internal/event"
)

// TestRealData reads the public data sets when RECSYS_DATA points at their
// folder (RECSYS_DATA=/work/shared/data) and checks the counts their README
// states. The data are not part of the repository, so the test skips
// without the variable.
func TestRealData(t *testing.T) {
	root := os.Getenv("RECSYS_DATA")
	if root == "" {
		t.Skip("RECSYS_DATA is not set; it names the folder of the public data sets")
	}
	tests := []struct {
		path             string
		want             dataset.Format
		rows, events     int64
		users, items     int
		wantType         event.Type
		anonymousPrefix  string // users without an id get this prefix
		usersFromSession bool
	}{
		{path: "ml-100k/u.data", want: dataset.MovieLens, rows: 100000, events: 100000, users: 943, items: 1682, wantType: event.Custom},
		{path: "amazon-beauty/Beauty.txt", want: dataset.Sequence, rows: 22363, events: 198502, users: 22363, items: 12101, wantType: event.Purchase},
		{path: "tafeng/tafeng_merged.json", want: dataset.Basket, rows: 91227, events: 571933, users: 13858, items: 11997, wantType: event.Purchase},
		// 2,986 sessions; 1,270 named users, the rest are "s:<session>".
		{path: "diginetica-sample/sample_train-item-views.csv", want: dataset.Diginetica, rows: 12391, events: 12391, items: 7139, wantType: event.View, anonymousPrefix: "s:", usersFromSession: true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			path := filepath.Join(root, tt.path)
			got, err := dataset.Detect(path)
			if err != nil || got != tt.want {
				t.Fatalf("Detect: got %q, %v; want %q", got, err, tt.want)
			}
			users, items := map[string]bool{}, map[string]bool{}
			ids := make(map[string]bool, tt.events)
			anonymous := 0
			st, err := dataset.ReadFile(context.Background(), path, "", dataset.Options{}, func(e event.Event) error {
				users[e.UserID], items[e.ItemID] = true, true
				if ids[e.ID] {
					t.Errorf("event id %q given twice", e.ID)
				}
				ids[e.ID] = true
				if e.Type != tt.wantType {
					t.Errorf("got type %v, want %v", e.Type, tt.wantType)
				}
				if tt.anonymousPrefix != "" && strings.HasPrefix(e.UserID, tt.anonymousPrefix) {
					anonymous++
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if st.Rows != tt.rows || st.Events != tt.events || st.Skipped != 0 {
				t.Errorf("got %+v, want %d rows, %d events, none skipped", st, tt.rows, tt.events)
			}
			if !tt.usersFromSession && len(users) != tt.users {
				t.Errorf("got %d users, want %d", len(users), tt.users)
			}
			if len(items) != tt.items {
				t.Errorf("got %d items, want %d", len(items), tt.items)
			}
			if tt.usersFromSession && (anonymous == 0 || anonymous == int(st.Events)) {
				t.Errorf("got %d of %d events from anonymous sessions, want some but not all", anonymous, st.Events)
			}
		})
	}
}
