package mf

import "golang.org/x/sys/cpu"

type scoringKernel struct {
	name  string
	use   bool
	width int
}

// scoringKernels are the ScoresBlock paths this machine can run.
func scoringKernels() []scoringKernel {
	ks := []scoringKernel{{"no-kernel", false, 16}}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, scoringKernel{"avx2", true, 16})
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasAVX512F {
		ks = append(ks, scoringKernel{"avx512", true, 32})
	}
	return ks
}
