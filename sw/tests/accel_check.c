/* accel_check.c - `make -C sw accel-check [BACKEND=verilated]`: random accelerator calls through
 * the real driver (core/accel.c) and host HAL seam on the selected backend, each compared with a
 * naive C computation of docs/FORMAT.md section 4. Prints one line per failing call (shape,
 * driver error or first mismatch) and a summary; exit 1 if any call failed.
 *   accel-check [n_calls [seed [max_rows [max_cols [max_ncols]]]]] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pq_accel.h"
#include "pq_fw.h"
#include "tests.h"

int pqt_init(void);
int pqt_layer(uint32_t prec, uint32_t rows, uint32_t cols, uint32_t ncols, uint32_t flags,
              const uint8_t *wgt_bytes, uint32_t wgt_len, const int8_t *x, int8_t *y, uint64_t *cycles);
int t_failures;
static uint32_t rng = 1;
uint32_t tb_rand(void) { rng ^= rng << 13; rng ^= rng >> 17; rng ^= rng << 5; return rng; }
void tb_seed(uint32_t s) { rng = s ? s : 1u; }

static uint8_t wb[8 * 256 + 32768 + 8];
static int8_t codes[256 * 1024], X[64 * 1024], Y[64 * 256];
static int32_t bias[256];
static uint32_t mult[256], shift[256];

static int8_t requant(int64_t acc, uint32_t m, uint32_t s, int relu)
{
    int64_t num = acc * (int64_t)m + ((int64_t)1 << (s - 1)), den = (int64_t)1 << s, q = num / den;
    if (num % den != 0 && num < 0) q--;
    if (relu && q < 0) q = 0;
    return (int8_t)(q < -128 ? -128 : q > 127 ? 127 : q);
}

int main(int argc, char **argv)
{
    uint32_t calls = argc > 1 ? (uint32_t)atoi(argv[1]) : 200, i, bad = 0;
    uint32_t maxm = argc > 3 ? (uint32_t)atoi(argv[3]) : 64, maxk = argc > 4 ? (uint32_t)atoi(argv[4]) : 300;
    uint32_t maxn = argc > 5 ? (uint32_t)atoi(argv[5]) : 40;
    static const uint32_t widths[4] = {2, 4, 6, 8};
    uint64_t total = 0;
    tb_seed(argc > 2 ? (uint32_t)atoi(argv[2]) : 1u);
    accel_timeout_ms = 3000u;
    if (pqt_init() != 0) { fprintf(stderr, "accel-check: backend failed to start\n"); return 2; }
    for (i = 0; i < calls; i++) {
        uint32_t bits = widths[tb_rand() % 4], M = 1 + tb_rand() % maxm, K = 1 + tb_rand() % maxk;
        uint32_t N = 1 + tb_rand() % maxn, q = (1u << (bits - 1)) - 1, rb = tb_row_bytes(K, bits), m, k, n;
        int relu = (int)(tb_rand() & 1), rc, reuse = i > 0 && (tb_rand() % 4 == 0);
        uint64_t cyc = 0;
        if (K > 1024 || M * rb > 32768 || N * K > sizeof(X) || N * M > sizeof(Y)) { i--; continue; }
        (void)reuse;
        for (m = 0; m < M; m++) {
            for (k = 0; k < K; k++) codes[m * K + k] = (int8_t)((int32_t)(tb_rand() % (2 * q + 1)) - (int32_t)q);
            bias[m] = (int32_t)(tb_rand() % 200001) - 100000;
            mult[m] = tb_rand() % 32768u;
            shift[m] = 1u + tb_rand() % 47u;
            util_put_u32(wb + 8 * m, (uint32_t)bias[m]); util_put_u16(wb + 8 * m + 4, (uint16_t)mult[m]);
            wb[8 * m + 6] = (uint8_t)shift[m]; wb[8 * m + 7] = 0;
            tb_pack_row(codes + m * K, K, bits, wb + 8 * M + m * rb);
        }
        for (n = 0; n < N * K; n++) X[n] = (int8_t)tb_rand();
        rc = pqt_layer(bits, M, K, N, relu ? PQ_FLAG_RELU : 0u, wb, 8 * M + M * rb, X, Y, &cyc);
        total += cyc;
        if (rc != 0) {
            printf("call %u: INT%u M=%u K=%u N=%u relu=%d -> driver error %d (1 args 2 wgt 3 act 4 res 5 done 6 busy)\n",
                   i, bits, M, K, N, relu, rc);
            bad++;
            if (pqt_init() != 0) return 2;   /* reset the accelerator after a hang */
            continue;
        }
        for (n = 0; n < N; n++) {
            for (m = 0; m < M; m++) {
                int64_t acc = bias[m];
                int8_t want;
                for (k = 0; k < K; k++) acc += (int64_t)X[n * K + k] * codes[m * K + k];
                want = requant(acc, mult[m], shift[m], relu);
                if (Y[n * M + m] != want) {
                    printf("call %u: INT%u M=%u K=%u N=%u relu=%d -> Y[%u,%u] = %d, expected %d\n",
                           i, bits, M, K, N, relu, n, m, Y[n * M + m], want);
                    bad++;
                    n = N; break;
                }
            }
        }
    }
    printf("accel-check: %u/%u calls wrong or failed, %llu accelerator cycles\n", bad, calls, (unsigned long long)total);
    return bad ? 1 : 0;
}
