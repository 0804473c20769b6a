package trainjob

import (
	"fmt"
	"syscall"
)

// PeakRSS is the process's peak resident memory in bytes (0 when the
// system does not say): the job's peak, reported beside its quality.
func PeakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024 // kilobytes on Linux
}

// resources is the report's line on what the run used.
func resources(used, budget float64) string {
	s := fmt.Sprintf("peak memory %.0f MB", float64(PeakRSS())/(1<<20))
	if budget > 0 {
		s += fmt.Sprintf("; hyperparameter search %.0f s of a %.0f s budget", used, budget)
	}
	return s
}
