package registry

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A report stored with a version reads back; a version without one says so;
// unknown and pruned versions have none, and pruning removes the report
// with its version.
func TestReports(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			reg := be.storage(t)(Options{Now: newClock().Now, Keep: 1, ChunkSize: 512})
			reports := reg.(ReportStore)
			v1, err := reg.Publish(ctx, testModel(t, 40, 4, 1))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := reports.Report(ctx, v1.Name()); !errors.Is(err, ErrNoReport) {
				t.Fatalf("Report before PutReport = %v, want ErrNoReport", err)
			}
			html := []byte("<!doctype html><title>r</title><svg></svg>")
			if err := reports.PutReport(ctx, v1.Name(), html); err != nil {
				t.Fatal(err)
			}
			got, err := reports.Report(ctx, v1.Name())
			if err != nil || !bytes.Equal(got, html) {
				t.Fatalf("Report = %q, %v; want %q", got, err, html)
			}
			for _, tc := range []struct {
				name, version string
				html          []byte
			}{
				{"unknown version", "v-does-not-exist", html},
				{"malformed version", "../x", html},
				{"empty report", v1.Name(), nil},
				{"oversize report", v1.Name(), make([]byte, MaxReportBytes+1)},
			} {
				if err := reports.PutReport(ctx, tc.version, tc.html); err == nil {
					t.Errorf("%s: PutReport succeeded", tc.name)
				}
			}
			if _, err := reports.Report(ctx, "v-does-not-exist"); !errors.Is(err, ErrUnknownVersion) {
				t.Errorf("Report of an unknown version = %v, want ErrUnknownVersion", err)
			}

			// Keep 1: the next publish prunes v1 and its report.
			if _, err := reg.Publish(ctx, testModel(t, 41, 4, 2)); err != nil {
				t.Fatal(err)
			}
			if _, err := reports.Report(ctx, v1.Name()); !errors.Is(err, ErrUnknownVersion) {
				t.Errorf("Report of a pruned version = %v, want ErrUnknownVersion", err)
			}
			switch r := reg.(type) {
			case *Redis:
				if n, err := r.rdb.Exists(ctx, r.reportKey(v1.Name())).Result(); err != nil || n != 0 {
					t.Errorf("report key of the pruned version: exists %d, %v", n, err)
				}
			case *Dir:
				if _, err := os.Stat(filepath.Join(r.path, v1.Name()+reportExt)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("report file of the pruned version: %v", err)
				}
			}
		})
	}
}
