package mf

import "golang.org/x/sys/cpu"

// useKernel: an assembly kernel of ScoresBlock can run here; kernelWidth
// is the items per call of the one in use: 32 with AVX-512, else 16.
var (
	useKernel   = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	kernelWidth = kernelWidthFor(cpu.X86.HasAVX512F)
)

func kernelWidthFor(avx512 bool) int {
	if avx512 {
		return 32
	}
	return 16
}

// kern4x16 writes the 4×16 block of scores of the users at x (4 rows,
// stride ldx floats) against the 16 items packed factor-major at vp
// (f×16 floats) into out (4 rows of 16, stride ldo floats).
//
//go:noescape
func kern4x16(f int, x *float32, ldx int, vp *float32, out *float32, ldo int)

// kern4x32 is kern4x16 for 32 items (f×32 packed floats), with AVX-512.
//
//go:noescape
func kern4x32(f int, x *float32, ldx int, vp *float32, out *float32, ldo int)

// kernel runs the kernel of the given width.
func kernel(width, f int, x *float32, ldx int, vp *float32, out *float32, ldo int) {
	if width == 32 {
		kern4x32(f, x, ldx, vp, out, ldo)
		return
	}
	kern4x16(f, x, ldx, vp, out, ldo)
}
