package als

import "gonum.org/v1/gonum/blas/gonum"

// The per-entry work of a half-step is a dot product and an axpy of length
// f (typically 32..256), and the per-row work a symmetric f×f matrix-vector
// product. BenchmarkKernels compares a hand-written float32 loop (four
// accumulators), gonum's blas32 wrappers and a direct call of gonum's
// implementation; the direct call reaches the same SSE assembly as blas32
// without its interface dispatch and argument checks and was the fastest
// (f=64 on the shared 2-core machine: dot 8.4 ns vs 12 ns blas32 vs 21 ns
// loop; axpy 11 vs 14 vs 24 ns; benchmarks/README.md).

// dot returns x·y for len(x) == len(y).
func dot(x, y []float32) float32 { return gonum.Implementation{}.Sdot(len(x), x, 1, y, 1) }

// axpy sets y += a·x for len(x) == len(y).
func axpy(a float32, x, y []float32) { gonum.Implementation{}.Saxpy(len(x), a, x, 1, y, 1) }
