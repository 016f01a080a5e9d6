/* tb_model.c - test helpers: packing and a hand-built model.meta.bin (FORMAT.md section 5),
 * written from the spec independently of the firmware's parser. */
#include <string.h>
#include <zlib.h>
#include "tests.h"

static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v & 0xFFFFu); put16(p + 2, v >> 16); }

uint32_t tb_row_bytes(uint32_t cols, uint32_t bits)
{
    if (bits == 8) return cols;
    if (bits == 6) return 3 * ((cols + 3) / 4);
    if (bits == 4) return (cols + 1) / 2;
    return (cols + 3) / 4;
}

void tb_pack_row(const int8_t *codes, uint32_t cols, uint32_t bits, uint8_t *out)
{
    uint32_t per = bits == 8 ? 1 : bits == 4 ? 2 : 4, nb = bits == 6 ? 3 : 1, g, i, j;
    for (g = 0; g * per < cols; g++) {
        uint32_t v = 0;
        for (i = 0; i < per; i++) {
            uint32_t k = g * per + i;
            int32_t c = k < cols ? codes[k] : 0;
            v |= ((uint32_t)c & ((1u << bits) - 1u)) << (i * bits);
        }
        for (j = 0; j < nb; j++) out[g * nb + j] = (uint8_t)(v >> (8 * j));
    }
}

void tb_fix_crc(uint8_t *meta, size_t len)
{
    put32(meta + len - 4, (uint32_t)crc32(0L, meta, (uInt)(len - 4)));
}

size_t tb_build(const tb_layer_t *ls, uint32_t n, uint32_t in_h, uint32_t in_w, uint32_t in_c,
                uint8_t *meta, size_t meta_cap, uint8_t *wts, size_t wcap, size_t *wlen)
{
    uint32_t i, j, k, rows_total = 0, params_off, p, wofs = 0, out_size = 0;
    size_t len;
    int8_t codes[4096];
    for (i = 0; i < n; i++) rows_total += ls[i].rows;
    params_off = 64 + 128 * n;
    len = params_off + 8u * rows_total + 4;
    if (len > meta_cap) return 0;
    memset(meta, 0, len);
    memcpy(meta, "PQMB", 4);
    put16(meta + 4, 1); put16(meta + 6, 64); put16(meta + 8, 128); put16(meta + 10, n);
    put32(meta + 12, (uint32_t)len); put32(meta + 16, params_off); put32(meta + 20, 8u * rows_total);
    put16(meta + 24, in_h); put16(meta + 26, in_w); put16(meta + 28, in_c); put16(meta + 30, 1);
    p = params_off;
    for (i = 0; i < n; i++) {
        const tb_layer_t *L = &ls[i];
        uint8_t *r = meta + 64 + 128 * i;
        uint32_t rb = tb_row_bytes(L->cols, L->bits), qmax = (1u << (L->bits - 1)) - 1u;
        uint32_t oh = 1, ow = 1, ph, pw, layer_shift, layer_bias;
        if (L->op == 2) {
            oh = (L->in_h + L->pt + L->pb - L->kh) / L->sh + 1;
            ow = (L->in_w + L->pl + L->pr - L->kw) / L->sw + 1;
        }
        ph = L->pool ? (oh - L->pool_k) / L->pool_s + 1 : oh;
        pw = L->pool ? (ow - L->pool_k) / L->pool_s + 1 : ow;
        out_size = ph * pw * L->rows;
        snprintf((char *)r, 32, "layer%u", i);
        r[32] = L->op; r[33] = L->bits; r[34] = (uint8_t)((L->relu ? 1 : 0) | 8); r[35] = L->pool;
        put32(r + 36, L->rows); put32(r + 40, L->cols); put32(r + 44, L->rows * rb);
        put32(r + 52, p);
        if (L->op == 2) {
            put16(r + 56, L->in_h); put16(r + 58, L->in_w); put16(r + 60, L->in_c);
            put16(r + 62, L->kh); put16(r + 64, L->kw); put16(r + 66, L->sh); put16(r + 68, L->sw);
            put16(r + 70, L->pt); put16(r + 72, L->pl); put16(r + 74, L->pb); put16(r + 76, L->pr);
        } else {
            put16(r + 56, 1); put16(r + 58, 1); put16(r + 60, L->cols);
            put16(r + 62, 1); put16(r + 64, 1); put16(r + 66, 1); put16(r + 68, 1);
        }
        put16(r + 78, oh); put16(r + 80, ow);
        put16(r + 82, L->pool ? L->pool_k : 0); put16(r + 84, L->pool ? L->pool_s : 0);
        if ((size_t)wofs + (size_t)L->rows * rb > wcap || L->cols > sizeof(codes)) return 0;
        /* scale so that outputs spread over the int8 range instead of saturating:
         * std(acc) ~ sqrt(K)*qmax*43; t = acc*mult/2^shift with mult ~ 2^14.5 */
        {
            uint32_t spread = 1, sh = 0;
            while (spread * spread < L->cols) spread++;
            spread *= qmax * 43u;
            while ((1u << sh) < spread) sh++;
            layer_shift = 14u + sh - 5u;   /* std(t) ~ 2^5 */
            layer_bias = spread / 2u + 1u;
        }
        for (j = 0; j < L->rows; j++) {
            int32_t bias = (int32_t)(tb_rand() % (2u * layer_bias + 1u)) - (int32_t)layer_bias;
            uint32_t mult = 16384u + tb_rand() % 16384u, shift = layer_shift + tb_rand() % 2u;
            for (k = 0; k < L->cols; k++) codes[k] = (int8_t)((int32_t)(tb_rand() % (2 * qmax + 1)) - (int32_t)qmax);
            tb_pack_row(codes, L->cols, L->bits, wts + wofs + j * rb);
            put32(meta + p, (uint32_t)bias); put16(meta + p + 4, mult); meta[p + 6] = (uint8_t)shift;
            p += 8;
        }
        put32(r + 48, (uint32_t)crc32(0L, wts + wofs, L->rows * rb));
        wofs += L->rows * rb;
    }
    put32(meta + 36, out_size);
    put32(meta + 40, wofs);
    *wlen = wofs;
    tb_fix_crc(meta, len);
    return len;
}
