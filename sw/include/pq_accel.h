/* pq_accel.h - register map of the accelerator (docs/HARDWARE.md section 2) and the driver API. */
#ifndef PQ_ACCEL_H
#define PQ_ACCEL_H

#include <stdint.h>

#define PQ_REG_AP_CTRL 0x00u
#define PQ_REG_GIE     0x04u
#define PQ_REG_IER     0x08u
#define PQ_REG_ISR     0x0Cu
#define PQ_REG_PREC    0x10u
#define PQ_REG_ROWS    0x18u
#define PQ_REG_COLS    0x20u
#define PQ_REG_NCOLS   0x28u
#define PQ_REG_FLAGS   0x30u

#define PQ_AP_START  0x01u
#define PQ_AP_DONE   0x02u
#define PQ_AP_IDLE   0x04u
#define PQ_AP_READY  0x08u
#define PQ_AP_AUTORESTART 0x80u

#define PQ_FLAG_RELU  0x01u
#define PQ_FLAG_REUSE 0x02u

/* bytes of one packed row of `cols` codes at `bits` (docs/FORMAT.md section 3); 0 if bits invalid */
uint32_t accel_row_bytes(uint32_t cols, uint32_t bits);

/* One accelerator call. wgt may be NULL when flags has PQ_FLAG_REUSE. */
typedef struct {
    uint32_t prec, rows, cols, ncols, flags;
    const uint32_t *wgt;  uint32_t wgt_words;   /* ceil((8*rows + rows*row_bytes)/4) */
    const uint32_t *act;  uint32_t act_words;   /* ceil(ncols*cols/4) */
    uint32_t *res;        uint32_t res_words;   /* ceil(ncols*rows/4) */
} accel_call_t;

/* Error codes returned by accel_run (0 = ok); the detail for E_ACCEL. */
#define ACCEL_OK          0
#define ACCEL_E_ARGS      1  /* arguments outside the accelerator's capacity */
#define ACCEL_E_WGT       2  /* weight stream timeout/error */
#define ACCEL_E_ACT       3  /* activation stream timeout/error */
#define ACCEL_E_RES       4  /* result stream timeout/error */
#define ACCEL_E_DONE      5  /* ap_done never rose */
#define ACCEL_E_BUSY      6  /* accelerator not idle before start */

/* per-phase timeout of accel_run (default PQ_ACCEL_TIMEOUT_MS; tools may lower it) */
extern uint32_t accel_timeout_ms;
int accel_init(void);
int accel_run(const accel_call_t *c);

#endif /* PQ_ACCEL_H */
