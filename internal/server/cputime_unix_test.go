//go:build unix

package server_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user + system) the process has used, so a
// benchmark on a shared machine can report throughput per CPU second
// besides the wall-clock rate, which depends on what else runs.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
