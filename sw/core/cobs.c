/* cobs.c - Consistent Overhead Byte Stuffing (Cheshire & Baker), no delimiter included. */
#include "pq_fw.h"

size_t cobs_encode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap)
{
    size_t out = 1, code_pos = 0, i;
    uint8_t code = 1;
    if (cap < 1u) return 0;
    for (i = 0; i < n; i++) {
        if (src[i] == 0u) {
            dst[code_pos] = code;
            code_pos = out++;
            code = 1;
            if (code_pos >= cap) return 0;
        } else {
            if (out >= cap) return 0;
            dst[out++] = src[i];
            code++;
            if (code == 0xFFu) {
                dst[code_pos] = code;
                code_pos = out++;
                code = 1;
                if (code_pos >= cap) return 0;
            }
        }
    }
    dst[code_pos] = code;
    return out;
}

long cobs_decode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap)
{
    size_t i = 0, out = 0;
    while (i < n) {
        uint8_t code = src[i++];
        size_t k;
        if (code == 0u) return -1;
        for (k = 1; k < code; k++) {
            if (i >= n || src[i] == 0u || out >= cap) return -1;
            dst[out++] = src[i++];
        }
        if (code != 0xFFu && i < n) {
            if (out >= cap) return -1;
            dst[out++] = 0u;
        }
    }
    return (long)out;
}
