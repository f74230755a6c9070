//go:build !purego

#include "textflag.h"

// func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL eaxArg+0(FP), AX
	MOVL ecxArg+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func xgetbv0() (eax, edx uint32)
TEXT ·xgetbv0(SB), NOSPLIT, $0-8
	MOVL $0, CX
	XGETBV
	MOVL AX, eax+0(FP)
	MOVL DX, edx+4(FP)
	RET

// gemmAVX: see gemm in kernel.go. Registers in the tiles:
//	SI, DI  A at rows i and i+2 (column q), advanced by R9 = arc·8
//	R8      ars·8 (the next row of A)
//	BX      B at row q, column j0, advanced by R10 = ldb·8
//	R11     ldc·8, R13 = ist·8
//	CX      q countdown
//	Y0–Y11  accumulators, Y12–Y14 a row of B, Y15 a broadcast element of A
// Every accumulator starts from init and receives exactly one FMA per q,
// in increasing q: the chain of the reference for every tile shape.

// The B row of a tile's column panel, 4, 8 or 12 columns.
#define LOADB4 VMOVUPD (BX), Y12
#define LOADB8 LOADB4; VMOVUPD 32(BX), Y13
#define LOADB12 LOADB8; VMOVUPD 64(BX), Y14

// One row of A (broadcast from addr) times the B row into accumulators.
#define ROW4(addr, c0) VBROADCASTSD addr, Y15; VFMADD231PD Y12, Y15, c0
#define ROW8(addr, c0, c1) ROW4(addr, c0); VFMADD231PD Y13, Y15, c1
#define ROW12(addr, c0, c1, c2) ROW8(addr, c0, c1); VFMADD231PD Y14, Y15, c2

// Loads (from init) and stores (to C) of one row of a tile.
#define LD4(p, c0) VMOVUPD p, c0
#define LD8(p, q, c0, c1) VMOVUPD p, c0; VMOVUPD q, c1
#define ST4(p, c0) VMOVUPD c0, p
#define ST8(p, q, c0, c1) VMOVUPD c0, p; VMOVUPD c1, q

// func gemmAVX(m, n, r int, a *float64, ars, arc int, b *float64, ldb int, c *float64, ldc int, init *float64, ist int, masks *[4][4]int64)
// Requires m ≥ 1, r ≥ 1 and n ≥ 1; masks[c] enables the first c lanes.
TEXT ·gemmAVX(SB), NOSPLIT, $56-104
	MOVQ ars+32(FP), R8
	SHLQ $3, R8
	MOVQ arc+40(FP), R9
	SHLQ $3, R9
	MOVQ ldb+56(FP), R10
	SHLQ $3, R10
	MOVQ ldc+72(FP), R11
	SHLQ $3, R11
	MOVQ ist+88(FP), R13
	SHLQ $3, R13
	MOVQ m+0(FP), AX
	MOVQ AX, rows-8(SP)
	MOVQ a+24(FP), AX
	MOVQ AX, arow-16(SP)
	MOVQ c+64(FP), AX
	MOVQ AX, crow-24(SP)
	MOVQ init+80(FP), AX
	MOVQ AX, irow-32(SP)

rows4:
	CMPQ rows-8(SP), $4
	JLT  rows1
	MOVQ n+8(FP), AX
	MOVQ AX, cols-40(SP)
	XORQ AX, AX
	MOVQ AX, joff-48(SP)

cols4x12:
	CMPQ cols-40(SP), $12
	JLT  cols4x8
	MOVQ arow-16(SP), SI
	LEAQ (SI)(R8*2), DI
	MOVQ joff-48(SP), AX
	MOVQ b+48(FP), BX
	ADDQ AX, BX
	MOVQ irow-32(SP), R12
	ADDQ AX, R12
	VMOVUPD (R12), Y0
	VMOVUPD 32(R12), Y1
	VMOVUPD 64(R12), Y2
	VMOVUPD (R12)(R13*1), Y3
	VMOVUPD 32(R12)(R13*1), Y4
	VMOVUPD 64(R12)(R13*1), Y5
	LEAQ (R12)(R13*2), R12
	VMOVUPD (R12), Y6
	VMOVUPD 32(R12), Y7
	VMOVUPD 64(R12), Y8
	VMOVUPD (R12)(R13*1), Y9
	VMOVUPD 32(R12)(R13*1), Y10
	VMOVUPD 64(R12)(R13*1), Y11
	MOVQ r+16(FP), CX

loop4x12:
	LOADB12
	ROW12((SI), Y0, Y1, Y2)
	ROW12((SI)(R8*1), Y3, Y4, Y5)
	ROW12((DI), Y6, Y7, Y8)
	ROW12((DI)(R8*1), Y9, Y10, Y11)
	ADDQ R9, SI
	ADDQ R9, DI
	ADDQ R10, BX
	DECQ CX
	JNZ  loop4x12

	MOVQ crow-24(SP), DX
	ADDQ joff-48(SP), DX
	VMOVUPD Y0, (DX)
	VMOVUPD Y1, 32(DX)
	VMOVUPD Y2, 64(DX)
	VMOVUPD Y3, (DX)(R11*1)
	VMOVUPD Y4, 32(DX)(R11*1)
	VMOVUPD Y5, 64(DX)(R11*1)
	LEAQ (DX)(R11*2), DX
	VMOVUPD Y6, (DX)
	VMOVUPD Y7, 32(DX)
	VMOVUPD Y8, 64(DX)
	VMOVUPD Y9, (DX)(R11*1)
	VMOVUPD Y10, 32(DX)(R11*1)
	VMOVUPD Y11, 64(DX)(R11*1)
	SUBQ $12, cols-40(SP)
	ADDQ $96, joff-48(SP)
	JMP  cols4x12

cols4x8:
	CMPQ cols-40(SP), $8
	JLT  cols4x4
	MOVQ arow-16(SP), SI
	LEAQ (SI)(R8*2), DI
	MOVQ joff-48(SP), AX
	MOVQ b+48(FP), BX
	ADDQ AX, BX
	MOVQ irow-32(SP), R12
	ADDQ AX, R12
	LD8((R12), 32(R12), Y0, Y1)
	LD8((R12)(R13*1), 32(R12)(R13*1), Y3, Y4)
	LEAQ (R12)(R13*2), R12
	LD8((R12), 32(R12), Y6, Y7)
	LD8((R12)(R13*1), 32(R12)(R13*1), Y9, Y10)
	MOVQ r+16(FP), CX

loop4x8:
	LOADB8
	ROW8((SI), Y0, Y1)
	ROW8((SI)(R8*1), Y3, Y4)
	ROW8((DI), Y6, Y7)
	ROW8((DI)(R8*1), Y9, Y10)
	ADDQ R9, SI
	ADDQ R9, DI
	ADDQ R10, BX
	DECQ CX
	JNZ  loop4x8

	MOVQ crow-24(SP), DX
	ADDQ joff-48(SP), DX
	ST8((DX), 32(DX), Y0, Y1)
	ST8((DX)(R11*1), 32(DX)(R11*1), Y3, Y4)
	LEAQ (DX)(R11*2), DX
	ST8((DX), 32(DX), Y6, Y7)
	ST8((DX)(R11*1), 32(DX)(R11*1), Y9, Y10)
	SUBQ $8, cols-40(SP)
	ADDQ $64, joff-48(SP)

cols4x4:
	CMPQ cols-40(SP), $4
	JLT  cols4xm
	MOVQ arow-16(SP), SI
	LEAQ (SI)(R8*2), DI
	MOVQ joff-48(SP), AX
	MOVQ b+48(FP), BX
	ADDQ AX, BX
	MOVQ irow-32(SP), R12
	ADDQ AX, R12
	LD4((R12), Y0)
	LD4((R12)(R13*1), Y3)
	LEAQ (R12)(R13*2), R12
	LD4((R12), Y6)
	LD4((R12)(R13*1), Y9)
	MOVQ r+16(FP), CX

loop4x4:
	LOADB4
	ROW4((SI), Y0)
	ROW4((SI)(R8*1), Y3)
	ROW4((DI), Y6)
	ROW4((DI)(R8*1), Y9)
	ADDQ R9, SI
	ADDQ R9, DI
	ADDQ R10, BX
	DECQ CX
	JNZ  loop4x4

	MOVQ crow-24(SP), DX
	ADDQ joff-48(SP), DX
	ST4((DX), Y0)
	ST4((DX)(R11*1), Y3)
	LEAQ (DX)(R11*2), DX
	ST4((DX), Y6)
	ST4((DX)(R11*1), Y9)
	SUBQ $4, cols-40(SP)
	ADDQ $32, joff-48(SP)

cols4xm:
	// The last 1 to 3 columns: a 4-wide panel under the lane mask Y14
	// (masked lanes are neither read nor written).
	MOVQ cols-40(SP), AX
	CMPQ AX, $0
	JEQ  next4
	SHLQ $5, AX
	MOVQ masks+96(FP), BX
	VMOVUPD (BX)(AX*1), Y14
	MOVQ arow-16(SP), SI
	LEAQ (SI)(R8*2), DI
	MOVQ joff-48(SP), AX
	MOVQ b+48(FP), BX
	ADDQ AX, BX
	MOVQ irow-32(SP), R12
	ADDQ AX, R12
	VMASKMOVPD (R12), Y14, Y0
	VMASKMOVPD (R12)(R13*1), Y14, Y3
	LEAQ (R12)(R13*2), R12
	VMASKMOVPD (R12), Y14, Y6
	VMASKMOVPD (R12)(R13*1), Y14, Y9
	MOVQ r+16(FP), CX

loop4xm:
	VMASKMOVPD (BX), Y14, Y12
	ROW4((SI), Y0)
	ROW4((SI)(R8*1), Y3)
	ROW4((DI), Y6)
	ROW4((DI)(R8*1), Y9)
	ADDQ R9, SI
	ADDQ R9, DI
	ADDQ R10, BX
	DECQ CX
	JNZ  loop4xm

	MOVQ crow-24(SP), DX
	ADDQ joff-48(SP), DX
	VMASKMOVPD Y0, Y14, (DX)
	VMASKMOVPD Y3, Y14, (DX)(R11*1)
	LEAQ (DX)(R11*2), DX
	VMASKMOVPD Y6, Y14, (DX)
	VMASKMOVPD Y9, Y14, (DX)(R11*1)

next4:
	SUBQ $4, rows-8(SP)
	MOVQ arow-16(SP), AX
	LEAQ (AX)(R8*4), AX
	MOVQ AX, arow-16(SP)
	MOVQ crow-24(SP), AX
	LEAQ (AX)(R11*4), AX
	MOVQ AX, crow-24(SP)
	MOVQ irow-32(SP), AX
	LEAQ (AX)(R13*4), AX
	MOVQ AX, irow-32(SP)
	JMP  rows4

// One row at a time: panels of 32, 16, 12, 8 and 4 columns, B read by
// the FMAs straight from memory.
#define FMA1(off, c) VFMADD231PD off(BX), Y15, c

rows1:
	CMPQ rows-8(SP), $0
	JEQ  done
	MOVQ n+8(FP), AX
	MOVQ AX, cols-40(SP)
	XORQ AX, AX
	MOVQ AX, joff-48(SP)

cols1x32:
	CMPQ cols-40(SP), $32
	JLT  cols1x16
	MOVQ arow-16(SP), SI
	MOVQ joff-48(SP), AX
	MOVQ b+48(FP), BX
	ADDQ AX, BX
	MOVQ irow-32(SP), R12
	ADDQ AX, R12
	VMOVUPD (R12), Y0
	VMOVUPD 32(R12), Y1
	VMOVUPD 64(R12), Y2
	VMOVUPD 96(R12), Y3
	VMOVUPD 128(R12), Y4
	VMOVUPD 160(R12), Y5
	VMOVUPD 192(R12), Y6
	VMOVUPD 224(R12), Y7
	MOVQ r+16(FP), CX

loop1x32:
	VBROADCASTSD (SI), Y15
	FMA1(0, Y0)
	FMA1(32, Y1)
	FMA1(64, Y2)
	FMA1(96, Y3)
	FMA1(128, Y4)
	FMA1(160, Y5)
	FMA1(192, Y6)
	FMA1(224, Y7)
	ADDQ R9, SI
	ADDQ R10, BX
	DECQ CX
	JNZ  loop1x32

	MOVQ crow-24(SP), DX
	ADDQ joff-48(SP), DX
	VMOVUPD Y0, (DX)
	VMOVUPD Y1, 32(DX)
	VMOVUPD Y2, 64(DX)
	VMOVUPD Y3, 96(DX)
	VMOVUPD Y4, 128(DX)
	VMOVUPD Y5, 160(DX)
	VMOVUPD Y6, 192(DX)
	VMOVUPD Y7, 224(DX)
	SUBQ $32, cols-40(SP)
	ADDQ $256, joff-48(SP)
	JMP  cols1x32

cols1x16:
	CMPQ cols-40(SP), $16
	JLT  cols1x12
	MOVQ arow-16(SP), SI
	MOVQ joff-48(SP), AX
	MOVQ b+48(FP), BX
	ADDQ AX, BX
	MOVQ irow-32(SP), R12
	ADDQ AX, R12
	VMOVUPD (R12), Y0
	VMOVUPD 32(R12), Y1
	VMOVUPD 64(R12), Y2
	VMOVUPD 96(R12), Y3
	MOVQ r+16(FP), CX

loop1x16:
	VBROADCASTSD (SI), Y15
	FMA1(0, Y0)
	FMA1(32, Y1)
	FMA1(64, Y2)
	FMA1(96, Y3)
	ADDQ R9, SI
	ADDQ R10, BX
	DECQ CX
	JNZ  loop1x16

	MOVQ crow-24(SP), DX
	ADDQ joff-48(SP), DX
	VMOVUPD Y0, (DX)
	VMOVUPD Y1, 32(DX)
	VMOVUPD Y2, 64(DX)
	VMOVUPD Y3, 96(DX)
	SUBQ $16, cols-40(SP)
	ADDQ $128, joff-48(SP)

cols1x12:
	CMPQ cols-40(SP), $12
	JLT  cols1x8
	MOVQ arow-16(SP), SI
	MOVQ joff-48(SP), AX
	MOVQ b+48(FP), BX
	ADDQ AX, BX
	MOVQ irow-32(SP), R12
	ADDQ AX, R12
	VMOVUPD (R12), Y0
	VMOVUPD 32(R12), Y1
	VMOVUPD 64(R12), Y2
	MOVQ r+16(FP), CX

loop1x12:
	VBROADCASTSD (SI), Y15
	FMA1(0, Y0)
	FMA1(32, Y1)
	FMA1(64, Y2)
	ADDQ R9, SI
	ADDQ R10, BX
	DECQ CX
	JNZ  loop1x12

	MOVQ crow-24(SP), DX
	ADDQ joff-48(SP), DX
	VMOVUPD Y0, (DX)
	VMOVUPD Y1, 32(DX)
	VMOVUPD Y2, 64(DX)
	SUBQ $12, cols-40(SP)
	ADDQ $96, joff-48(SP)
	JMP  cols1xm

cols1x8:
	CMPQ cols-40(SP), $8
	JLT  cols1x4
	MOVQ arow-16(SP), SI
	MOVQ joff-48(SP), AX
	MOVQ b+48(FP), BX
	ADDQ AX, BX
	MOVQ irow-32(SP), R12
	ADDQ AX, R12
	VMOVUPD (R12), Y0
	VMOVUPD 32(R12), Y1
	MOVQ r+16(FP), CX

loop1x8:
	VBROADCASTSD (SI), Y15
	FMA1(0, Y0)
	FMA1(32, Y1)
	ADDQ R9, SI
	ADDQ R10, BX
	DECQ CX
	JNZ  loop1x8

	MOVQ crow-24(SP), DX
	ADDQ joff-48(SP), DX
	VMOVUPD Y0, (DX)
	VMOVUPD Y1, 32(DX)
	SUBQ $8, cols-40(SP)
	ADDQ $64, joff-48(SP)
	JMP  cols1xm

cols1x4:
	CMPQ cols-40(SP), $4
	JLT  cols1xm
	MOVQ arow-16(SP), SI
	MOVQ joff-48(SP), AX
	MOVQ b+48(FP), BX
	ADDQ AX, BX
	MOVQ irow-32(SP), R12
	ADDQ AX, R12
	VMOVUPD (R12), Y0
	MOVQ r+16(FP), CX

loop1x4:
	VBROADCASTSD (SI), Y15
	FMA1(0, Y0)
	ADDQ R9, SI
	ADDQ R10, BX
	DECQ CX
	JNZ  loop1x4

	MOVQ crow-24(SP), DX
	ADDQ joff-48(SP), DX
	VMOVUPD Y0, (DX)
	SUBQ $4, cols-40(SP)
	ADDQ $32, joff-48(SP)

cols1xm:
	MOVQ cols-40(SP), AX
	CMPQ AX, $0
	JEQ  next1
	SHLQ $5, AX
	MOVQ masks+96(FP), BX
	VMOVUPD (BX)(AX*1), Y14
	MOVQ arow-16(SP), SI
	MOVQ joff-48(SP), AX
	MOVQ b+48(FP), BX
	ADDQ AX, BX
	MOVQ irow-32(SP), R12
	ADDQ AX, R12
	VMASKMOVPD (R12), Y14, Y0
	MOVQ r+16(FP), CX

loop1xm:
	VMASKMOVPD (BX), Y14, Y12
	VBROADCASTSD (SI), Y15
	VFMADD231PD Y12, Y15, Y0
	ADDQ R9, SI
	ADDQ R10, BX
	DECQ CX
	JNZ  loop1xm

	MOVQ crow-24(SP), DX
	ADDQ joff-48(SP), DX
	VMASKMOVPD Y0, Y14, (DX)

next1:
	DECQ rows-8(SP)
	MOVQ arow-16(SP), AX
	ADDQ R8, AX
	MOVQ AX, arow-16(SP)
	MOVQ crow-24(SP), AX
	ADDQ R11, AX
	MOVQ AX, crow-24(SP)
	MOVQ irow-32(SP), AX
	ADDQ R13, AX
	MOVQ AX, irow-32(SP)
	JMP  rows1

done:
	VZEROUPPER
	RET

// func tanhAVX(x *float64, n int, table *float64, k *tanhVecConsts)
// x[i] = tanh(x[i]) for i < n, n a positive multiple of 4: the scalar
// tanh of mlp.go, the same operations on four lanes. k holds the
// constants, each repeated four times (see tanhVecConsts).
//	Y0 x, Y1 the lanes to patch, Y2 xc (x, or 0 where |x| ≥ 20 or NaN),
//	Y3 kf then d, Y4–Y7 temporaries, X8 the table indices, Y9–Y15
//	constants.
TEXT ·tanhAVX(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ table+16(FP), BX
	MOVQ k+24(FP), DX
	VMOVUPD 0(DX), Y15                // −0: the sign bit
	VMOVUPD 32(DX), Y14               // 1
	VMOVUPD 64(DX), Y13               // tanhMax
	VMOVUPD 96(DX), Y12               // tanhGrid
	VMOVUPD 128(DX), Y11              // 1/tanhGrid
	VMOVUPD 160(DX), Y10              // c5
	VMOVUPD 192(DX), Y9               // c9
	SHRQ $2, CX

tanhloop:
	VMOVUPD (SI), Y0
	VANDNPD Y0, Y15, Y1               // |x|
	VCMPPD  $0x15, Y13, Y1, Y1        // !(|x| < tanhMax): saturated or NaN
	VANDNPD Y0, Y1, Y2                // xc
	VMULPD  Y12, Y2, Y3
	VROUNDPD $0, Y3, Y3               // kf = x·16 rounded to even
	VCVTPD2DQY Y3, X8
	VPADDD  256(DX), X8, X8           // k = kf + tanhMid
	VPCMPEQD Y7, Y7, Y7
	VGATHERDPD Y7, (BX)(X8*8), Y6     // tc = table[k]
	VFNMADD213PD Y2, Y11, Y3          // d = −kf·(1/16) + x
	VMULPD  Y3, Y3, Y4                // u = d²
	VMOVUPD 224(DX), Y5
	VFMADD231PD Y9, Y4, Y5            // c9·u + c7
	VMOVUPD 288(DX), Y7
	VFMADD231PD Y10, Y4, Y7           // c5·u + c3
	VMULPD  Y4, Y3, Y8                // d³
	VMULPD  Y4, Y4, Y4                // u²
	VFMADD231PD 320(DX), Y4, Y5       // u²·c11 + (c9·u + c7)
	VFMADD213PD Y7, Y4, Y5            // p
	VFMADD213PD Y3, Y8, Y5            // td = d³·p + d
	VADDPD  Y5, Y6, Y4                // tc + td
	VFMADD213PD Y14, Y6, Y5           // tc·td + 1
	VDIVPD  Y5, Y4, Y4
	VXORPD  Y7, Y7, Y7
	VCMPPD  $0x08, Y7, Y0, Y7         // x == 0 or NaN
	VORPD   Y7, Y1, Y5
	VPTEST  Y5, Y5
	JNZ     tanhpatch

tanhstore:
	VMOVUPD Y4, (SI)
	ADDQ $32, SI
	DECQ CX
	JNZ  tanhloop
	VZEROUPPER
	RET

tanhpatch:
	VANDPD  Y0, Y15, Y5
	VORPD   Y14, Y5, Y5               // ±1 with the sign of x
	VBLENDVPD Y1, Y5, Y4, Y4
	VBLENDVPD Y7, Y0, Y4, Y4          // ±0 and NaN as they are
	JMP     tanhstore

// func tanhGradAVX(dst, gr, h *float64, n int)
// dst[i] = gr[i]·fma(−h[i], h[i], 1), n a positive multiple of 4.
TEXT ·tanhGradAVX(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ gr+8(FP), SI
	MOVQ h+16(FP), BX
	MOVQ n+24(FP), CX
	MOVQ $0x3ff0000000000000, AX
	MOVQ AX, X15
	VBROADCASTSD X15, Y15
	SHRQ $2, CX

tgloop:
	VMOVUPD (BX), Y0
	VMOVAPD Y15, Y1
	VFNMADD231PD Y0, Y0, Y1           // 1 − h²
	VMULPD  (SI), Y1, Y1
	VMOVUPD Y1, (DI)
	ADDQ $32, BX
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  tgloop
	VZEROUPPER
	RET

// func sumSquaresAVX(x *float64, n int) float64
// The sixteen-lane sum of squares of sumSquares, n a positive multiple
// of 16: lanes l of Y0–Y3 hold s_l, s_{l+4}, s_{l+8}, s_{l+12}.
TEXT ·sumSquaresAVX(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	SHRQ $4, CX
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3

ssloop:
	VMOVUPD (SI), Y4
	VMOVUPD 32(SI), Y5
	VMOVUPD 64(SI), Y6
	VMOVUPD 96(SI), Y7
	VFMADD231PD Y4, Y4, Y0
	VFMADD231PD Y5, Y5, Y1
	VFMADD231PD Y6, Y6, Y2
	VFMADD231PD Y7, Y7, Y3
	ADDQ $128, SI
	DECQ CX
	JNZ  ssloop
	VADDPD Y1, Y0, Y0                 // s_l + s_{l+4}
	VADDPD Y3, Y2, Y2                 // s_{l+8} + s_{l+12}
	VADDPD Y2, Y0, Y0                 // t_l
	VEXTRACTF128 $1, Y0, X1           // t_2, t_3
	VADDPD X1, X0, X0                 // t_0 + t_2, t_1 + t_3
	VPERMILPD $1, X0, X1
	VADDSD X1, X0, X0
	VMOVSD X0, ret+16(FP)
	VZEROUPPER
	RET

// func adamAVX(p, m, v, gr *float64, n int, k *adamConsts)
// The Adam step of adamOne on four lanes, n a positive multiple of 4.
TEXT ·adamAVX(SB), NOSPLIT, $0-48
	MOVQ p+0(FP), DI
	MOVQ m+8(FP), R8
	MOVQ v+16(FP), R9
	MOVQ gr+24(FP), SI
	MOVQ n+32(FP), CX
	MOVQ k+40(FP), DX
	VBROADCASTSD 0(DX), Y8            // scale
	VBROADCASTSD 8(DX), Y9            // step size
	VBROADCASTSD 16(DX), Y10          // 1/√(1 − β2ᵗ)
	VBROADCASTSD 24(DX), Y11          // ε
	VBROADCASTSD 32(DX), Y12          // β1
	VBROADCASTSD 40(DX), Y13          // 1 − β1
	VBROADCASTSD 48(DX), Y14          // β2
	VBROADCASTSD 56(DX), Y15          // 1 − β2
	SHRQ $2, CX

adamloop:
	VMOVUPD (SI), Y0
	VMULPD  Y8, Y0, Y0                // g′
	VMULPD  (R8), Y12, Y1
	VMULPD  Y0, Y13, Y2
	VADDPD  Y2, Y1, Y1                // m
	VMULPD  (R9), Y14, Y2
	VMULPD  Y0, Y15, Y3
	VMULPD  Y0, Y3, Y3
	VADDPD  Y3, Y2, Y2                // v
	VMOVUPD Y1, (R8)
	VMOVUPD Y2, (R9)
	VSQRTPD Y2, Y2
	VMULPD  Y10, Y2, Y2
	VADDPD  Y11, Y2, Y2               // √v/√(1 − β2ᵗ) + ε
	VMULPD  Y1, Y9, Y1
	VDIVPD  Y2, Y1, Y1
	VMOVUPD (DI), Y3
	VSUBPD  Y1, Y3, Y3
	VMOVUPD Y3, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, R8
	ADDQ $32, R9
	DECQ CX
	JNZ  adamloop
	VZEROUPPER
	RET

// func expAVX(x *float64, n int, k *expVecConsts)
// x[i] = expNonPos(x[i]) for i < n, n a positive multiple of 4: the same
// operations on four lanes. k holds the constants, each four times (see
// expVecConsts); c_j is at 128 + 32·j.
TEXT ·expAVX(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ k+16(FP), DX
	SHRQ $2, CX

exploop:
	VMOVUPD (SI), Y0
	VMULPD  0(DX), Y0, Y1
	VROUNDPD $0, Y1, Y1               // k = x·log₂e rounded to even
	VMOVAPD Y0, Y2
	VFNMADD231PD 32(DX), Y1, Y2       // r = −k·ln2hi + x
	VFNMADD231PD 64(DX), Y1, Y2       // r = −k·ln2lo + r
	VMULPD  Y2, Y2, Y3                // r²
	VMULPD  Y3, Y3, Y4                // r⁴
	VMULPD  Y4, Y4, Y5                // r⁸
	VMOVUPD 192(DX), Y6
	VFMADD231PD 224(DX), Y2, Y6       // a0 = r·c3 + c2
	VMOVUPD 256(DX), Y7
	VFMADD231PD 288(DX), Y2, Y7       // a1
	VMOVUPD 320(DX), Y8
	VFMADD231PD 352(DX), Y2, Y8       // a2
	VMOVUPD 384(DX), Y9
	VFMADD231PD 416(DX), Y2, Y9       // a3
	VMOVUPD 448(DX), Y10
	VFMADD231PD 480(DX), Y2, Y10      // a4
	VMOVUPD 512(DX), Y11
	VFMADD231PD 544(DX), Y2, Y11      // a5
	VFMADD231PD Y7, Y3, Y6            // b0 = r²·a1 + a0
	VFMADD231PD Y9, Y3, Y8            // b1 = r²·a3 + a2
	VFMADD231PD Y11, Y3, Y10          // b2 = r²·a5 + a4
	VFMADD231PD Y8, Y4, Y6            // e0 = r⁴·b1 + b0
	VFMADD231PD Y10, Y5, Y6           // P = r⁸·b2 + e0
	VFMADD213PD Y2, Y3, Y6            // r²·P + r
	VADDPD  128(DX), Y6, Y6           // p = 1 + (r + r²·P)  (c0 = 1)
	VCVTPD2DQY Y1, X13
	VPMOVSXDQ X13, Y13
	VPADDQ  576(DX), Y13, Y13
	VPSLLQ  $52, Y13, Y13             // 2^k
	VMULPD  Y13, Y6, Y6
	VCMPPD  $0x11, 96(DX), Y0, Y14    // x < −708 (false for NaN)
	VANDNPD Y6, Y14, Y6
	VMOVUPD Y6, (SI)
	ADDQ $32, SI
	DECQ CX
	JNZ  exploop
	VZEROUPPER
	RET
