// Package periodic runs the background refreshes of a server: a job that
// runs now and then at a fixed interval until the server stops.
package periodic

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Run calls fn now and then every interval until ctx is done, and returns
// nil then, so it fits an errgroup. An error of fn (unless ctx has ended) is
// logged as a warning, "<name> failed", and the next tick tries again: the
// caller keeps its last good state. An interval <= 0 is an error.
func Run(ctx context.Context, name string, every time.Duration, log *slog.Logger, fn func(context.Context) error) error {
	if every <= 0 {
		return fmt.Errorf("%s interval must be > 0, got %v", name, every)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, name+" failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
