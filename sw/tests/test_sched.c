/* test_sched.c - accelerator driver + C reference backend against a naive C computation of
 * docs/FORMAT.md section 4, and the scheduler (im2col, row/column tiling, pooling) against a
 * direct (non-im2col) convolution. */
#include <string.h>
#include "pq_accel.h"
#include "pq_fw.h"
#include "tests.h"

int pqt_layer(uint32_t prec, uint32_t rows, uint32_t cols, uint32_t ncols, uint32_t flags,
              const uint8_t *wgt_bytes, uint32_t wgt_len, const int8_t *x, int8_t *y, uint64_t *cycles);
int pqt_init(void);

static int8_t requant(int64_t acc, uint32_t mult, uint32_t shift, int relu)
{
    /* floor((acc*mult + 2^(shift-1)) / 2^shift) by exact division, not by shifting */
    int64_t num = acc * (int64_t)mult + ((int64_t)1 << (shift - 1)), den = (int64_t)1 << shift;
    int64_t q = num / den;
    if ((num % den != 0) && (num < 0)) q--;
    if (relu && q < 0) q = 0;
    return (int8_t)(q < -128 ? -128 : q > 127 ? 127 : q);
}

static int8_t unpack_code(const uint8_t *row, uint32_t k, uint32_t bits)
{
    uint32_t bitpos, v = 0, i;
    if (bits == 6) { uint32_t g = k / 4; bitpos = g * 24 + (k % 4) * 6; }
    else bitpos = k * bits;
    for (i = 0; i < bits; i++) v |= (uint32_t)((row[(bitpos + i) / 8] >> ((bitpos + i) % 8)) & 1u) << i;
    return (int8_t)((v & (1u << (bits - 1))) ? (int32_t)v - (int32_t)(1u << bits) : (int32_t)v);
}

static uint8_t wb[8 * 256 + 32768 + 8];
static int8_t codes[256 * 1024], X[300 * 1024], Y[300 * 256];
static int32_t bias[256];
static uint32_t mult[256], shift[256];

static void one_call(uint32_t bits, uint32_t M, uint32_t K, uint32_t N, int relu, int worst)
{
    uint32_t qmax = (1u << (bits - 1)) - 1, rb = tb_row_bytes(K, bits), m, k, n;
    uint64_t cyc = 0;
    int rc, bad = 0;
    for (m = 0; m < M; m++) {
        for (k = 0; k < K; k++)
            codes[m * K + k] = (int8_t)(worst == 1 ? ((m & 1) ? -(int32_t)qmax : (int32_t)qmax)
                                              : (int32_t)(tb_rand() % (2 * qmax + 1)) - (int32_t)qmax);
        bias[m] = worst ? ((m & 2) ? -1000000 : 1000000) : (int32_t)(tb_rand() % 200001) - 100000;
        mult[m] = worst ? ((m & 4) ? 32767u : 0u) : tb_rand() % 32768u;
        shift[m] = worst ? ((m & 8) ? 1u : 47u) : 1u + tb_rand() % 47u;
        if (worst && (m % 5) == 0) { mult[m] = 16384u + m; shift[m] = 30u; }
        if (worst == 2) { mult[m] = 1u + (m % 3u); shift[m] = 1u + (m % 2u); bias[m] = (int32_t)m - 8; }
        util_put_u32(wb + 8 * m, (uint32_t)bias[m]); util_put_u16(wb + 8 * m + 4, (uint16_t)mult[m]);
        wb[8 * m + 6] = (uint8_t)shift[m]; wb[8 * m + 7] = 0;
        tb_pack_row(codes + m * K, K, bits, wb + 8 * M + m * rb);
        for (k = 0; k < K; k++) CHECK_EQ(unpack_code(wb + 8 * M + m * rb, k, bits), codes[m * K + k]);
    }
    for (n = 0; n < N * K; n++)
        X[n] = worst == 2 ? (int8_t)((int32_t)(tb_rand() % 7u) - 3) : worst ? (int8_t)((n & 1) ? -128 : 127) : (int8_t)tb_rand();
    rc = pqt_layer(bits, M, K, N, relu ? PQ_FLAG_RELU : 0u, wb, 8 * M + M * rb, X, Y, &cyc);
    CHECK_EQ(rc, ACCEL_OK);
    CHECK(cyc > 0);
    for (n = 0; n < N && !bad; n++)
        for (m = 0; m < M; m++) {
            int64_t acc = bias[m];
            for (k = 0; k < K; k++) acc += (int64_t)X[n * K + k] * codes[m * K + k];
            if (Y[n * M + m] != requant(acc, mult[m], shift[m], relu)) {
                fprintf(stderr, "accel mismatch bits %u M %u K %u N %u at n %u m %u: %d vs %d\n",
                        bits, M, K, N, n, m, Y[n * M + m], requant(acc, mult[m], shift[m], relu));
                t_failures++; bad = 1; break;
            }
        }
    /* reuse: new activations, same weights, no weight stream */
    if (!bad && N > 1) {
        for (n = 0; n < N * K; n++) X[n] = (int8_t)tb_rand();
        CHECK_EQ(pqt_layer(bits, M, K, N - 1, (relu ? PQ_FLAG_RELU : 0u) | PQ_FLAG_REUSE, 0, 0, X, Y, 0), ACCEL_OK);
        for (m = 0; m < M; m++) {
            int64_t acc = bias[m];
            for (k = 0; k < K; k++) acc += (int64_t)X[k] * codes[m * K + k];
            if (Y[m] != requant(acc, mult[m], shift[m], relu)) { CHECK(!"reuse mismatch"); break; }
        }
    }
}

void test_accel(void)
{
    static const uint32_t bits[4] = {2, 4, 6, 8};
    uint32_t i;
    tb_seed(4242);
    CHECK_EQ(pqt_init(), ACCEL_OK);
    for (i = 0; i < 4; i++) {
        one_call(bits[i], 1, 1, 1, 0, 0);
        one_call(bits[i], 3, 5, 7, 1, 0);
        one_call(bits[i], 17, 33, 9, 0, 0);
        one_call(bits[i], 256, bits[i] == 8 ? 128 : bits[i] == 6 ? 168 : bits[i] == 4 ? 256 : 512, 3, 1, 0); /* full WMEM */
        one_call(bits[i], 16, 1024, 2, 0, 1);    /* worst case: max depth, same-sign operands */
        one_call(bits[i], 16, 1024, 2, 1, 1);
        one_call(bits[i], 24, 5, 40, 0, 2);     /* rounding ties: small acc, mult 1..3, shift 1..2 */
    }
    /* arguments outside the capacity are refused by the driver */
    CHECK_EQ(pqt_layer(8, 257, 4, 1, 0, wb, 8 * 257 + 257 * 4, X, Y, 0), ACCEL_E_ARGS);
    CHECK_EQ(pqt_layer(8, 64, 1025, 1, 0, wb, 0, X, Y, 0), ACCEL_E_ARGS);
    CHECK_EQ(pqt_layer(8, 64, 1024, 1, 0, wb, 8 * 64, X, Y, 0), ACCEL_E_ARGS); /* > WMEM */
    CHECK_EQ(pqt_layer(5, 4, 4, 1, 0, wb, 8 * 4 + 16, X, Y, 0), ACCEL_E_ARGS);
    CHECK_EQ(pqt_layer(8, 4, 4, 0, 0, wb, 8 * 4 + 16, X, Y, 0), ACCEL_E_ARGS);
}

/* ---------------------------------------------------------------- scheduler */
static uint8_t meta[65536], wts[1 << 20];
static int8_t in[1 << 17], out[1 << 17], cur[1 << 18], nxt[1 << 18], raw[1 << 18];
static meta_model_t mm;
static uint32_t cycles[PQ_MAX_LAYERS];

/* direct computation of the whole model from the parsed records (independent of im2col) */
static void reference(const meta_model_t *m, uint32_t ns)
{
    uint32_t l, s, oy, ox, o, c, ky, kx, py, px;
    memcpy(cur, in, (size_t)ns * m->in_size);
    for (l = 0; l < m->n_layers; l++) {
        const meta_layer_t *L = &m->layers[l];
        for (s = 0; s < ns; s++) {
            const int8_t *src = cur + s * L->in_size;
            int8_t *dst = raw;
            for (oy = 0; oy < L->out_h; oy++)
                for (ox = 0; ox < L->out_w; ox++)
                    for (o = 0; o < L->rows; o++) {
                        const uint8_t *cp = meta + L->params_offset + 8 * o;
                        const uint8_t *row = wts + L->wofs + o * L->row_bytes;
                        int64_t acc = (int32_t)util_get_u32(cp);
                        for (c = 0; c < L->in_c; c++)
                            for (ky = 0; ky < L->kh; ky++)
                                for (kx = 0; kx < L->kw; kx++) {
                                    int iy = (int)(oy * L->stride_h + ky) - (int)L->pad_t;
                                    int ix = (int)(ox * L->stride_w + kx) - (int)L->pad_l;
                                    int xv = (iy < 0 || ix < 0 || iy >= (int)L->in_h || ix >= (int)L->in_w) ? 0 :
                                             src[((uint32_t)iy * L->in_w + (uint32_t)ix) * L->in_c + c];
                                    acc += (int64_t)xv * unpack_code(row, (c * L->kh + ky) * L->kw + kx, L->bits);
                                }
                        dst[(oy * L->out_w + ox) * L->rows + o] = requant(acc, util_get_u16(cp + 4), cp[6], L->flags & 1);
                    }
            if (!L->pool) { memcpy(nxt + s * L->out_size, raw, L->raw_size); continue; }
            for (py = 0; py < L->ph; py++)
                for (px = 0; px < L->pw; px++)
                    for (o = 0; o < L->rows; o++) {
                        int best = -1000, sum = 0, n = (int)(L->pool_k * L->pool_k), v;
                        for (ky = 0; ky < L->pool_k; ky++)
                            for (kx = 0; kx < L->pool_k; kx++) {
                                v = raw[((py * L->pool_s + ky) * L->out_w + px * L->pool_s + kx) * L->rows + o];
                                if (v > best) best = v;
                                sum += v;
                            }
                        /* round half away from zero, computed differently from the firmware */
                        if (L->pool == 1) v = best;
                        else { int q = sum / n, r = sum % n; if (2 * (r < 0 ? -r : r) >= n) q += sum < 0 ? -1 : 1; v = q; }
                        nxt[s * L->out_size + (py * L->pw + px) * L->rows + o] = (int8_t)v;
                    }
        }
        memcpy(cur, nxt, (size_t)ns * L->out_size);
    }
}

static void run_model(const char *what, const tb_layer_t *ls, uint32_t n, uint32_t h, uint32_t w, uint32_t c, uint32_t ns)
{
    size_t wlen, len, i;
    uint32_t det;
    int rc;
    len = tb_build(ls, n, h, w, c, meta, sizeof(meta), wts, sizeof(wts), &wlen);
    CHECK(len > 0);
    rc = meta_parse(meta, (uint32_t)len, &mm, &det);
    if (rc != PQ_OK) { fprintf(stderr, "%s: meta_parse rc %d detail 0x%x\n", what, rc, det); t_failures++; return; }
    for (i = 0; i < ns * mm.in_size; i++) in[i] = (int8_t)tb_rand();
    rc = sched_run(&mm, wts, in, ns, out, cycles, &det);
    CHECK_EQ(rc, PQ_OK);
    reference(&mm, ns);
    if (memcmp(out, cur, (size_t)ns * mm.out_size) != 0) {
        fprintf(stderr, "%s: scheduler output differs from the direct computation\n", what);
        t_failures++;
    }
    for (i = 0; i < n; i++) CHECK(cycles[i] > 0);
}

void test_sched(void)
{
    tb_layer_t a[3] = {
        {2, 6, 1, 1, 4, 18, 8, 8, 2, 3, 3, 1, 1, 1, 1, 1, 1, 2, 2},
        {1, 8, 1, 0, 12, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
        {1, 2, 0, 0, 10, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    };
    /* row tiling: 300 rows (> MAX_ROWS) and 300*600 bytes (> WMEM) */
    tb_layer_t b[2] = {{1, 8, 1, 0, 300, 600, 0}, {1, 4, 0, 0, 7, 300, 0}};
    /* column tiling: K = 576, N = 256 pixels -> 147 KiB of im2col > XBUF; avg pool 3 stride 2 */
    tb_layer_t c[1] = {{2, 4, 0, 2, 8, 576, 16, 16, 64, 3, 3, 1, 1, 1, 1, 1, 1, 3, 2}};
    /* stride 2, asymmetric pads, INT2, max pool; then a conv consuming it */
    tb_layer_t d[2] = {
        {2, 2, 1, 1, 5, 3 * 4 * 2, 11, 9, 3, 4, 2, 2, 2, 2, 0, 1, 1, 2, 1},
        {2, 8, 0, 0, 6, 5 * 2 * 2, 5, 4, 5, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0},
    };
    tb_seed(31337);
    CHECK_EQ(pqt_init(), ACCEL_OK);
    run_model("conv-pool-dense", a, 3, 8, 8, 2, 3);
    run_model("row-tiling", b, 2, 1, 1, 600, 5);
    run_model("column-tiling", c, 1, 16, 16, 64, 2);
    run_model("strides-pads", d, 2, 11, 9, 3, 2);
}
