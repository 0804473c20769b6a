package dataset_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/recsys-dev/recsys/internal/dataset"
	"github.com/recsys-dev/recsys/internal/event"
)

// TestReadersApplyTheIDRule: every format's events pass event.CheckID; a row
// with a hostile id is a RowError at its own line, skippable, and never
// reaches the callback.
func TestReadersApplyTheIDRule(t *testing.T) {
	huge := strings.Repeat("x", 2<<20) // 2 MB: once aborted a whole training run
	tests := []struct {
		name     string
		format   dataset.Format
		input    string
		wantLine int64
		wantErr  string
	}{
		{"csv invalid UTF-8 item", dataset.CSV, "user_id,item_id,event_type,timestamp\nu1,i1,view,1\nu1,i271\xff,view,2\nu2,i2,view,3\n", 3, "item_id"},
		{"csv 2 MB item", dataset.CSV, "user_id,item_id,event_type,timestamp\nu1,i1,view,1\nu2," + huge + ",view,2\nu2,i2,view,3\n", 3, "is 2097152 bytes"},
		{"csv 257-byte user", dataset.CSV, "user_id,item_id,event_type,timestamp\nu1,i1,view,1\nu2,i2,view,3\n" + strings.Repeat("u", 257) + ",i1,view,4\n", 4, "user_id"},
		{"csv long event id", dataset.CSV, "user_id,item_id,event_type,timestamp,event_id\nu1,i1,view,1,e1\nu1,i2,view,2," + strings.Repeat("e", 300) + "\nu2,i2,view,3,e3\n", 3, "event_id"},
		{"movielens invalid UTF-8", dataset.MovieLens, "1\t10\t5\t1\n2\t1\xff\t4\t2\n3\t12\t3\t3\n", 2, "not valid UTF-8"},
		{"sequence 2 MB item", dataset.Sequence, "u1 a b\nu2 " + huge + "\nu3 c d\n", 2, "is 2097152 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := read(t, tt.input, tt.format, dataset.Options{Name: "in"})
			var re *dataset.RowError
			if !errors.As(err, &re) || re.Line != tt.wantLine || !errors.Is(err, event.ErrBadID) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("strict read: %v, want a bad-id RowError at line %d containing %q", err, tt.wantLine, tt.wantErr)
			}
			if len(err.Error()) > 300 {
				t.Errorf("error of %d bytes echoes the whole id", len(err.Error()))
			}
			got, st, err := read(t, tt.input, tt.format, dataset.Options{Name: "in", SkipBadRows: true})
			if err != nil {
				t.Fatalf("skipping read: %v", err)
			}
			if st.Skipped != 1 || len(st.FirstErrors) != 1 || len(got) < 2 || int64(len(got)) != st.Events {
				t.Fatalf("got %d events, stats %+v; want the bad row skipped and the others kept", len(got), st)
			}
			for _, e := range got {
				if err := e.CheckIDs(); err != nil {
					t.Errorf("event %+v passed with %v", e, err)
				}
			}
		})
	}
}
