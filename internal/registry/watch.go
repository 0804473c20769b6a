package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/recsys-dev/recsys/internal/mf"
)

// Source is where Watch reads models from. *Redis and *Dir implement it.
type Source interface {
	// Current returns the version to serve, or "" when there is none.
	Current(ctx context.Context) (string, error)
	// Load reads and verifies a version and builds its model.
	Load(ctx context.Context, version string) (*mf.Model, error)
}

// Notifier is implemented by sources that push announcements of a new
// current version (*Redis, by pub/sub). The channel is closed when ctx is
// done or the subscription ends. Watch treats a message as a hint to read
// Current now; messages may be lost, so it polls as well.
type Notifier interface {
	Subscribe(ctx context.Context) (<-chan string, error)
}

// Defaults of WatchOptions.
const (
	DefaultPollInterval     = 5 * time.Second
	DefaultMaxRetryInterval = time.Minute
)

// WatchOptions configure Watch. The zero value means the defaults.
type WatchOptions struct {
	// PollInterval is how often Current is read even without an
	// announcement, the fallback when pub/sub messages are lost. Default 5s.
	PollInterval time.Duration
	// MaxRetryInterval caps the backoff between attempts to load a version
	// that failed: the wait doubles from PollInterval after each failure of
	// the same version. Default 1 minute.
	MaxRetryInterval time.Duration
	// Logger receives applied versions and failures. Default: discard.
	Logger *slog.Logger
	// OnError, if set, is called after every failed load (for metrics).
	OnError func(version string, err error)
}

// Watch keeps a server on the source's current version until ctx is done,
// then returns nil.
//
// It loads the current version at once, then again whenever the source
// announces a version (if it is a Notifier) and at every PollInterval. Loading
// and building a model happens here, off the request path; apply is called
// with each new model, one call at a time, and should only swap the server's
// atomic pointer. A version is applied only when it differs from the one
// applied last, so duplicate announcements and polls never apply it twice,
// while a rollback to an earlier version is applied. When a load fails the
// error is logged (and passed to OnError), the applied model stays, and the
// load is retried with backoff.
func Watch(ctx context.Context, src Source, apply func(*mf.Model), opts WatchOptions) error {
	if src == nil || apply == nil {
		return errors.New("watch models: nil source or apply function")
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.MaxRetryInterval <= 0 {
		opts.MaxRetryInterval = DefaultMaxRetryInterval
	}
	opts.MaxRetryInterval = max(opts.MaxRetryInterval, opts.PollInterval)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	w := &watcher{src: src, apply: apply, opts: opts}

	// Subscribe before the first read of Current, so a version activated in
	// between is announced to us rather than missed until the next poll.
	notifier, push := src.(Notifier)
	subCtx, unsubscribe := context.WithCancel(ctx)
	var hints <-chan string
	subscribe := func() {
		if !push || hints != nil {
			return
		}
		ch, err := notifier.Subscribe(subCtx)
		if err != nil {
			if ctx.Err() == nil {
				opts.Logger.WarnContext(ctx, "model announcements unavailable; polling", "err", err)
			}
			return
		}
		hints = ch
	}
	defer func() {
		unsubscribe()
		if hints != nil {
			for range hints { // wait for the subscription's goroutine to end
			}
		}
	}()

	subscribe()
	w.check(ctx)
	poll := time.NewTicker(opts.PollInterval)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case v, ok := <-hints:
			if !ok {
				if ctx.Err() != nil {
					return nil // closed because we are stopping
				}
				hints = nil // resubscribed at the next poll
				opts.Logger.WarnContext(ctx, "model announcements ended; polling")
				continue
			}
			opts.Logger.DebugContext(ctx, "model version announced", "version", v)
			w.check(ctx)
		case <-poll.C:
			subscribe()
			w.check(ctx)
		}
	}
}

type watcher struct {
	src   Source
	apply func(*mf.Model)
	opts  WatchOptions

	applied string // version applied last
	waiting bool   // "no model yet" was logged

	failed   string // version whose last load failed
	failures int    // consecutive failures of failed
	retryAt  time.Time
}

// check applies the current version if it is new and not in backoff.
func (w *watcher) check(ctx context.Context) {
	log := w.opts.Logger
	v, err := w.src.Current(ctx)
	if err != nil {
		if ctx.Err() == nil {
			log.WarnContext(ctx, "read current model version", "err", err, "serving", w.applied)
		}
		return
	}
	if v == "" && !w.waiting {
		w.waiting = true // said once: a server without a model is not ready
		log.InfoContext(ctx, "no model published yet; waiting for one")
	}
	if v == "" || v == w.applied {
		return
	}
	if v == w.failed && time.Now().Before(w.retryAt) {
		return
	}
	start := time.Now()
	m, err := w.src.Load(ctx, v)
	if err == nil && m.Version() != v {
		err = fmt.Errorf("load model %s: %w: got version %q", v, mf.ErrCorrupt, m.Version())
	}
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down; not a failure of the version
		}
		if v != w.failed {
			w.failed, w.failures = v, 0
		}
		w.failures++
		wait := min(w.opts.PollInterval<<min(w.failures-1, 20), w.opts.MaxRetryInterval)
		w.retryAt = time.Now().Add(wait)
		log.ErrorContext(ctx, "load model; keeping the current one", "version", v, "err", err,
			"serving", w.applied, "failures", w.failures, "retry_in", wait)
		if w.opts.OnError != nil {
			w.opts.OnError(v, err)
		}
		return
	}
	if d := m.DroppedIDs(); d.Items > 0 {
		log.WarnContext(ctx, "model artifact holds ids that break the id rule; those items are not served",
			"version", v, "dropped_items", d.Items, "dropped_sections", d.Sections)
	}
	w.apply(m)
	log.InfoContext(ctx, "model applied", "version", v, "previous", w.applied,
		"items", m.NumItems(), "factors", m.Factors(), "load_time", time.Since(start))
	w.applied, w.failed, w.failures = v, "", 0
}
