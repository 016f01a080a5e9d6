/* backend_cref.c - C reference model of pq_accel behind backend.h: the register map
 * (ap_ctrl_hs), the wgt/act/res streams (docs/HARDWARE.md sections 2-3), unpacking of the
 * packed rows (docs/FORMAT.md section 3) and the layer_int arithmetic (section 4).
 *
 * Cycle model (an ESTIMATE, not a simulation): one cycle per stream word accepted or
 * emitted, plus ceil(M / LANES) * ceil(K / P) cycles per column n, with P = 1 for INT8 and
 * INT6, 2 for INT4, 4 for INT2 (MACs per lane per cycle). backend_step() does not add cycles.
 *
 * Invalid arguments (outside MAX_ROWS/MAX_COLS/WMEM_BYTES, bad prec, reuse with different
 * prec/rows/cols or before any weights) make the model hang like hardware would: ap_done
 * never rises (the driver validates and never issues such a call). */
#include "backend.h"
#include "pq_accel.h"
#include "pq_config.h"

enum { PH_IDLE, PH_WGT, PH_ACT, PH_DRAIN, PH_HUNG };
#define RES_CAP 2048u   /* result FIFO bytes (must be >= 2 * MAX_ROWS + 4) */

static struct {
    uint32_t arg_prec, arg_rows, arg_cols, arg_ncols, arg_flags;
    uint32_t gie, ier, isr;
    int done, ready, phase;
    /* current call */
    uint32_t prec, rows, cols, ncols, relu, rb;
    int have_weights;
    uint32_t wbytes_expected, wbytes_got;
    uint32_t act_words_expected, act_words_got;
    uint32_t xk, n_done;              /* bytes of the current column, columns computed */
    uint32_t res_bytes_total, res_bytes_made, res_words_popped, res_words_total;
    uint8_t  res[RES_CAP];
    uint32_t rhead, rcount;
    uint64_t cycles;
} S;

static int8_t  W[PQ_ACCEL_MAX_ROWS * PQ_ACCEL_MAX_COLS];
static int32_t bias[PQ_ACCEL_MAX_ROWS];
static uint32_t mult[PQ_ACCEL_MAX_ROWS], shft[PQ_ACCEL_MAX_ROWS];
static uint8_t wraw[8u * PQ_ACCEL_MAX_ROWS + PQ_ACCEL_WMEM_BYTES + 4u];
static int8_t  xcol[PQ_ACCEL_MAX_COLS + 4u];

int backend_init(void)
{
    uint8_t *p = (uint8_t *)&S;
    uint32_t i;
    for (i = 0; i < sizeof(S); i++) p[i] = 0;
    S.phase = PH_IDLE;
    return 0;
}

void backend_close(void) {}
uint8_t backend_kind(void) { return 0u; }
uint64_t backend_cycles(void) { return S.cycles; }
void backend_step(uint32_t cycles) { (void)cycles; }

static void unpack_weights(void)
{
    uint32_t m, k, per, nb, bits = S.prec;
    per = bits == 2u ? 4u : bits == 4u ? 2u : bits == 6u ? 4u : 1u;
    nb = bits == 6u ? 3u : 1u;
    for (m = 0; m < S.rows; m++) {
        const uint8_t *c = wraw + 8u * m;
        const uint8_t *row = wraw + 8u * S.rows + m * S.rb;
        bias[m] = (int32_t)((uint32_t)c[0] | ((uint32_t)c[1] << 8) | ((uint32_t)c[2] << 16) | ((uint32_t)c[3] << 24));
        mult[m] = (uint32_t)c[4] | ((uint32_t)c[5] << 8);
        shft[m] = c[6];
        for (k = 0; k < S.cols; k++) {
            uint32_t g = k / per, i = k % per, j, grp = 0, u;
            for (j = 0; j < nb; j++) grp |= (uint32_t)row[g * nb + j] << (8u * j);
            u = (grp >> (i * bits)) & ((1u << bits) - 1u);
            W[m * S.cols + k] = (int8_t)((u >= (1u << (bits - 1u))) ? (int32_t)u - (int32_t)(1u << bits) : (int32_t)u);
        }
    }
    S.have_weights = 1;
}

static int64_t floor_shift(int64_t v, uint32_t s)
{
    return v >= 0 ? (v >> s) : -((-v - 1) >> s) - 1;
}

static void res_put(uint8_t b)
{
    S.res[(S.rhead + S.rcount) % RES_CAP] = b;
    S.rcount++;
    S.res_bytes_made++;
}

static void compute_column(void)
{
    uint32_t m, k, P = S.prec == 2u ? 4u : S.prec == 4u ? 2u : 1u;
    for (m = 0; m < S.rows; m++) {
        int64_t acc = bias[m], t;
        const int8_t *w = W + m * S.cols;
        for (k = 0; k < S.cols; k++) acc += (int64_t)xcol[k] * w[k];
        t = floor_shift(acc * (int64_t)mult[m] + ((int64_t)1 << (shft[m] - 1u)), shft[m]);
        if (S.relu && t < 0) t = 0;
        if (t < -128) t = -128;
        if (t > 127) t = 127;
        res_put((uint8_t)(int8_t)t);
    }
    S.cycles += (uint64_t)((S.rows + PQ_ACCEL_LANES - 1u) / PQ_ACCEL_LANES) * ((S.cols + P - 1u) / P);
    S.n_done++;
}

static void start_call(void)
{
    uint32_t rb;
    rb = accel_row_bytes(S.arg_cols, S.arg_prec);
    if (rb == 0u || S.arg_rows == 0u || S.arg_rows > PQ_ACCEL_MAX_ROWS || S.arg_cols == 0u ||
        S.arg_cols > PQ_ACCEL_MAX_COLS || S.arg_rows * rb > PQ_ACCEL_WMEM_BYTES || S.arg_ncols == 0u ||
        ((S.arg_flags & PQ_FLAG_REUSE) &&
         (!S.have_weights || S.arg_prec != S.prec || S.arg_rows != S.rows || S.arg_cols != S.cols))) {
        S.phase = PH_HUNG;
        return;
    }
    if (!(S.arg_flags & PQ_FLAG_REUSE)) S.have_weights = 0;
    S.prec = S.arg_prec; S.relu = S.arg_flags & PQ_FLAG_RELU;
    S.rows = S.arg_rows; S.cols = S.arg_cols; S.ncols = S.arg_ncols; S.rb = rb;
    S.wbytes_expected = S.rows * (8u + rb);
    S.wbytes_got = 0;
    S.act_words_expected = (uint32_t)(((uint64_t)S.ncols * S.cols + 3u) / 4u);
    S.act_words_got = 0;
    S.xk = 0; S.n_done = 0;
    S.res_bytes_total = S.ncols * S.rows;
    S.res_bytes_made = 0;
    S.res_words_total = (S.res_bytes_total + 3u) / 4u;
    S.res_words_popped = 0;
    S.rhead = S.rcount = 0;
    S.phase = (S.arg_flags & PQ_FLAG_REUSE) ? PH_ACT : PH_WGT;
}

uint32_t backend_reg_read(uint32_t off)
{
    uint32_t v = 0;
    S.cycles++;
    switch (off) {
    case PQ_REG_AP_CTRL:
        v = (S.done ? PQ_AP_DONE : 0u) | (S.phase == PH_IDLE ? PQ_AP_IDLE : 0u) | (S.ready ? PQ_AP_READY : 0u);
        S.done = 0; S.ready = 0;
        break;
    case PQ_REG_GIE: v = S.gie; break;
    case PQ_REG_IER: v = S.ier; break;
    case PQ_REG_ISR: v = S.isr; break;
    case PQ_REG_PREC: v = S.arg_prec; break;
    case PQ_REG_ROWS: v = S.arg_rows; break;
    case PQ_REG_COLS: v = S.arg_cols; break;
    case PQ_REG_NCOLS: v = S.arg_ncols; break;
    case PQ_REG_FLAGS: v = S.arg_flags; break;
    default: v = 0; break;
    }
    return v;
}

void backend_reg_write(uint32_t off, uint32_t val)
{
    S.cycles++;
    switch (off) {
    case PQ_REG_AP_CTRL: if ((val & PQ_AP_START) && S.phase == PH_IDLE) start_call(); break;
    case PQ_REG_GIE: S.gie = val & 1u; break;
    case PQ_REG_IER: S.ier = val & 3u; break;
    case PQ_REG_ISR: S.isr ^= val & 3u; break;
    case PQ_REG_PREC: S.arg_prec = val; break;
    case PQ_REG_ROWS: S.arg_rows = val; break;
    case PQ_REG_COLS: S.arg_cols = val; break;
    case PQ_REG_NCOLS: S.arg_ncols = val; break;
    case PQ_REG_FLAGS: S.arg_flags = val & 3u; break;
    default: break;
    }
}

static void finish_if_done(void)
{
    if (S.phase == PH_DRAIN && S.res_words_popped == S.res_words_total) {
        S.phase = PH_IDLE;
        S.done = 1; S.ready = 1;
        S.isr |= S.ier & 3u;
    }
}

int backend_push(int stream, uint32_t word)
{
    uint32_t j;
    if (S.phase == PH_WGT && stream == 0) {
        for (j = 0; j < 4u && S.wbytes_got < S.wbytes_expected; j++)
            wraw[S.wbytes_got++] = (uint8_t)(word >> (8u * j));
        S.cycles++;
        if (S.wbytes_got == S.wbytes_expected) { unpack_weights(); S.phase = PH_ACT; }
        return 1;
    }
    if (S.phase == PH_ACT && stream == 1) {
        if (RES_CAP - S.rcount < 4u * S.rows + 4u) return 0; /* result FIFO full: backpressure */
        for (j = 0; j < 4u && S.n_done < S.ncols; j++) {
            xcol[S.xk++] = (int8_t)(uint8_t)(word >> (8u * j));
            if (S.xk == S.cols) { compute_column(); S.xk = 0; }
        }
        S.act_words_got++;
        S.cycles++;
        if (S.act_words_got == S.act_words_expected) S.phase = PH_DRAIN;
        return 1;
    }
    return 0;
}

int backend_pop(uint32_t *word)
{
    uint32_t w = 0, j, n;
    if (S.phase != PH_ACT && S.phase != PH_DRAIN) return 0;
    if (S.res_words_popped >= S.res_words_total) return 0;
    /* a full word, or the zero-padded last word once every result exists */
    if (S.rcount < 4u && !(S.res_bytes_made == S.res_bytes_total && S.rcount > 0u)) return 0;
    n = S.rcount < 4u ? S.rcount : 4u;
    for (j = 0; j < n; j++) {
        w |= (uint32_t)S.res[S.rhead] << (8u * j);
        S.rhead = (S.rhead + 1u) % RES_CAP;
    }
    S.rcount -= n;
    S.res_words_popped++;
    S.cycles++;
    *word = w;
    finish_if_done();
    return 1;
}
