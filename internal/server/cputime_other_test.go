//go:build !unix

package server_test

import "time"

// processCPU is not measured here; BenchmarkRecommendAttribution then omits cpu-µs/op.
func processCPU() time.Duration { return 0 }
