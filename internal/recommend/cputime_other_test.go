//go:build !unix

package recommend

import "time"

// processCPU is not measured here; benchmarks then omit users/cpu-s.
func processCPU() time.Duration { return 0 }
