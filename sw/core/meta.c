/* meta.c - parser and validator of model.meta.bin (docs/FORMAT.md section 5). Every field is
 * checked against the file, the buffers of pq_config.h and the accelerator's capacities. */
#include "pq_fw.h"
#include "pq_accel.h"

#define FAIL(layer, chk) do { *detail = ((uint32_t)(layer) << 16) | (uint32_t)(chk); return PQ_E_META; } while (0)

static int zero_bytes(const uint8_t *p, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; i++) if (p[i]) return 0;
    return 1;
}

static int check_layer(const uint8_t *buf, meta_model_t *m, uint32_t i, uint32_t *detail)
{
    const uint8_t *r = buf + META_HEADER_SIZE + i * META_REC_SIZE;
    meta_layer_t *L = &m->layers[i];
    uint32_t li = i + 1u, j, k, p_end;
    uint64_t num;

    util_copy(L->name, r, 31u);
    L->name[31] = '\0';
    L->op = r[32]; L->bits = r[33]; L->flags = r[34]; L->pool = r[35];
    L->rows = util_get_u32(r + 36); L->cols = util_get_u32(r + 40);
    L->bin_size = util_get_u32(r + 44); L->bin_crc = util_get_u32(r + 48);
    L->params_offset = util_get_u32(r + 52);
    L->in_h = util_get_u16(r + 56); L->in_w = util_get_u16(r + 58); L->in_c = util_get_u16(r + 60);
    L->kh = util_get_u16(r + 62); L->kw = util_get_u16(r + 64);
    L->stride_h = util_get_u16(r + 66); L->stride_w = util_get_u16(r + 68);
    L->pad_t = util_get_u16(r + 70); L->pad_l = util_get_u16(r + 72);
    L->pad_b = util_get_u16(r + 74); L->pad_r = util_get_u16(r + 76);
    L->out_h = util_get_u16(r + 78); L->out_w = util_get_u16(r + 80);
    L->pool_k = util_get_u16(r + 82); L->pool_s = util_get_u16(r + 84);

    if ((L->op != META_OP_DENSE && L->op != META_OP_CONV) || !(L->flags & 0x08u)) FAIL(li, META_CHK_OP);
    if (L->bits != 2u && L->bits != 4u && L->bits != 6u && L->bits != 8u) FAIL(li, META_CHK_BITS);
    if (L->rows == 0u || L->cols == 0u || L->cols > PQ_ACCEL_MAX_COLS || L->rows > 65535u)
        FAIL(li, META_CHK_DIMS);
    L->row_bytes = accel_row_bytes(L->cols, L->bits);
    if ((uint64_t)L->rows * L->row_bytes != L->bin_size) FAIL(li, META_CHK_BIN_SIZE);
    if (L->row_bytes > PQ_ACCEL_WMEM_BYTES || L->cols > PQ_XBUF_BYTES) FAIL(li, META_CHK_CAPACITY);

    /* per-row constants: inside the params region, valid mult/shift, pad byte 0 */
    p_end = m->params_offset + m->params_size;
    if (L->params_offset < m->params_offset || L->params_offset > p_end ||
        (uint64_t)L->rows * 8u > (uint64_t)(p_end - L->params_offset))
        FAIL(li, META_CHK_PARAMS_OFFSET);
    for (j = 0; j < L->rows; j++) {
        const uint8_t *c = buf + L->params_offset + 8u * j;
        uint32_t mult = util_get_u16(c + 4), shift = c[6];
        if (mult > 32767u || shift < 1u || shift > 47u || c[7] != 0u) FAIL(li, META_CHK_CONSTANTS);
    }

    if (L->op == META_OP_DENSE) {
        if (L->in_h != 1u || L->in_w != 1u || L->in_c != L->cols || L->kh != 1u || L->kw != 1u ||
            L->stride_h != 1u || L->stride_w != 1u || L->pad_t || L->pad_l || L->pad_b || L->pad_r ||
            L->out_h != 1u || L->out_w != 1u)
            FAIL(li, META_CHK_DENSE_SHAPE);
    } else {
        if (L->in_h == 0u || L->in_w == 0u || L->in_c == 0u || L->kh == 0u || L->kw == 0u ||
            L->stride_h == 0u || L->stride_w == 0u ||
            (uint64_t)L->in_c * L->kh * L->kw != L->cols ||
            L->in_h + L->pad_t + L->pad_b < L->kh || L->in_w + L->pad_l + L->pad_r < L->kw ||
            L->out_h != (L->in_h + L->pad_t + L->pad_b - L->kh) / L->stride_h + 1u ||
            L->out_w != (L->in_w + L->pad_l + L->pad_r - L->kw) / L->stride_w + 1u)
            FAIL(li, META_CHK_CONV_SHAPE);
    }
    if (L->pool == META_POOL_NONE) {
        if (L->pool_k != 0u && L->pool_k != 1u) FAIL(li, META_CHK_POOL);
        L->ph = L->out_h; L->pw = L->out_w;
    } else if (L->pool == META_POOL_MAX || L->pool == META_POOL_AVG) {
        if (L->pool_k == 0u || L->pool_s == 0u || L->pool_k > L->out_h || L->pool_k > L->out_w)
            FAIL(li, META_CHK_POOL);
        L->ph = (L->out_h - L->pool_k) / L->pool_s + 1u;
        L->pw = (L->out_w - L->pool_k) / L->pool_s + 1u;
    } else {
        FAIL(li, META_CHK_POOL);
    }
    if (!zero_bytes(r + 86, 2u)) FAIL(li, META_CHK_RESERVED);

    num = (uint64_t)L->in_h * L->in_w * L->in_c;
    if (num > PQ_ACT_MAX) { *detail = li; return PQ_E_SIZE; }
    L->in_size = (uint32_t)num;
    num = (uint64_t)L->out_h * L->out_w * L->rows;
    if (num > PQ_ACT_MAX) { *detail = li; return PQ_E_SIZE; }
    L->raw_size = (uint32_t)num;
    L->out_size = L->ph * L->pw * L->rows;
    k = L->raw_size > L->in_size ? L->raw_size : L->in_size;
    if (k > m->max_size) m->max_size = k;
    return PQ_OK;
}

int meta_parse(const uint8_t *buf, uint32_t len, meta_model_t *m, uint32_t *detail)
{
    uint32_t i, recs_end, wsum = 0, crc;
    uint64_t num;
    *detail = 0;
    util_fill(m, 0, sizeof(*m));

    if (len < META_HEADER_SIZE + 4u) FAIL(0, META_CHK_SHORT);
    if (buf[0] != 'P' || buf[1] != 'Q' || buf[2] != 'M' || buf[3] != 'B') FAIL(0, META_CHK_MAGIC);
    if (util_get_u16(buf + 4) != 1u) FAIL(0, META_CHK_VERSION);
    if (util_get_u16(buf + 6) != META_HEADER_SIZE) FAIL(0, META_CHK_HEADER_SIZE);
    if (util_get_u16(buf + 8) != META_REC_SIZE) FAIL(0, META_CHK_REC_SIZE);
    m->n_layers = util_get_u16(buf + 10);
    m->file_size = util_get_u32(buf + 12);
    if (m->file_size != len) FAIL(0, META_CHK_FILE_SIZE);
    crc = crc32_compute(buf, len - 4u);
    if (crc != util_get_u32(buf + len - 4u)) { *detail = crc; return PQ_E_CRC; }
    if (m->n_layers == 0u || m->n_layers > PQ_MAX_LAYERS) FAIL(0, META_CHK_N_LAYERS);
    recs_end = META_HEADER_SIZE + m->n_layers * META_REC_SIZE;
    if (recs_end > len - 4u) FAIL(0, META_CHK_RECORDS);
    m->params_offset = util_get_u32(buf + 16);
    m->params_size = util_get_u32(buf + 20);
    if (m->params_offset < recs_end || m->params_offset > len - 4u ||
        m->params_size > len - 4u - m->params_offset || (m->params_size & 7u))
        FAIL(0, META_CHK_PARAMS_REGION);
    m->in_h = util_get_u16(buf + 24); m->in_w = util_get_u16(buf + 26); m->in_c = util_get_u16(buf + 28);
    m->flags = util_get_u16(buf + 30);
    m->out_size = util_get_u32(buf + 36);
    m->total_weight_bytes = util_get_u32(buf + 40);
    if (!(m->flags & 1u)) FAIL(0, META_CHK_NOT_EXECUTABLE);
    if (!zero_bytes(buf + 44, 20u)) FAIL(0, META_CHK_RESERVED);
    num = (uint64_t)m->in_h * m->in_w * m->in_c;
    if (num == 0u) FAIL(0, META_CHK_INPUT_DIMS);
    if (num > PQ_ACT_MAX) { *detail = PQ_ACT_MAX; return PQ_E_SIZE; }
    m->in_size = (uint32_t)num;
    m->max_size = m->in_size;
    m->params = buf;

    for (i = 0; i < m->n_layers; i++) {
        meta_layer_t *L = &m->layers[i];
        int rc = check_layer(buf, m, i, detail);
        if (rc != PQ_OK) return rc;
        /* chain: this layer consumes exactly what the previous one produced */
        if (i == 0u) {
            if (L->in_size != m->in_size) FAIL(1, META_CHK_CHAIN);
            if (L->op == META_OP_CONV && (L->in_h != m->in_h || L->in_w != m->in_w || L->in_c != m->in_c))
                FAIL(1, META_CHK_CHAIN);
        } else {
            const meta_layer_t *P = &m->layers[i - 1u];
            if (L->in_size != P->out_size) FAIL(i + 1u, META_CHK_CHAIN);
            if (L->op == META_OP_CONV && P->op == META_OP_CONV &&
                (L->in_h != P->ph || L->in_w != P->pw || L->in_c != P->rows))
                FAIL(i + 1u, META_CHK_CHAIN);
        }
        if (L->bin_size > PQ_WEIGHTS_MAX - wsum) { *detail = PQ_WEIGHTS_MAX; return PQ_E_SIZE; }
        L->wofs = wsum;
        wsum += L->bin_size;
    }
    if (wsum != m->total_weight_bytes) FAIL(0, META_CHK_TOTAL_WEIGHTS);
    if (m->layers[m->n_layers - 1u].out_size != m->out_size) FAIL(0, META_CHK_OUT_SIZE);
    return PQ_OK;
}
