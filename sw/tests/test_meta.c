/* test_meta.c - every error path of the metadata parser on corrupted files. */
#include <string.h>
#include "pq_fw.h"
#include "tests.h"

static uint8_t meta[16384], work[16384], wts[1 << 18];
static meta_model_t mm;

static void p16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void p32(uint8_t *p, uint32_t v) { p16(p, v & 0xFFFF); p16(p + 2, v >> 16); }

/* corrupt a copy with f(), fix the CRC, expect (rc, detail) */
typedef void (*mut_t)(uint8_t *m, size_t len);
static void expect(size_t len, mut_t f, int rc, uint32_t detail, int line)
{
    uint32_t d = 0;
    int got;
    memcpy(work, meta, len);
    f(work, len);
    tb_fix_crc(work, len);
    got = meta_parse(work, (uint32_t)len, &mm, &d);
    if (got != rc || d != detail) {
        fprintf(stderr, "test_meta.c:%d: expected rc %d detail 0x%x, got rc %d detail 0x%x\n", line, rc, detail, got, d);
        t_failures++;
    }
}
#define EXPECT(f, rc, det) expect(len, f, rc, det, __LINE__)
#define L1 (64 + 0)     /* record of layer 0 (conv) */
#define L2 (64 + 128)   /* record of layer 1 (dense) */

static void m_magic(uint8_t *m, size_t n) { (void)n; m[0] = 'X'; }
static void m_version(uint8_t *m, size_t n) { (void)n; p16(m + 4, 2); }
static void m_hsize(uint8_t *m, size_t n) { (void)n; p16(m + 6, 60); }
static void m_rsize(uint8_t *m, size_t n) { (void)n; p16(m + 8, 64); }
static void m_nlayers0(uint8_t *m, size_t n) { (void)n; p16(m + 10, 0); }
static void m_nlayers_big(uint8_t *m, size_t n) { (void)n; p16(m + 10, 1000); }
static void m_nlayers_past(uint8_t *m, size_t n) { (void)n; p16(m + 10, 60); }
static void m_fsize(uint8_t *m, size_t n) { p32(m + 12, (uint32_t)n + 4); }
static void m_params_off(uint8_t *m, size_t n) { (void)n; p32(m + 16, 100); }
static void m_params_size(uint8_t *m, size_t n) { p32(m + 20, (uint32_t)n); }
static void m_params_odd(uint8_t *m, size_t n) { (void)n; p32(m + 20, 12); }
static void m_in_dims(uint8_t *m, size_t n) { (void)n; p16(m + 28, 0); }
static void m_in_huge(uint8_t *m, size_t n) { (void)n; p16(m + 24, 60000); p16(m + 26, 60000); }
static void m_not_exec(uint8_t *m, size_t n) { (void)n; p16(m + 30, 0); }
static void m_total_w(uint8_t *m, size_t n) { (void)n; p32(m + 40, util_get_u32(m + 40) + 1); }
static void m_out_size(uint8_t *m, size_t n) { (void)n; p32(m + 36, 11); }
static void m_reserved(uint8_t *m, size_t n) { (void)n; m[50] = 1; }
static void m_op(uint8_t *m, size_t n) { (void)n; m[L1 + 32] = 3; }
static void m_not_exec_layer(uint8_t *m, size_t n) { (void)n; m[L2 + 34] &= (uint8_t)~8u; }
static void m_bits(uint8_t *m, size_t n) { (void)n; m[L2 + 33] = 5; }
static void m_rows0(uint8_t *m, size_t n) { (void)n; p32(m + L2 + 36, 0); }
static void m_cols_big(uint8_t *m, size_t n) { (void)n; p32(m + L2 + 40, 5000); }
static void m_bin_size(uint8_t *m, size_t n) { (void)n; p32(m + L2 + 44, util_get_u32(m + L2 + 44) - 1); }
static void m_params_layer(uint8_t *m, size_t n) { p32(m + L2 + 52, (uint32_t)n - 8); }
static void m_params_before(uint8_t *m, size_t n) { (void)n; p32(m + L2 + 52, 64); }
static void m_shift0(uint8_t *m, size_t n) { (void)n; m[util_get_u32(m + L2 + 52) + 8 * 3 + 6] = 0; }
static void m_shift48(uint8_t *m, size_t n) { (void)n; m[util_get_u32(m + L2 + 52) + 6] = 48; }
static void m_mult(uint8_t *m, size_t n) { (void)n; p16(m + util_get_u32(m + L2 + 52) + 4, 40000); }
static void m_pad7(uint8_t *m, size_t n) { (void)n; m[util_get_u32(m + L1 + 52) + 7] = 1; }
static void m_dense_shape(uint8_t *m, size_t n) { (void)n; p16(m + L2 + 62, 3); }
static void m_dense_inc(uint8_t *m, size_t n) { (void)n; p16(m + L2 + 60, 7); }
static void m_conv_k(uint8_t *m, size_t n) { (void)n; p16(m + L1 + 62, 2); }          /* kh: cols != in_c*kh*kw */
static void m_conv_out(uint8_t *m, size_t n) { (void)n; p16(m + L1 + 78, 7); }
static void m_conv_stride0(uint8_t *m, size_t n) { (void)n; p16(m + L1 + 66, 0); }
static void m_pool_kind(uint8_t *m, size_t n) { (void)n; m[L1 + 35] = 3; }
static void m_pool_k0(uint8_t *m, size_t n) { (void)n; p16(m + L1 + 82, 0); }
static void m_pool_big(uint8_t *m, size_t n) { (void)n; p16(m + L1 + 82, 9); }
static void m_chain_first(uint8_t *m, size_t n) { (void)n; p16(m + L1 + 56, 7); p16(m + L1 + 78, 7); }
static void m_chain(uint8_t *m, size_t n)
{   /* layer 1 gets 2 more columns than layer 0 produces (bin_size and params kept consistent) */
    (void)n; p32(m + L2 + 40, util_get_u32(m + L2 + 40) + 4); p16(m + L2 + 60, util_get_u16(m + L2 + 60) + 4);
    p32(m + L2 + 44, util_get_u32(m + L2 + 36) * util_get_u32(m + L2 + 40));
    p32(m + 40, util_get_u32(m + L1 + 44) + util_get_u32(m + L2 + 44));
}
static void m_rec_reserved(uint8_t *m, size_t n) { (void)n; m[L1 + 86] = 1; }

void test_meta(void)
{
    /* conv 8x8x2 -> 3x3 pad 1 -> 4 ch, relu, maxpool 2/2 -> 4x4x4 -> dense 64 -> 10 */
    tb_layer_t ls[2] = {
        {2, 6, 1, 1, 4, 18, 8, 8, 2, 3, 3, 1, 1, 1, 1, 1, 1, 2, 2},
        {1, 8, 0, 0, 10, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    };
    size_t wlen, len;
    uint32_t d;
    tb_seed(7);
    len = tb_build(ls, 2, 8, 8, 2, meta, sizeof(meta), wts, sizeof(wts), &wlen);
    CHECK(len > 0);
    CHECK_EQ(meta_parse(meta, (uint32_t)len, &mm, &d), PQ_OK);
    CHECK_EQ(mm.n_layers, 2);
    CHECK_EQ(mm.layers[0].out_h, 8); CHECK_EQ(mm.layers[0].ph, 4); CHECK_EQ(mm.layers[0].out_size, 64);
    CHECK_EQ(mm.layers[1].wofs, mm.layers[0].bin_size);
    CHECK_EQ(mm.in_size, 128);
    CHECK_EQ(mm.max_size, 256);

    /* truncated / wrong size / CRC */
    CHECK_EQ(meta_parse(meta, 67, &mm, &d), PQ_E_META); CHECK_EQ(d, META_CHK_SHORT);
    CHECK_EQ(meta_parse(meta, (uint32_t)len - 8, &mm, &d), PQ_E_META); CHECK_EQ(d, META_CHK_FILE_SIZE);
    memcpy(work, meta, len); work[70] ^= 1;
    CHECK_EQ(meta_parse(work, (uint32_t)len, &mm, &d), PQ_E_CRC);

    EXPECT(m_magic, PQ_E_META, META_CHK_MAGIC);
    EXPECT(m_version, PQ_E_META, META_CHK_VERSION);
    EXPECT(m_hsize, PQ_E_META, META_CHK_HEADER_SIZE);
    EXPECT(m_rsize, PQ_E_META, META_CHK_REC_SIZE);
    EXPECT(m_nlayers0, PQ_E_META, META_CHK_N_LAYERS);
    EXPECT(m_nlayers_big, PQ_E_META, META_CHK_N_LAYERS);
    EXPECT(m_nlayers_past, PQ_E_META, META_CHK_RECORDS);
    EXPECT(m_fsize, PQ_E_META, META_CHK_FILE_SIZE);
    EXPECT(m_params_off, PQ_E_META, META_CHK_PARAMS_REGION);
    EXPECT(m_params_size, PQ_E_META, META_CHK_PARAMS_REGION);
    EXPECT(m_params_odd, PQ_E_META, META_CHK_PARAMS_REGION);
    EXPECT(m_in_dims, PQ_E_META, META_CHK_INPUT_DIMS);
    EXPECT(m_in_huge, PQ_E_SIZE, PQ_ACT_MAX);
    EXPECT(m_not_exec, PQ_E_META, META_CHK_NOT_EXECUTABLE);
    EXPECT(m_total_w, PQ_E_META, META_CHK_TOTAL_WEIGHTS);
    EXPECT(m_out_size, PQ_E_META, META_CHK_OUT_SIZE);
    EXPECT(m_reserved, PQ_E_META, META_CHK_RESERVED);
    EXPECT(m_op, PQ_E_META, (1u << 16) | META_CHK_OP);
    EXPECT(m_not_exec_layer, PQ_E_META, (2u << 16) | META_CHK_OP);
    EXPECT(m_bits, PQ_E_META, (2u << 16) | META_CHK_BITS);
    EXPECT(m_rows0, PQ_E_META, (2u << 16) | META_CHK_DIMS);
    EXPECT(m_cols_big, PQ_E_META, (2u << 16) | META_CHK_DIMS);
    EXPECT(m_bin_size, PQ_E_META, (2u << 16) | META_CHK_BIN_SIZE);
    EXPECT(m_params_layer, PQ_E_META, (2u << 16) | META_CHK_PARAMS_OFFSET);
    EXPECT(m_params_before, PQ_E_META, (2u << 16) | META_CHK_PARAMS_OFFSET);
    EXPECT(m_shift0, PQ_E_META, (2u << 16) | META_CHK_CONSTANTS);
    EXPECT(m_shift48, PQ_E_META, (2u << 16) | META_CHK_CONSTANTS);
    EXPECT(m_mult, PQ_E_META, (2u << 16) | META_CHK_CONSTANTS);
    EXPECT(m_pad7, PQ_E_META, (1u << 16) | META_CHK_CONSTANTS);
    EXPECT(m_dense_shape, PQ_E_META, (2u << 16) | META_CHK_DENSE_SHAPE);
    EXPECT(m_dense_inc, PQ_E_META, (2u << 16) | META_CHK_DENSE_SHAPE);
    EXPECT(m_conv_k, PQ_E_META, (1u << 16) | META_CHK_CONV_SHAPE);
    EXPECT(m_conv_out, PQ_E_META, (1u << 16) | META_CHK_CONV_SHAPE);
    EXPECT(m_conv_stride0, PQ_E_META, (1u << 16) | META_CHK_CONV_SHAPE);
    EXPECT(m_pool_kind, PQ_E_META, (1u << 16) | META_CHK_POOL);
    EXPECT(m_pool_k0, PQ_E_META, (1u << 16) | META_CHK_POOL);
    EXPECT(m_pool_big, PQ_E_META, (1u << 16) | META_CHK_POOL);
    EXPECT(m_chain_first, PQ_E_META, (1u << 16) | META_CHK_CHAIN);
    EXPECT(m_chain, PQ_E_META, (2u << 16) | META_CHK_CHAIN);
    EXPECT(m_rec_reserved, PQ_E_META, (1u << 16) | META_CHK_RESERVED);

    /* every single-byte truncation and every single-bit flip is rejected (CRC or a check) */
    {
        size_t i;
        for (i = 0; i < len; i++)
            if (meta_parse(meta, (uint32_t)i, &mm, &d) == PQ_OK) { CHECK(!"truncated meta accepted"); break; }
        for (i = 0; i < len * 8; i += 7) {
            memcpy(work, meta, len);
            work[i / 8] ^= (uint8_t)(1u << (i % 8));
            if (meta_parse(work, (uint32_t)len, &mm, &d) == PQ_OK) { CHECK(!"bit flip accepted"); break; }
        }
    }
}
