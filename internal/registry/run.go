package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
)

// Run records one retraining attempt, whatever its outcome: recsys-train
// writes it to every registry it publishes to (also when the quality gate
// refuses the model or training fails), and recsysd exports it as metrics so
// an operator can alert on a retraining that stopped succeeding.
type Run struct {
	// Finished is when the attempt ended.
	Finished time.Time `json:"finished"`
	// Outcome is one of the Outcome* constants.
	Outcome string `json:"outcome"`
	// Duration is how long the attempt took.
	Duration time.Duration `json:"duration_ns"`
	// GateMetric names the gate's metric (e.g. "ndcg@10") and GateValue is
	// the new model's value of it; empty and 0 when the run did not reach
	// the gate.
	GateMetric string  `json:"gate_metric,omitempty"`
	GateValue  float64 `json:"gate_value,omitempty"`
	// Version is the published version; empty unless Outcome is
	// OutcomePublished.
	Version string `json:"version,omitempty"`
	// Reason is the gate's reason or the error, for people.
	Reason string `json:"reason,omitempty"`
}

// The outcomes of a retraining run.
const (
	OutcomePublished = "published" // a new model is current
	OutcomeRefused   = "refused"   // the quality gate refused the new model
	OutcomeFailed    = "failed"    // training or publishing failed
)

// Outcomes lists every outcome, for metrics that pre-initialise a series
// per outcome.
var Outcomes = []string{OutcomePublished, OutcomeRefused, OutcomeFailed}

func (r Run) validate() error {
	switch r.Outcome {
	case OutcomePublished, OutcomeRefused, OutcomeFailed:
	default:
		return fmt.Errorf("retraining run: outcome must be one of %v, got %q", Outcomes, r.Outcome)
	}
	if r.Finished.IsZero() {
		return errors.New("retraining run: finished time is required")
	}
	return nil
}

// RunRecorder keeps the record of the last retraining run
// (implemented by *Redis and *Dir).
type RunRecorder interface {
	RecordRun(ctx context.Context, run Run) error
	// LastRun returns the last recorded run; ok is false when none was.
	LastRun(ctx context.Context) (run Run, ok bool, err error)
}

var (
	_ RunRecorder = (*Redis)(nil)
	_ RunRecorder = (*Dir)(nil)
)

// maxRunRecord bounds what LastRun reads: a record is a few hundred bytes.
const maxRunRecord = 64 << 10

func (r *Redis) lastRunKey() string { return r.base + ":last-run" }

// RecordRun replaces the record of the last run (one small string key; it
// has no TTL because it is the registry's, like the current pointer).
func (r *Redis) RecordRun(ctx context.Context, run Run) error {
	if err := run.validate(); err != nil {
		return err
	}
	b, err := json.Marshal(run)
	if err != nil {
		return fmt.Errorf("record retraining run: %w", err)
	}
	if err := r.rdb.Set(ctx, r.lastRunKey(), b, 0).Err(); err != nil {
		return fmt.Errorf("record retraining run: %w", err)
	}
	return nil
}

// LastRun reads the record of the last run.
func (r *Redis) LastRun(ctx context.Context) (Run, bool, error) {
	b, err := r.rdb.Get(ctx, r.lastRunKey()).Bytes()
	if errors.Is(err, redis.Nil) {
		return Run{}, false, nil
	}
	if err != nil {
		return Run{}, false, fmt.Errorf("last retraining run: %w", err)
	}
	return decodeRun(b)
}

// lastRunFile holds the record of the last run in a Dir.
const lastRunFile = "LAST_RUN"

// RecordRun replaces the record of the last run (the file LAST_RUN).
func (d *Dir) RecordRun(ctx context.Context, run Run) error {
	if err := run.validate(); err != nil {
		return err
	}
	b, err := json.Marshal(run)
	if err != nil {
		return fmt.Errorf("record retraining run: %w", err)
	}
	if err := d.writeFile(lastRunFile, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	}); err != nil {
		return fmt.Errorf("record retraining run: %w", err)
	}
	return nil
}

// LastRun reads the record of the last run.
func (d *Dir) LastRun(context.Context) (Run, bool, error) {
	f, err := os.Open(d.file(lastRunFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Run{}, false, nil
	}
	if err != nil {
		return Run{}, false, fmt.Errorf("last retraining run: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRunRecord))
	if err != nil {
		return Run{}, false, fmt.Errorf("last retraining run: %w", err)
	}
	return decodeRun(b)
}

func decodeRun(b []byte) (Run, bool, error) {
	var run Run
	if err := json.Unmarshal(b, &run); err != nil {
		return Run{}, false, fmt.Errorf("last retraining run: %w", err)
	}
	if err := run.validate(); err != nil {
		return Run{}, false, fmt.Errorf("last retraining run: %w", err)
	}
	return run, true, nil
}
