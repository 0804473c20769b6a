//go:build !amd64

package mf

// useKernel is false: there is no assembly kernel for this architecture.
const useKernel = false

func kern4x16(f int, x *float32, ldx int, vp *float32, out *float32, ldo int) {
	panic("mf: kern4x16 without a kernel")
}
