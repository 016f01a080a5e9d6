/* test_basic.c - CRC-32 known-answer vectors and COBS edge cases. */
#include <string.h>
#include <zlib.h>
#include "pq_fw.h"
#include "tests.h"

void test_crc(void)
{
    static uint8_t big[10000];
    size_t i;
    CHECK_EQ(crc32_compute((const uint8_t *)"", 0), 0x00000000u);
    CHECK_EQ(crc32_compute((const uint8_t *)"123456789", 9), 0xCBF43926u);   /* the standard check value */
    CHECK_EQ(crc32_compute((const uint8_t *)"a", 1), 0xE8B7BE43u);
    CHECK_EQ(crc32_compute((const uint8_t *)"The quick brown fox jumps over the lazy dog", 43), 0x414FA339u);
    for (i = 0; i < sizeof(big); i++) big[i] = (uint8_t)tb_rand();
    CHECK_EQ(crc32_compute(big, sizeof(big)), crc32(0L, big, sizeof(big)));
    /* incremental == one-shot */
    CHECK_EQ(crc32_update(crc32_update(0, big, 3333), big + 3333, sizeof(big) - 3333), crc32_compute(big, sizeof(big)));
}

static void roundtrip(const uint8_t *src, size_t n)
{
    static uint8_t enc[COBS_MAX_ENCODED(5000)], dec[5000];
    size_t e = cobs_encode(src, n, enc, sizeof(enc)), i;
    long d;
    CHECK(e > 0 && e <= COBS_MAX_ENCODED(n));
    for (i = 0; i < e; i++) if (enc[i] == 0) { CHECK(!"zero byte in COBS output"); break; }
    d = cobs_decode(enc, e, dec, sizeof(dec));
    CHECK_EQ(d, (long)n);
    CHECK(d == (long)n && memcmp(dec, src, n) == 0);
}

void test_cobs(void)
{
    static uint8_t buf[5000], enc[64], dec[64];
    size_t i, n;
    /* known encodings (Cheshire & Baker examples) */
    CHECK_EQ(cobs_encode((const uint8_t *)"", 0, enc, sizeof(enc)), 1); CHECK_EQ(enc[0], 1);
    buf[0] = 0; CHECK_EQ(cobs_encode(buf, 1, enc, sizeof(enc)), 2); CHECK(enc[0] == 1 && enc[1] == 1);
    buf[0] = 0; buf[1] = 0; CHECK_EQ(cobs_encode(buf, 2, enc, sizeof(enc)), 3);
    CHECK(enc[0] == 1 && enc[1] == 1 && enc[2] == 1);
    buf[0] = 0x11; buf[1] = 0x22; buf[2] = 0; buf[3] = 0x33;
    CHECK_EQ(cobs_encode(buf, 4, enc, sizeof(enc)), 5);
    CHECK(enc[0] == 3 && enc[1] == 0x11 && enc[2] == 0x22 && enc[3] == 2 && enc[4] == 0x33);
    /* 254 and 255 non-zero bytes: block boundaries */
    for (n = 250; n <= 260; n++) {
        for (i = 0; i < n; i++) buf[i] = (uint8_t)(1 + i % 255);
        roundtrip(buf, n);
    }
    for (i = 0; i < 254; i++) buf[i] = 1;
    n = cobs_encode(buf, 254, (uint8_t *)buf + 1000, 300);
    CHECK(n == 255 || n == 256); CHECK_EQ(buf[1000], 0xFF);
    /* all zeros, random lengths and contents */
    memset(buf, 0, 600); roundtrip(buf, 600);
    for (i = 0; i < 300; i++) {
        size_t k;
        n = tb_rand() % 4500;
        for (k = 0; k < n; k++) buf[k] = (tb_rand() % 4 == 0) ? 0 : (uint8_t)tb_rand();
        roundtrip(buf, n);
    }
    /* capacity is respected */
    for (i = 0; i < 100; i++) buf[i] = 7;
    CHECK_EQ(cobs_encode(buf, 100, enc, 50), 0);
    /* malformed input */
    enc[0] = 5; enc[1] = 1; enc[2] = 2; CHECK_EQ(cobs_decode(enc, 3, dec, sizeof(dec)), -1);   /* code past end */
    enc[0] = 3; enc[1] = 0; enc[2] = 2; CHECK_EQ(cobs_decode(enc, 3, dec, sizeof(dec)), -1);   /* zero inside */
    enc[0] = 0; CHECK_EQ(cobs_decode(enc, 1, dec, sizeof(dec)), -1);
    enc[0] = 4; enc[1] = 1; enc[2] = 2; enc[3] = 3; CHECK_EQ(cobs_decode(enc, 4, dec, 2), -1); /* overflow */
    CHECK_EQ(cobs_decode(enc, 0, dec, sizeof(dec)), 0);
}
