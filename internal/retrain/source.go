package retrain

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/recsys-dev/recsys/internal/dataset"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/profile"
)

// FileSource reads events from files in any dataset format (format "" =
// detect per file). Bad rows fail the run: training on a silently shortened
// file is worse than not training.
func FileSource(paths []string, format dataset.Format, log *slog.Logger) Source {
	return func(ctx context.Context, fn func(event.Event) error) error {
		for _, p := range paths {
			st, err := dataset.ReadFile(ctx, p, format, dataset.Options{}, fn)
			if err != nil {
				return fmt.Errorf("read %s: %w", p, err)
			}
			if log != nil {
				log.Info("input read", "file", p, "rows", st.Rows, "events", st.Events, "filtered", st.Filtered)
			}
		}
		return nil
	}
}

// EventReader reads the global event stream (implemented by *profile.Store).
type EventReader interface {
	ReadEvents(ctx context.Context, since, until time.Time, fn func(event.Event) error) error
}

var _ EventReader = (*profile.Store)(nil)

// StreamSource reads the events recorded in [since, until) from the Redis
// event stream; zero bounds are open.
func StreamSource(r EventReader, since, until time.Time) Source {
	return func(ctx context.Context, fn func(event.Event) error) error {
		return r.ReadEvents(ctx, since, until, fn)
	}
}
