// pq_accel capacities and packing constants: the one place the kernel's sizes are set.
// Defaults match docs/HARDWARE.md section 2 (MAX_ROWS, MAX_COLS, WMEM_BYTES) and the exact
// DSP48E2 packing bounds of /work/shared/DESIGN.md "Hardware shape" (see docs/HARDWARE.md 4.x).
#ifndef PQ_ACCEL_CONFIG_H
#define PQ_ACCEL_CONFIG_H

#ifndef MAX_ROWS
#define MAX_ROWS 256          // M, output rows per call
#endif
#ifndef MAX_COLS
#define MAX_COLS 1024         // K, reduction length per call
#endif
#ifndef WMEM_BYTES
#define WMEM_BYTES 32768      // packed weight store (rows * row_bytes(cols, prec) <= WMEM_BYTES)
#endif
#ifndef LANES
#define LANES 1               // packed multipliers (DSP48E2 slices) working in parallel; each owns 2 rows
#endif

// Rows handled per row group: every DSP takes two rows (its two lanes).
#define ROWS_PER_GROUP (2 * LANES)
// Each of the 2*LANES weight banks holds the rows m with m % ROWS_PER_GROUP == bank. One row
// (<= MAX_COLS bytes) of slack covers M not a multiple of ROWS_PER_GROUP; +4 bytes let the
// 16-bit fetch window of the last weight read past the end of a row.
#define BANK_BYTES (WMEM_BYTES / ROWS_PER_GROUP + MAX_COLS + 4)
// Every bank is split into 4 byte-interleaved sub-banks (address a lives in sub-bank a % 4, word
// a / 4), so the weight load writes a whole 32-bit stream word per cycle and a fetch reads the
// two bytes of its window from two different sub-banks. Activation buffers likewise.
#define SUB_WORDS ((BANK_BYTES + 3) / 4)
#define XSUB_WORDS (MAX_COLS / 4)

// Two lanes on one DSP48E2: A(27) = w_hi * 2^18 + w_lo, B(18) = x, P(48) accumulates.
// The low lane is recovered from P[17:0] (signed), so its sum must stay in [-2^17, 2^17):
// depth * 128 * qmax <= 2^17 - 1 with x = -128. The depths are the RTL's (docs/HARDWARE.md
// section 5), so both implementations accumulate the same windows; the largest exact ones are
// INT8 8, INT6 33, INT4 146, INT2 1023 (hls/tests proves the next one up breaks INT8 and INT6).
#define LANE2_SHIFT 18
#ifndef DEPTH_INT8
#define DEPTH_INT8 8          // 8 * 128 * 127 = 130048 <= 131071
#endif
#ifndef DEPTH_INT6
#define DEPTH_INT6 32         // 32 * 128 * 31 = 126976
#endif
#ifndef DEPTH_INT4
#define DEPTH_INT4 128        // 128 * 128 * 7 = 114688
#endif
#ifndef DEPTH_INT2_1COL
#define DEPTH_INT2_1COL 128   // INT2 with a single column: 128 * 128 * 1 = 16384 (same loop as INT4)
#endif

// INT2 2x2 outer product on one DSP48E2 (two columns, two rows):
//   B(18) = (x0 + 128) + x1 * 2^10   (x0 offset to unsigned so B fits 18 bits for x1 = -128)
//   A(27) = w0 + w1 * 2^20           (ternary codes of two rows)
//   P    += A * B - 128 * A          (the C-port term removes the offset exactly)
// lanes at bits 0 (x0 w0), 10 (x1 w0), 20 (x0 w1), 30 (x1 w1), 10 bits each:
// depth * 128 <= 511  =>  depth <= 3  (DESIGN.md says 4 for |x| <= 127; x = -128 needs 3).
#define OP_XSHIFT 10
#define OP_WSHIFT 20
#ifndef DEPTH_INT2_2X2
#define DEPTH_INT2_2X2 3
#endif

#endif  // PQ_ACCEL_CONFIG_H
