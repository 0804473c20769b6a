package mf

import "golang.org/x/sys/cpu"

// useKernel: the AVX2/FMA kernel of ScoresBlock can run here.
var useKernel = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// kern4x16 writes the 4×16 block of scores of the users at x (4 rows,
// stride ldx floats) against the 16 items packed factor-major at vp
// (f×16 floats) into out (4 rows of 16, stride ldo floats).
//
//go:noescape
func kern4x16(f int, x *float32, ldx int, vp *float32, out *float32, ldo int)
