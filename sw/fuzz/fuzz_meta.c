/* fuzz_meta.c - libFuzzer target: the model.meta.bin parser, and the scheduler on whatever
 * the parser accepts. Unless size % 8 == 7 the harness patches file_size and the CRC trailer
 * so the fuzzer gets past the CRC check to every field check. Accepted models small enough to
 * run quickly are executed on zero weights and fuzz-derived inputs (bounds of im2col, tiling,
 * pooling under ASan/UBSan). */
#include <stdint.h>
#include <string.h>
#include <zlib.h>
#include "pq_accel.h"
#include "pq_fw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t buf[PQ_META_MAX];
static uint8_t weights[PQ_WEIGHTS_MAX];
static int8_t in[PQ_ACT_MAX], out[PQ_ACT_MAX];
static meta_model_t m;
static uint32_t cycles[PQ_MAX_LAYERS];
static int ready;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t detail, l, i;
    uint64_t work = 0;
    if (!ready) { accel_init(); ready = 1; }
    if (size > sizeof(buf)) return 0;
    memcpy(buf, data, size);
    if (size >= 68 && size % 8 != 7) {
        uint32_t crc;
        buf[12] = (uint8_t)size; buf[13] = (uint8_t)(size >> 8); buf[14] = (uint8_t)(size >> 16); buf[15] = 0;
        crc = (uint32_t)crc32(0L, buf, (uInt)(size - 4));
        buf[size - 4] = (uint8_t)crc; buf[size - 3] = (uint8_t)(crc >> 8);
        buf[size - 2] = (uint8_t)(crc >> 16); buf[size - 1] = (uint8_t)(crc >> 24);
    }
    if (meta_parse(buf, (uint32_t)size, &m, &detail) != PQ_OK) return 0;
    for (l = 0; l < m.n_layers; l++)
        work += (uint64_t)m.layers[l].rows * m.layers[l].cols * m.layers[l].out_h * m.layers[l].out_w
              + (uint64_t)m.layers[l].raw_size * m.layers[l].pool_k * m.layers[l].pool_k;
    if (work > 2000000u) return 0;
    for (i = 0; i < m.in_size; i++) in[i] = (int8_t)buf[i % size];
    (void)sched_run(&m, weights, in, 1, out, cycles, &detail);
    return 0;
}
