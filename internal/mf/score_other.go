//go:build !amd64

package mf

// There is no assembly kernel for this architecture.
const (
	useKernel   = false
	kernelWidth = 16
)

func kernel(width, f int, x *float32, ldx int, vp *float32, out *float32, ldo int) {
	panic("mf: no ScoresBlock kernel on this architecture")
}
