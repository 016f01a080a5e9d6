// Host-side C API around pq_accel (ctypes / test bench); see pq_accel_capi.cpp.
#ifndef PQ_ACCEL_CAPI_H
#define PQ_ACCEL_CAPI_H

#include <stddef.h>
#include <stdint.h>

#define PQ_OK 0
#define PQ_E_ARGS -1
#define PQ_E_WGT_LEN -2
#define PQ_E_CONST -3
#define PQ_E_REUSE -4
#define PQ_E_ACT_LEN -5
#define PQ_E_UNDERFLOW -6
#define PQ_E_LEFTOVER -7
#define PQ_E_RES_FRAMING -8

// Cycle model constants (docs/HARDWARE.md 4.x): fixed per-call cost, per-loop entry/exit cost,
// and the depth of the pipelined MAC loop (fetch, unpack, DSP A/B/M/P registers, extraction).
#define PQ_CYC_CALL 4
#define PQ_CYC_LOOP 2
#define PQ_CYC_MAC_DEPTH 8

#ifdef __cplusplus
extern "C" {
#endif

// out4 = {MAX_ROWS, MAX_COLS, WMEM_BYTES, LANES}
int pq_accel_config(uint32_t* out4);
const char* pq_accel_strerror(int code);
// One accelerator call on byte sequences: wgt = 8*M constant bytes + packed codes (empty with the
// reuse flag), x = X[N,K] int8, y = Y[N,M] int8 output. Returns PQ_OK or a PQ_E_* code.
int pq_accel_call(uint32_t prec, uint32_t rows, uint32_t cols, uint32_t ncols, uint32_t flags, const uint8_t* wgt,
                  size_t wgt_len, const int8_t* x, size_t x_len, int8_t* y, size_t y_len);
// Cycle estimate of one call from the kernel's loop structure (formula in docs/HARDWARE.md 4.x).
uint64_t pq_accel_cycle_estimate(uint32_t prec, uint32_t rows, uint32_t cols, uint32_t ncols, uint32_t flags);
// Loop statistics of the last pq_accel_call (C simulation built with -DPQ_SIM_STATS):
// out3 = {pipelined loop iterations, loop entries, MAC loop entries}; returns -1 without stats.
int pq_accel_sim_stats(uint64_t* out3);

#ifdef __cplusplus
}
#endif

#endif  // PQ_ACCEL_CAPI_H
