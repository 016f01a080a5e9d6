/* tests.h - a tiny test runner for the firmware unit tests. */
#ifndef PQ_TESTS_H
#define PQ_TESTS_H
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>

extern int t_failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); t_failures++; } } while (0)
#define CHECK_EQ(a, b) do { long long _a = (long long)(a), _b = (long long)(b); if (_a != _b) { \
    fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %lld, %s == %lld\n", __FILE__, __LINE__, #a, _a, #b, _b); t_failures++; } } while (0)

/* deterministic PRNG */
uint32_t tb_rand(void);
void tb_seed(uint32_t s);

/* hand-built model.meta.bin (docs/FORMAT.md section 5) */
typedef struct {
    uint8_t op, bits, relu, pool;
    uint32_t rows, cols;
    uint32_t in_h, in_w, in_c, kh, kw, sh, sw, pt, pl, pb, pr, pool_k, pool_s;
} tb_layer_t;
/* Build meta + weights (random codes) for the layers; returns meta length (0 on error).
 * Weights of all layers are concatenated into *wts (wlen bytes). Constants are random but
 * keep the accumulator in int32. */
size_t tb_build(const tb_layer_t *ls, uint32_t n, uint32_t in_h, uint32_t in_w, uint32_t in_c,
                uint8_t *meta, size_t meta_cap, uint8_t *wts, size_t wcap, size_t *wlen);
void   tb_fix_crc(uint8_t *meta, size_t len);
uint32_t tb_row_bytes(uint32_t cols, uint32_t bits);
void   tb_pack_row(const int8_t *codes, uint32_t cols, uint32_t bits, uint8_t *out);

void test_crc(void);
void test_cobs(void);
void test_proto(void);
void test_meta(void);
void test_sched(void);
void test_accel(void);
#endif
