package retrain

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/recsys-dev/recsys/internal/dataset"
	"github.com/recsys-dev/recsys/internal/event"
)

// FileSource reads events from files in any dataset format (format "" =
// detect per file). A bad row (a hostile id, a broken timestamp) is skipped,
// never the end of the run, but not silently: every file's skipped count and
// the first errors, with their line numbers, are logged as warnings. Damage
// that makes the rest of a file unreadable still fails the run.
func FileSource(paths []string, format dataset.Format, log *slog.Logger) Source {
	return func(ctx context.Context, fn func(event.Event) error) error {
		for _, p := range paths {
			st, err := dataset.ReadFile(ctx, p, format, dataset.Options{SkipBadRows: true}, fn)
			if err != nil {
				return fmt.Errorf("read %s: %w", p, err)
			}
			if log == nil {
				continue
			}
			log.Info("input read", "file", p, "rows", st.Rows, "events", st.Events, "filtered", st.Filtered, "skipped", st.Skipped)
			if st.Skipped > 0 {
				first := make([]string, len(st.FirstErrors))
				for i, e := range st.FirstErrors {
					first[i] = e.Error()
				}
				log.Warn("bad rows skipped", "file", p, "skipped", st.Skipped, "first", first)
			}
		}
		return nil
	}
}

// EventReader reads the global event stream (implemented by *profile.Store).
type EventReader interface {
	ReadEvents(ctx context.Context, since, until time.Time, fn func(event.Event) error) error
}

// StreamSource reads the events recorded in [since, until) from the Redis
// event stream; zero bounds are open.
func StreamSource(r EventReader, since, until time.Time) Source {
	return func(ctx context.Context, fn func(event.Event) error) error {
		return r.ReadEvents(ctx, since, until, fn)
	}
}
