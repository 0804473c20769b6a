#include "textflag.h"

// func kern4x16(f int, x *float32, ldx int, vp *float32, out *float32, ldo int)
//
// Eight YMM accumulators hold the 4×16 block; per factor j it loads the 16
// packed item values (two YMM), broadcasts each user's x[j] and does eight
// FMAs, so no horizontal sums are needed.
TEXT ·kern4x16(SB), NOSPLIT, $0-48
	MOVQ f+0(FP), CX
	MOVQ x+8(FP), SI
	MOVQ ldx+16(FP), DX
	SHLQ $2, DX
	MOVQ vp+24(FP), DI
	MOVQ out+32(FP), R8
	MOVQ ldo+40(FP), R9
	SHLQ $2, R9
	LEAQ (SI)(DX*1), R10
	LEAQ (R10)(DX*1), R11
	LEAQ (R11)(DX*1), R12
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	TESTQ CX, CX
	JE    store

loop:
	VMOVUPS      (DI), Y8
	VMOVUPS      32(DI), Y9
	VBROADCASTSS (SI), Y10
	VFMADD231PS  Y8, Y10, Y0
	VFMADD231PS  Y9, Y10, Y1
	VBROADCASTSS (R10), Y11
	VFMADD231PS  Y8, Y11, Y2
	VFMADD231PS  Y9, Y11, Y3
	VBROADCASTSS (R11), Y12
	VFMADD231PS  Y8, Y12, Y4
	VFMADD231PS  Y9, Y12, Y5
	VBROADCASTSS (R12), Y13
	VFMADD231PS  Y8, Y13, Y6
	VFMADD231PS  Y9, Y13, Y7
	ADDQ         $64, DI
	ADDQ         $4, SI
	ADDQ         $4, R10
	ADDQ         $4, R11
	ADDQ         $4, R12
	DECQ         CX
	JNE          loop

store:
	VMOVUPS Y0, (R8)
	VMOVUPS Y1, 32(R8)
	ADDQ    R9, R8
	VMOVUPS Y2, (R8)
	VMOVUPS Y3, 32(R8)
	ADDQ    R9, R8
	VMOVUPS Y4, (R8)
	VMOVUPS Y5, 32(R8)
	ADDQ    R9, R8
	VMOVUPS Y6, (R8)
	VMOVUPS Y7, 32(R8)
	VZEROUPPER
	RET

// func kern4x32(f int, x *float32, ldx int, vp *float32, out *float32, ldo int)
//
// The AVX-512 form of kern4x16: 32 items per call in two ZMM registers.
TEXT ·kern4x32(SB), NOSPLIT, $0-48
	MOVQ f+0(FP), CX
	MOVQ x+8(FP), SI
	MOVQ ldx+16(FP), DX
	SHLQ $2, DX
	MOVQ vp+24(FP), DI
	MOVQ out+32(FP), R8
	MOVQ ldo+40(FP), R9
	SHLQ $2, R9
	LEAQ (SI)(DX*1), R10
	LEAQ (R10)(DX*1), R11
	LEAQ (R11)(DX*1), R12
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	TESTQ  CX, CX
	JE     store512

loop512:
	VMOVUPS      (DI), Z8
	VMOVUPS      64(DI), Z9
	VBROADCASTSS (SI), Z10
	VFMADD231PS  Z8, Z10, Z0
	VFMADD231PS  Z9, Z10, Z1
	VBROADCASTSS (R10), Z11
	VFMADD231PS  Z8, Z11, Z2
	VFMADD231PS  Z9, Z11, Z3
	VBROADCASTSS (R11), Z12
	VFMADD231PS  Z8, Z12, Z4
	VFMADD231PS  Z9, Z12, Z5
	VBROADCASTSS (R12), Z13
	VFMADD231PS  Z8, Z13, Z6
	VFMADD231PS  Z9, Z13, Z7
	ADDQ         $128, DI
	ADDQ         $4, SI
	ADDQ         $4, R10
	ADDQ         $4, R11
	ADDQ         $4, R12
	DECQ         CX
	JNE          loop512

store512:
	VMOVUPS Z0, (R8)
	VMOVUPS Z1, 64(R8)
	ADDQ    R9, R8
	VMOVUPS Z2, (R8)
	VMOVUPS Z3, 64(R8)
	ADDQ    R9, R8
	VMOVUPS Z4, (R8)
	VMOVUPS Z5, 64(R8)
	ADDQ    R9, R8
	VMOVUPS Z6, (R8)
	VMOVUPS Z7, 64(R8)
	VZEROUPPER
	RET
