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
