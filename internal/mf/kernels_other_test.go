//go:build !amd64

package mf

type scoringKernel struct {
	name  string
	use   bool
	width int
}

func scoringKernels() []scoringKernel { return []scoringKernel{{"no-kernel", false, 16}} }
