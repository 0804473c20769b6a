//go:build !amd64

package itemindex

// No assembly kernels on this architecture: the portable loop runs.
func dotsSIMD(kernelKind, []uint8, int, *query, []int32) bool { return false }

func bestKernel() kernelKind { return kernelGo }

func scoresSIMD(kernelKind, []uint8, int, *query, float32, []float32, []float32, []float32, *float32) int {
	return 0
}
