/* accel.c - driver of pq_accel through the HAL (register map: docs/HARDWARE.md section 2). */
#include "hal.h"
#include "pq_accel.h"
#include "pq_fw.h"

uint32_t accel_row_bytes(uint32_t cols, uint32_t bits)
{
    switch (bits) {
    case 8u: return cols;
    case 6u: return 3u * ((cols + 3u) / 4u);
    case 4u: return (cols + 1u) / 2u;
    case 2u: return (cols + 3u) / 4u;
    default: return 0u;
    }
}

uint32_t accel_timeout_ms = PQ_ACCEL_TIMEOUT_MS;

int accel_init(void)
{
    return hal_accel_init() == HAL_OK ? ACCEL_OK : ACCEL_E_BUSY;
}

static int wait_done(void)
{
    uint32_t t0 = hal_time_ms(), n = 0;
    for (;;) {
        if (hal_reg_read(PQ_REG_AP_CTRL) & PQ_AP_DONE) return ACCEL_OK;
        hal_poll();
        if ((++n & 63u) == 0u && (uint32_t)(hal_time_ms() - t0) > accel_timeout_ms) return ACCEL_E_DONE;
    }
}

int accel_run(const accel_call_t *c)
{
    uint32_t rb = accel_row_bytes(c->cols, c->prec);
    uint64_t wbytes = (uint64_t)c->rows * (8u + rb);
    int reuse = (c->flags & PQ_FLAG_REUSE) != 0u;
    if (rb == 0u || c->rows == 0u || c->rows > PQ_ACCEL_MAX_ROWS || c->cols == 0u ||
        c->cols > PQ_ACCEL_MAX_COLS || (uint64_t)c->rows * rb > PQ_ACCEL_WMEM_BYTES || c->ncols == 0u ||
        (c->flags & ~(PQ_FLAG_RELU | PQ_FLAG_REUSE)) != 0u ||
        (!reuse && (c->wgt == 0 || c->wgt_words != (uint32_t)((wbytes + 3u) / 4u))) ||
        c->act_words != (uint32_t)(((uint64_t)c->ncols * c->cols + 3u) / 4u) ||
        c->res_words != (uint32_t)(((uint64_t)c->ncols * c->rows + 3u) / 4u))
        return ACCEL_E_ARGS;

    /* a previous call's stale ap_done is cleared by this read */
    if (!(hal_reg_read(PQ_REG_AP_CTRL) & PQ_AP_IDLE)) return ACCEL_E_BUSY;
    hal_reg_write(PQ_REG_PREC, c->prec);
    hal_reg_write(PQ_REG_ROWS, c->rows);
    hal_reg_write(PQ_REG_COLS, c->cols);
    hal_reg_write(PQ_REG_NCOLS, c->ncols);
    hal_reg_write(PQ_REG_FLAGS, c->flags);
    if (hal_stream_rx_start(c->res, c->res_words) != HAL_OK) return ACCEL_E_RES;
    hal_reg_write(PQ_REG_AP_CTRL, PQ_AP_START);
    if (!reuse && hal_stream_tx(HAL_STREAM_WGT, c->wgt, c->wgt_words, accel_timeout_ms) != HAL_OK)
        return ACCEL_E_WGT;
    if (hal_stream_tx(HAL_STREAM_ACT, c->act, c->act_words, accel_timeout_ms) != HAL_OK)
        return ACCEL_E_ACT;
    if (hal_stream_rx_wait(accel_timeout_ms) != HAL_OK) return ACCEL_E_RES;
    return wait_done();
}
