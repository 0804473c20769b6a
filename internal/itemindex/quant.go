package itemindex

import "math"

// kernelKind names a dot-product kernel of the quantized codes.
type kernelKind uint8

const (
	kernelGo   kernelKind = iota // the portable loop
	kernelAVX2                   // amd64 AVX2 (VPMOVZXBW + VPMADDWD)
	kernelVNNI                   // amd64 AVX-512 VNNI (VPDPBUSD)
)

func (k kernelKind) String() string {
	switch k {
	case kernelAVX2:
		return "avx2"
	case kernelVNNI:
		return "avx512-vnni"
	}
	return "go"
}

// Kernel names the dot-product kernel searches use on this machine.
func Kernel() string { return bestKernel().String() }

// codeOffset is added to a row's signed code so it is stored unsigned: the
// VNNI instruction multiplies unsigned by signed bytes. The query stays
// signed, so Σ (c_j+128)·d_j = Σ c_j·d_j + 128·Σ d_j and one correction per
// query (not per row) removes the offset.
const codeOffset = 128

// strideFor is the bytes per row of codes: f rounded up to 32, the
// kernels' step; the padding holds code 128 (zero) and the query pads with
// zeros, so it adds nothing.
func strideFor(f int) int { return (f + 31) &^ 31 }

// quantizeRow writes y's codes into dst (len stride) and returns its
// scale: y_j ≈ scale·(dst[j]−128), |error| ≤ scale/2, scale =
// max|y_j|/127 (0 for a zero row, whose codes are all 128).
func quantizeRow(y []float32, dst []uint8) float32 {
	var m float32
	for _, v := range y {
		m = max(m, abs32(v))
	}
	for j := range dst {
		dst[j] = codeOffset
	}
	if m == 0 {
		return 0
	}
	s := m / 127
	for j, v := range y {
		c := math.Round(float64(v / s))
		dst[j] = uint8(int(max(-127, min(127, c))) + codeOffset)
	}
	return s
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// query is a request's query vector in the kernels' forms.
type query struct {
	codes []int8  // stride signed codes, zero padded
	wide  []int16 // the same widened to 16 bits (the AVX2 kernel's operand)
	scale float32 // x_j ≈ scale·codes[j]
	corr  int32   // 128·Σ codes: subtract from a kernel's dot
	l1    float64 // Σ|x_j|
	norm  float64 // ‖x‖
}

// set quantizes x (finite) into q.
func (q *query) set(x []float32, stride int) {
	if cap(q.codes) < stride {
		q.codes, q.wide = make([]int8, stride), make([]int16, stride)
	}
	q.codes, q.wide = q.codes[:stride], q.wide[:stride]
	clear(q.codes)
	var m float32
	q.l1, q.norm = 0, 0
	for _, v := range x {
		m = max(m, abs32(v))
		q.l1 += float64(abs32(v))
		q.norm += float64(v) * float64(v)
	}
	q.norm = math.Sqrt(q.norm)
	q.scale, q.corr = 0, 0
	if m > 0 {
		q.scale = m / 127
		for j, v := range x {
			c := int8(max(-127, min(127, math.Round(float64(v/q.scale)))))
			q.codes[j] = c
			q.corr += codeOffset * int32(c)
		}
	}
	for j, c := range q.codes {
		q.wide[j] = int16(c)
	}
}

// dots writes the raw kernel dot of every row of codes (stride bytes per
// row) with q into out (one per row), with kernel k (kernelGo when the
// machine lacks it).
func dots(k kernelKind, codes []uint8, stride int, q *query, out []int32) {
	if k != kernelGo && dotsSIMD(k, codes, stride, q, out) {
		return
	}
	dotsGo(codes, stride, q.codes, out)
}

// dotsGo is the portable kernel.
func dotsGo(codes []uint8, stride int, q []int8, out []int32) {
	q = q[:stride]
	for i := range out {
		row := codes[i*stride : (i+1)*stride]
		var s int32
		for j, c := range row {
			s += int32(c) * int32(q[j])
		}
		out[i] = s
	}
}

// scores writes the approximate score of every row of codes (len(out)
// rows, stride bytes each) for q into out, out[i] = float32(dot_i − corr)
// · scale[i] · invn[i] · mul, rounded to float32 after each product in
// this order (invn nil: no such factor), and returns the largest (−Inf
// for no rows). raw holds at least len(out) values (the kernel's output
// where it is not fused). The fused VNNI kernel and the loop here give the
// same bits.
func scores(k kernelKind, codes []uint8, stride int, q *query, mul float32, scale, invn, out []float32, raw []int32) float32 {
	mx := float32(math.Inf(-1))
	done := scoresSIMD(k, codes, stride, q, mul, scale, invn, out, &mx)
	if done == len(out) {
		return mx
	}
	out, scale = out[done:], scale[done:len(out)]
	raw = raw[:len(out)]
	dots(k, codes[done*stride:], stride, q, raw)
	corr := q.corr
	if invn != nil {
		invn = invn[done : done+len(out)]
		for i, d := range raw {
			v := float32(d-corr) * scale[i] * invn[i] * mul
			out[i] = v
			mx = max(mx, v)
		}
		return mx
	}
	for i, d := range raw {
		v := float32(d-corr) * scale[i] * mul
		out[i] = v
		mx = max(mx, v)
	}
	return mx
}
