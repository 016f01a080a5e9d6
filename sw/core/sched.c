/* sched.c - the layer scheduler: runs the layers one by one (docs/FORMAT.md section 4):
 * im2col for conv, accelerator calls tiled over rows (MAX_ROWS / WMEM_BYTES) and over
 * columns N (staging buffer sizes), re-using loaded weights across column tiles, then
 * max/avg pooling on the CPU. Static buffers only. */
#include "hal.h"
#include "pq_accel.h"
#include "pq_fw.h"

#define WORDS(b) (((b) + 3u) / 4u)

static uint32_t wstage[WORDS(PQ_WSTAGE_BYTES)];
static uint32_t xbuf[WORDS(PQ_XBUF_BYTES)];
static uint32_t rbuf[WORDS(PQ_RESBUF_BYTES)];
static int8_t scratch[3][PQ_ACT_MAX];

void sched_im2col_rows(const meta_layer_t *L, const int8_t *src, uint32_t p0, uint32_t np, int8_t *dst)
{
    uint32_t p, c, ky, kx;
    for (p = p0; p < p0 + np; p++) {
        uint32_t oy = p / L->out_w, ox = p % L->out_w;
        int32_t y0 = (int32_t)(oy * L->stride_h) - (int32_t)L->pad_t;
        int32_t x0 = (int32_t)(ox * L->stride_w) - (int32_t)L->pad_l;
        for (c = 0; c < L->in_c; c++)
            for (ky = 0; ky < L->kh; ky++) {
                int32_t iy = y0 + (int32_t)ky;
                for (kx = 0; kx < L->kw; kx++) {
                    int32_t ix = x0 + (int32_t)kx;
                    int8_t v = 0;
                    if (iy >= 0 && iy < (int32_t)L->in_h && ix >= 0 && ix < (int32_t)L->in_w)
                        v = src[((uint32_t)iy * L->in_w + (uint32_t)ix) * L->in_c + c];
                    *dst++ = v;
                }
            }
    }
}

void sched_pool(const meta_layer_t *L, const int8_t *raw, int8_t *dst)
{
    uint32_t py, px, m, ky, kx, M = L->rows;
    int32_t n = (int32_t)(L->pool_k * L->pool_k);
    for (py = 0; py < L->ph; py++)
        for (px = 0; px < L->pw; px++)
            for (m = 0; m < M; m++) {
                int32_t best = -128, sum = 0, v;
                for (ky = 0; ky < L->pool_k; ky++)
                    for (kx = 0; kx < L->pool_k; kx++) {
                        uint32_t iy = py * L->pool_s + ky, ix = px * L->pool_s + kx;
                        v = raw[(iy * L->out_w + ix) * M + m];
                        if (v > best) best = v;
                        sum += v;
                    }
                if (L->pool == META_POOL_MAX) v = best;
                else v = sum >= 0 ? (sum + n / 2) / n : -((-sum + n / 2) / n);
                *dst++ = (int8_t)v;
            }
}

/* one layer: raw[n_samples][raw_size] */
static int run_layer(const meta_model_t *m, const meta_layer_t *L, const uint8_t *weights,
                     const int8_t *src, uint32_t n_samples, int8_t *raw, uint32_t *err)
{
    const uint32_t M = L->rows, K = L->cols, rb = L->row_bytes;
    uint32_t mt_max = PQ_ACCEL_MAX_ROWS, r0;
    const int conv = L->op == META_OP_CONV;
    /* dense: the samples are the N columns of one call sequence; conv: each sample's pixels */
    const uint32_t N = conv ? L->out_h * L->out_w : n_samples;
    const uint32_t n_outer = conv ? n_samples : 1u;

    if (PQ_ACCEL_WMEM_BYTES / rb < mt_max) mt_max = PQ_ACCEL_WMEM_BYTES / rb;
    if (PQ_RESBUF_BYTES < mt_max) mt_max = PQ_RESBUF_BYTES;
    for (r0 = 0; r0 < M; r0 += mt_max) {
        const uint32_t mt = (M - r0 < mt_max) ? M - r0 : mt_max;
        const uint32_t wbytes = mt * (8u + rb);
        uint32_t nt_max = PQ_XBUF_BYTES / K, s, first = 1;
        uint8_t *w8 = (uint8_t *)wstage;
        if (PQ_RESBUF_BYTES / mt < nt_max) nt_max = PQ_RESBUF_BYTES / mt;
        util_copy(w8, m->params + L->params_offset + 8u * r0, 8u * mt);
        util_copy(w8 + 8u * mt, weights + L->wofs + r0 * rb, mt * rb);
        util_fill(w8 + wbytes, 0, WORDS(wbytes) * 4u - wbytes);
        for (s = 0; s < n_outer; s++) {
            uint32_t n0;
            for (n0 = 0; n0 < N; n0 += nt_max) {
                const uint32_t nt = (N - n0 < nt_max) ? N - n0 : nt_max;
                uint8_t *x8 = (uint8_t *)xbuf, *r8 = (uint8_t *)rbuf;
                accel_call_t c;
                uint32_t i, j;
                int rc;
                if (conv) sched_im2col_rows(L, src + s * L->in_size, n0, nt, (int8_t *)x8);
                else util_copy(x8, src + n0 * K, nt * K);
                util_fill(x8 + nt * K, 0, WORDS(nt * K) * 4u - nt * K);
                c.prec = L->bits; c.rows = mt; c.cols = K; c.ncols = nt;
                c.flags = ((L->flags & 1u) ? PQ_FLAG_RELU : 0u) | (first ? 0u : PQ_FLAG_REUSE);
                c.wgt = first ? wstage : 0; c.wgt_words = first ? WORDS(wbytes) : 0u;
                c.act = xbuf; c.act_words = WORDS(nt * K);
                c.res = rbuf; c.res_words = WORDS(nt * mt);
                rc = accel_run(&c);
                if (rc != ACCEL_OK) { *err = (uint32_t)rc; return PQ_E_ACCEL; }
                first = 0;
                for (i = 0; i < nt; i++) {
                    int8_t *dst = raw + (uint64_t)s * L->raw_size + (uint64_t)(n0 + i) * M + r0;
                    for (j = 0; j < mt; j++) dst[j] = (int8_t)r8[i * mt + j];
                }
            }
        }
    }
    return PQ_OK;
}

int sched_run(const meta_model_t *m, const uint8_t *weights, const int8_t *input,
              uint32_t n_samples, int8_t *out, uint32_t *cycles, uint32_t *detail)
{
    const int8_t *src = input;
    uint32_t l, s;
    *detail = 0;
    if (n_samples == 0u || (uint64_t)n_samples * m->max_size > PQ_ACT_MAX) return PQ_E_SIZE;
    for (l = 0; l < m->n_layers; l++) {
        const meta_layer_t *L = &m->layers[l];
        const int last = l + 1u == m->n_layers;
        int8_t *raw = scratch[0] != src ? scratch[0] : scratch[1], *pooled; /* never the input */
        uint64_t t0 = hal_timer_cycles();
        uint32_t err = 0;
        int rc;
        rc = run_layer(m, L, weights, src, n_samples, raw, &err);
        if (rc != PQ_OK) { *detail = (l << 8) | (err & 0xFFu); return rc; }
        if (L->pool != META_POOL_NONE) {
            int k;
            pooled = last ? out : 0;
            for (k = 0; !pooled && k < 3; k++)
                if (scratch[k] != src && scratch[k] != raw) pooled = scratch[k];
            for (s = 0; s < n_samples; s++)
                sched_pool(L, raw + s * L->raw_size, pooled + s * L->out_size);
            src = pooled;
        } else {
            src = raw;
        }
        if (last && src != out) util_copy(out, src, (size_t)n_samples * L->out_size);
        {
            uint64_t dt = hal_timer_cycles() - t0;
            cycles[l] = dt > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)dt;   /* saturate */
        }
    }
    return PQ_OK;
}
