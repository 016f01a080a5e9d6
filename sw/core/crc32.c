/* crc32.c - CRC-32 (zlib / IEEE 802.3, reflected polynomial 0xEDB88320). */
#include "pq_fw.h"

static uint32_t crc_table[256];
static int crc_ready;

static void crc32_init(void)
{
    uint32_t i, j, c;
    for (i = 0; i < 256u; i++) {
        c = i;
        for (j = 0; j < 8u; j++) c = (c & 1u) ? (0xEDB88320u ^ (c >> 1)) : (c >> 1);
        crc_table[i] = c;
    }
    crc_ready = 1;
}

uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
    if (!crc_ready) crc32_init();
    crc = ~crc;
    while (n--) crc = crc_table[(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}

uint32_t crc32_compute(const uint8_t *p, size_t n) { return crc32_update(0u, p, n); }
