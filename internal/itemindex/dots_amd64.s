#include "textflag.h"

// func dotsVNNI(codes *uint8, stride int, n int, q *int8, out *int32)
//
// out[i] = Σ_j codes[i*stride+j]·q[j] for n rows, unsigned codes times
// signed query bytes, with AVX-512 VNNI: one VPDPBUSD per 64 bytes (a
// 32-byte tail with the YMM form), then a horizontal sum per row. stride
// is a multiple of 32.
TEXT ·dotsVNNI(SB), NOSPLIT, $0-40
	MOVQ  codes+0(FP), SI
	MOVQ  stride+8(FP), BX
	MOVQ  n+16(FP), CX
	MOVQ  q+24(FP), DX
	MOVQ  out+32(FP), DI
	TESTQ CX, CX
	JZ    vdone

vrow:
	VPXORD Z0, Z0, Z0
	XORQ   AX, AX
	MOVQ   BX, R8

vchunk:
	CMPQ      R8, $64
	JB        vtail
	VMOVDQU64 (SI)(AX*1), Z1
	VPDPBUSD  (DX)(AX*1), Z1, Z0
	ADDQ      $64, AX
	SUBQ      $64, R8
	JMP       vchunk

vtail:
	TESTQ    R8, R8
	JZ       vreduce
	VPXORD   Z2, Z2, Z2
	VMOVDQU  (SI)(AX*1), Y1
	VPDPBUSD (DX)(AX*1), Y1, Y2
	VPADDD   Z2, Z0, Z0

vreduce:
	VEXTRACTI64X4 $1, Z0, Y1
	VPADDD        Y1, Y0, Y0
	VEXTRACTI128  $1, Y0, X1
	VPADDD        X1, X0, X0
	VPSHUFD       $0x4E, X0, X1
	VPADDD        X1, X0, X0
	VPSHUFD       $0xB1, X0, X1
	VPADDD        X1, X0, X0
	VMOVD         X0, (DI)
	ADDQ          $4, DI
	ADDQ          BX, SI
	DECQ          CX
	JNZ           vrow

vdone:
	VZEROUPPER
	RET

// func dotsAVX2(codes *uint8, stride int, n int, q *int16, out *int32)
//
// The AVX2 form: 16 code bytes are zero-extended to words and multiplied
// with the query widened to words (VPMADDWD: pairs summed into dwords, no
// saturation), two accumulators. stride is a multiple of 32.
TEXT ·dotsAVX2(SB), NOSPLIT, $0-40
	MOVQ  codes+0(FP), SI
	MOVQ  stride+8(FP), BX
	MOVQ  n+16(FP), CX
	MOVQ  q+24(FP), DX
	MOVQ  out+32(FP), DI
	TESTQ CX, CX
	JZ    adone

arow:
	VPXOR Y0, Y0, Y0
	VPXOR Y3, Y3, Y3
	XORQ  AX, AX

achunk:
	VPMOVZXBW (SI)(AX*1), Y1
	VPMOVZXBW 16(SI)(AX*1), Y2
	VPMADDWD  (DX)(AX*2), Y1, Y1
	VPMADDWD  32(DX)(AX*2), Y2, Y2
	VPADDD    Y1, Y0, Y0
	VPADDD    Y2, Y3, Y3
	ADDQ      $32, AX
	CMPQ      AX, BX
	JB        achunk

	VPADDD       Y3, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0x4E, X0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0xB1, X0, X1
	VPADDD       X1, X0, X0
	VMOVD        X0, (DI)
	ADDQ         $4, DI
	ADDQ         BX, SI
	DECQ         CX
	JNZ          arow

adone:
	VZEROUPPER
	RET

// func scoresVNNI(codes *uint8, stride int, blocks int, q *int8, corr int32, mul float32, scale *float32, invn *float32, out *float32, max *float32)
//
// The approximate scores of blocks×16 rows, fused: for each row i,
// out[i] = float32(Σ_j codes[i*stride+j]·q[j] − corr) · scale[i] [· invn[i]]
// · mul (invn nil: no such factor; each product rounded to float32, in
// this order, as the portable loop computes it), and *max is raised to the
// largest out[i]. Sixteen rows at a time: one VPDPBUSD per row and 64
// bytes into its own accumulator, then the sixteen accumulators are summed
// lane-wise by a transposing tree (unpack dwords, unpack qwords, shuffle
// 128-bit lanes twice) into one vector of the sixteen dots, which is
// converted and scaled as a vector. stride is a multiple of 64.
TEXT ·scoresVNNI(SB), NOSPLIT, $0-72
	MOVQ         codes+0(FP), SI
	MOVQ         stride+8(FP), BX
	MOVQ         blocks+16(FP), CX
	MOVQ         q+24(FP), DX
	MOVL         corr+32(FP), R14
	VPBROADCASTD R14, Z29
	MOVSS        mul+36(FP), X1
	VBROADCASTSS X1, Z30
	MOVQ         scale+40(FP), R10
	MOVQ         invn+48(FP), R11
	MOVQ         out+56(FP), DI
	MOVQ         max+64(FP), R12
	VBROADCASTSS (R12), Z31
	MOVQ         BX, R13
	SHLQ         $4, R13 // 16 rows of codes
	TESTQ        CX, CX
	JZ           sdone

sblock:
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	XORQ AX, AX

schunk:
	VMOVDQU64 (DX)(AX*1), Z16
	LEAQ      (SI)(AX*1), R9
	VMOVDQU64 (R9), Z17
	VPDPBUSD  Z16, Z17, Z0
	ADDQ      BX, R9
	VMOVDQU64 (R9), Z17
	VPDPBUSD  Z16, Z17, Z1
	ADDQ      BX, R9
	VMOVDQU64 (R9), Z17
	VPDPBUSD  Z16, Z17, Z2
	ADDQ      BX, R9
	VMOVDQU64 (R9), Z17
	VPDPBUSD  Z16, Z17, Z3
	ADDQ      BX, R9
	VMOVDQU64 (R9), Z17
	VPDPBUSD  Z16, Z17, Z4
	ADDQ      BX, R9
	VMOVDQU64 (R9), Z17
	VPDPBUSD  Z16, Z17, Z5
	ADDQ      BX, R9
	VMOVDQU64 (R9), Z17
	VPDPBUSD  Z16, Z17, Z6
	ADDQ      BX, R9
	VMOVDQU64 (R9), Z17
	VPDPBUSD  Z16, Z17, Z7
	ADDQ      BX, R9
	VMOVDQU64 (R9), Z17
	VPDPBUSD  Z16, Z17, Z8
	ADDQ      BX, R9
	VMOVDQU64 (R9), Z17
	VPDPBUSD  Z16, Z17, Z9
	ADDQ      BX, R9
	VMOVDQU64 (R9), Z17
	VPDPBUSD  Z16, Z17, Z10
	ADDQ      BX, R9
	VMOVDQU64 (R9), Z17
	VPDPBUSD  Z16, Z17, Z11
	ADDQ      BX, R9
	VMOVDQU64 (R9), Z17
	VPDPBUSD  Z16, Z17, Z12
	ADDQ      BX, R9
	VMOVDQU64 (R9), Z17
	VPDPBUSD  Z16, Z17, Z13
	ADDQ      BX, R9
	VMOVDQU64 (R9), Z17
	VPDPBUSD  Z16, Z17, Z14
	ADDQ      BX, R9
	VMOVDQU64 (R9), Z17
	VPDPBUSD  Z16, Z17, Z15
	ADDQ      $64, AX
	CMPQ      AX, BX
	JB        schunk

	// Z0..Z15 → Z0 lane r = Σ lanes of Zr.
	VPUNPCKLDQ Z1, Z0, Z18
	VPUNPCKHDQ Z1, Z0, Z19
	VPADDD     Z19, Z18, Z0
	VPUNPCKLDQ Z3, Z2, Z18
	VPUNPCKHDQ Z3, Z2, Z19
	VPADDD     Z19, Z18, Z2
	VPUNPCKLDQ Z5, Z4, Z18
	VPUNPCKHDQ Z5, Z4, Z19
	VPADDD     Z19, Z18, Z4
	VPUNPCKLDQ Z7, Z6, Z18
	VPUNPCKHDQ Z7, Z6, Z19
	VPADDD     Z19, Z18, Z6
	VPUNPCKLDQ Z9, Z8, Z18
	VPUNPCKHDQ Z9, Z8, Z19
	VPADDD     Z19, Z18, Z8
	VPUNPCKLDQ Z11, Z10, Z18
	VPUNPCKHDQ Z11, Z10, Z19
	VPADDD     Z19, Z18, Z10
	VPUNPCKLDQ Z13, Z12, Z18
	VPUNPCKHDQ Z13, Z12, Z19
	VPADDD     Z19, Z18, Z12
	VPUNPCKLDQ Z15, Z14, Z18
	VPUNPCKHDQ Z15, Z14, Z19
	VPADDD     Z19, Z18, Z14
	VPUNPCKLQDQ Z2, Z0, Z18
	VPUNPCKHQDQ Z2, Z0, Z19
	VPADDD      Z19, Z18, Z0
	VPUNPCKLQDQ Z6, Z4, Z18
	VPUNPCKHQDQ Z6, Z4, Z19
	VPADDD      Z19, Z18, Z4
	VPUNPCKLQDQ Z10, Z8, Z18
	VPUNPCKHQDQ Z10, Z8, Z19
	VPADDD      Z19, Z18, Z8
	VPUNPCKLQDQ Z14, Z12, Z18
	VPUNPCKHQDQ Z14, Z12, Z19
	VPADDD      Z19, Z18, Z12
	VSHUFI32X4 $0x88, Z4, Z0, Z18
	VSHUFI32X4 $0xDD, Z4, Z0, Z19
	VPADDD     Z19, Z18, Z0
	VSHUFI32X4 $0x88, Z12, Z8, Z18
	VSHUFI32X4 $0xDD, Z12, Z8, Z19
	VPADDD     Z19, Z18, Z8
	VSHUFI32X4 $0x88, Z8, Z0, Z18
	VSHUFI32X4 $0xDD, Z8, Z0, Z19
	VPADDD     Z19, Z18, Z0

	VPSUBD    Z29, Z0, Z0
	VCVTDQ2PS Z0, Z0
	VMULPS    (R10), Z0, Z0
	TESTQ     R11, R11
	JZ        snoinv
	VMULPS    (R11), Z0, Z0
	ADDQ      $64, R11

snoinv:
	VMULPS  Z30, Z0, Z0
	VMOVUPS Z0, (DI)
	VMAXPS  Z0, Z31, Z31
	ADDQ    $64, R10
	ADDQ    $64, DI
	ADDQ    R13, SI
	DECQ    CX
	JNZ     sblock

sdone:
	VEXTRACTF64X4 $1, Z31, Y0
	VMAXPS        Y0, Y31, Y0
	VEXTRACTF128  $1, Y0, X1
	VMAXPS        X1, X0, X0
	VPERMILPS     $0x4E, X0, X1
	VMAXPS        X1, X0, X0
	VPERMILPS     $0xB1, X0, X1
	VMAXPS        X1, X0, X0
	VMOVSS        X0, (R12)
	VZEROUPPER
	RET
