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

//go:noescape
func scoresVNNI(codes *uint8, stride int, blocks int, q *int8, corr int32, mul float32, scale *float32, invn *float32, out *float32, max *float32)

// scoresSIMD computes scores' output for the leading rows, a multiple of
// 16, with the fused VNNI kernel when k is VNNI, the machine has it and
// stride is a multiple of 64; it raises *mx to their largest score and
// returns how many rows it did (0: none, the caller does them all).
func scoresSIMD(k kernelKind, codes []uint8, stride int, q *query, mul float32, scale, invn, out []float32, mx *float32) int {
	if k != kernelVNNI || !hasVNNI || stride%64 != 0 {
		return 0
	}
	blocks := len(out) / 16
	if blocks == 0 {
		return 0
	}
	n := blocks * 16
	_, _, _ = codes[n*stride-1], q.codes[stride-1], scale[n-1]
	var ip *float32
	if invn != nil {
		_ = invn[n-1]
		ip = &invn[0]
	}
	scoresVNNI(&codes[0], stride, blocks, &q.codes[0], q.corr, mul, &scale[0], ip, &out[0], mx)
	return n
}
