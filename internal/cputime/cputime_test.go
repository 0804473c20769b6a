package cputime

import (
	"runtime"
	"testing"
)

// Spinning a while is counted: the process's CPU time grows.
func TestProcessGrowsWithWork(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" || runtime.GOOS == "plan9" {
		t.Skip("not measured here")
	}
	before := Process()
	x := 0
	for i := range 200_000_000 {
		x ^= i
	}
	if after := Process(); after <= before {
		t.Errorf("CPU time %v after work, %v before (x %d)", after, before, x)
	}
}
