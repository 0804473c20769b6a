package itemindex

import "golang.org/x/sys/cpu"

// The kernels this machine can run, found once.
var (
	hasVNNI = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512VNNI
	hasAVX2 = cpu.X86.HasAVX2
)

//go:noescape
func dotsVNNI(codes *uint8, stride int, n int, q *int8, out *int32)

//go:noescape
func dotsAVX2(codes *uint8, stride int, n int, q *int16, out *int32)

// dotsSIMD runs the best assembly kernel of kind k over the rows; false
// when k has none here.
func dotsSIMD(k kernelKind, codes []uint8, stride int, q *query, out []int32) bool {
	n := len(out)
	if n == 0 {
		return true
	}
	_ = codes[n*stride-1]
	switch {
	case k == kernelVNNI && hasVNNI:
		dotsVNNI(&codes[0], stride, n, &q.codes[0], &out[0])
	case k == kernelAVX2 && hasAVX2:
		dotsAVX2(&codes[0], stride, n, &q.wide[0], &out[0])
	default:
		return false
	}
	return true
}

// bestKernel is the fastest kernel the CPU has.
func bestKernel() kernelKind {
	switch {
	case hasVNNI:
		return kernelVNNI
	case hasAVX2:
		return kernelAVX2
	}
	return kernelGo
}
