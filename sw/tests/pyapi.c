/* pyapi.c - entry points of libpqfw.so for the Python tests (ctypes): the firmware core with
 * the C reference accelerator, driven in-process (no UART). */
#include <string.h>
#include "backend.h"
#include "hal.h"
#include "hal_test.h"
#include "pq_accel.h"
#include "pq_fw.h"

int pqt_init(void);
int pqt_layer(uint32_t prec, uint32_t rows, uint32_t cols, uint32_t ncols, uint32_t flags,
              const uint8_t *wgt_bytes, uint32_t wgt_len, const int8_t *x, int8_t *y, uint64_t *cycles);
int pqt_model(const uint8_t *meta, uint32_t meta_len, const uint8_t *weights, uint32_t wlen,
              const int8_t *x, uint32_t n_samples, int8_t *out, uint32_t out_cap,
              uint32_t *cycles, uint32_t *detail);
size_t pqt_proto(const uint8_t *in, size_t n, uint8_t *out, size_t cap);
uint32_t pqt_limit(int which);
int pqt_meta(const uint8_t *meta, uint32_t len, uint32_t *detail);

static uint32_t wbuf[(8u * PQ_ACCEL_MAX_ROWS + PQ_ACCEL_WMEM_BYTES) / 4u + 1u];
static uint32_t xbuf[(PQ_ACT_MAX + 3u) / 4u];
static uint32_t ybuf[(PQ_ACT_MAX + 3u) / 4u];
static meta_model_t model;
static uint8_t wcopy[PQ_WEIGHTS_MAX];

int pqt_init(void)
{
    test_uart_reset();
    proto_init();
    return accel_init();
}

/* One accelerator call through the driver: wgt_bytes = 8*rows constants + packed rows
 * (ignored with PQ_FLAG_REUSE), x = [ncols, cols] int8, y = [ncols, rows] int8.
 * Returns the accel_run code (0 ok). */
int pqt_layer(uint32_t prec, uint32_t rows, uint32_t cols, uint32_t ncols, uint32_t flags,
              const uint8_t *wgt_bytes, uint32_t wgt_len, const int8_t *x, int8_t *y, uint64_t *cycles)
{
    accel_call_t c;
    uint64_t t0;
    int rc;
    if (wgt_len > sizeof(wbuf) || (uint64_t)ncols * cols > sizeof(xbuf) || (uint64_t)ncols * rows > sizeof(ybuf))
        return -1;
    memset(wbuf, 0, sizeof(wbuf));
    memset(xbuf, 0, ((size_t)ncols * cols + 3u) & ~(size_t)3u);
    if (wgt_bytes) memcpy(wbuf, wgt_bytes, wgt_len);
    memcpy(xbuf, x, (size_t)ncols * cols);
    c.prec = prec; c.rows = rows; c.cols = cols; c.ncols = ncols; c.flags = flags;
    c.wgt = (flags & PQ_FLAG_REUSE) ? 0 : wbuf; c.wgt_words = (flags & PQ_FLAG_REUSE) ? 0u : (wgt_len + 3u) / 4u;
    c.act = xbuf; c.act_words = (uint32_t)(((uint64_t)ncols * cols + 3u) / 4u);
    c.res = ybuf; c.res_words = (uint32_t)(((uint64_t)ncols * rows + 3u) / 4u);
    t0 = hal_timer_cycles();
    rc = accel_run(&c);
    if (cycles) *cycles = hal_timer_cycles() - t0;
    if (rc == ACCEL_OK) memcpy(y, ybuf, (size_t)ncols * rows);
    return rc;
}

/* Parse meta and run the scheduler. Returns a PQ_* status; *detail as documented. */
int pqt_model(const uint8_t *meta, uint32_t meta_len, const uint8_t *weights, uint32_t wlen,
              const int8_t *x, uint32_t n_samples, int8_t *out, uint32_t out_cap,
              uint32_t *cycles, uint32_t *detail)
{
    int rc = meta_parse(meta, meta_len, &model, detail);
    if (rc != PQ_OK) return rc;
    if (wlen != model.total_weight_bytes || wlen > sizeof(wcopy)) { *detail = wlen; return PQ_E_SIZE; }
    if ((uint64_t)n_samples * model.out_size > out_cap) { *detail = out_cap; return PQ_E_SIZE; }
    memcpy(wcopy, weights, wlen);
    return sched_run(&model, wcopy, x, n_samples, out, cycles, detail);
}

/* Feed bytes to the protocol engine; returns the number of response bytes copied to out. */
size_t pqt_proto(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    size_t i;
    for (i = 0; i < n; i++) proto_rx_byte(in[i]);
    return test_uart_take(out, cap);
}

/* Parse/validate only: returns the PQ_* status and *detail. */
int pqt_meta(const uint8_t *meta, uint32_t len, uint32_t *detail)
{
    return meta_parse(meta, len, &model, detail);
}

uint32_t pqt_limit(int which)
{
    switch (which) {
    case 0: return PQ_META_MAX;
    case 1: return PQ_WEIGHTS_MAX;
    case 2: return PQ_ACT_MAX;
    case 3: return PQ_ACCEL_MAX_ROWS;
    case 4: return PQ_ACCEL_MAX_COLS;
    case 5: return PQ_ACCEL_WMEM_BYTES;
    case 6: return PQ_XBUF_BYTES;
    case 7: return PQ_RESBUF_BYTES;
    default: return 0;
    }
}
