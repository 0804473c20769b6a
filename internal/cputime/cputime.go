// Package cputime reads the CPU time the process has used, so a benchmark
// on a shared machine can report throughput per CPU second besides the
// wall-clock rate, which depends on what else runs.
package cputime

import "time"

// Process returns the CPU time (user + system) the process has used; 0
// where it is not measured (then a benchmark omits its per-CPU metric).
func Process() time.Duration { return process() }
