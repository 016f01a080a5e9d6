/* test_proto.c - the protocol engine through the in-memory UART: framing, NAKs,
 * resynchronisation, duplicate requests, every command and its error paths. */
#include <string.h>
#include <zlib.h>
#include "backend.h"
#include "hal_test.h"
#include "pq_accel.h"
#include "pq_fw.h"
#include "tests.h"

typedef struct { uint8_t ver, cmd; uint16_t seq; uint16_t len; uint8_t p[PQ_MAX_PAYLOAD + 16]; int n; } resp_t;

static uint8_t obuf[1 << 16];

static size_t mkframe(uint8_t *f, uint8_t ver, uint8_t cmd, uint16_t seq, const uint8_t *pl, size_t len)
{
    f[0] = ver; f[1] = cmd; f[2] = (uint8_t)seq; f[3] = (uint8_t)(seq >> 8);
    f[4] = (uint8_t)len; f[5] = (uint8_t)(len >> 8);
    if (len) memcpy(f + 6, pl, len);
    util_put_u32(f + 6 + len, (uint32_t)crc32(0L, f, (uInt)(6 + len)));
    return 10 + len;
}

static void feed(const uint8_t *p, size_t n) { size_t i; for (i = 0; i < n; i++) proto_rx_byte(p[i]); }

static void send_frame_raw(const uint8_t *f, size_t n)
{
    static uint8_t enc[PROTO_ENC_MAX + 64];
    size_t e = cobs_encode(f, n, enc, sizeof(enc));
    enc[e++] = 0;
    feed(enc, e);
}

/* take all responses; returns how many frames were decoded, the last one in r */
static int take(resp_t *r)
{
    static uint8_t dec[PROTO_FRAME_MAX + 16];
    size_t n = test_uart_take(obuf, sizeof(obuf)), i, start = 0;
    int frames = 0;
    for (i = 0; i < n; i++) {
        if (obuf[i] != 0) continue;
        {
            long d = cobs_decode(obuf + start, i - start, dec, sizeof(dec));
            start = i + 1;
            if (d < 10) { r->n = -1; continue; }
            r->ver = dec[0]; r->cmd = dec[1]; r->seq = util_get_u16(dec + 2); r->len = util_get_u16(dec + 4);
            CHECK_EQ(r->len + 10, d);
            CHECK_EQ(util_get_u32(dec + 6 + r->len), (uint32_t)crc32(0L, dec, (uInt)(6 + r->len)));
            memcpy(r->p, dec + 6, r->len);
            r->n = r->len;
            frames++;
        }
    }
    CHECK_EQ(start, n); /* every response ends with a delimiter */
    return frames;
}

static uint16_t g_seq = 100;
/* one request -> one response; returns the status byte (or -1) */
static int xfer(uint8_t cmd, const uint8_t *pl, size_t len, resp_t *r)
{
    static uint8_t f[PROTO_FRAME_MAX];
    size_t n = mkframe(f, 1, cmd, ++g_seq, pl, len);
    send_frame_raw(f, n);
    if (take(r) != 1) return -1;
    CHECK_EQ(r->cmd, cmd | 0x80);
    CHECK_EQ(r->seq, g_seq);
    return r->len ? r->p[0] : -1;
}

static uint32_t detail_of(const resp_t *r) { return r->len == 5 ? util_get_u32(r->p + 1) : 0xDEADBEEFu; }

static uint8_t meta[8192], wts[65536], pl[PQ_MAX_PAYLOAD];

static int load_chunk(uint8_t cmd, uint32_t idx_or_total, uint32_t off, const uint8_t *d, size_t n, resp_t *r)
{
    size_t h = cmd == CMD_LOAD_META ? 8 : 6;
    if (cmd == CMD_LOAD_META) { util_put_u32(pl, idx_or_total); util_put_u32(pl + 4, off); }
    else { util_put_u16(pl, (uint16_t)idx_or_total); util_put_u32(pl + 2, off); }
    memcpy(pl + h, d, n);
    return xfer(cmd, pl, h + n, r);
}

void test_proto(void)
{
    static resp_t r;
    static uint8_t f[PROTO_FRAME_MAX + 64], big[6000];
    static int8_t x[2 * 64 + 8], expect[2 * 10];
    static uint32_t cyc[8];
    static meta_model_t mm;
    tb_layer_t ls[2] = {{1, 4, 1, 0, 20, 64, 0}, {1, 8, 0, 0, 10, 20, 0}};
    size_t wlen = 0, mlen, n, i;
    uint32_t det;
    uint64_t c0;

    test_uart_reset();
    accel_init();
    proto_init();

    /* HELLO */
    CHECK_EQ(xfer(CMD_HELLO, 0, 0, &r), PQ_OK);
    CHECK_EQ(r.len, 37);
    CHECK(memcmp(r.p + 1, "PQFW", 4) == 0);
    CHECK_EQ(r.p[5], 1);
    CHECK_EQ(util_get_u16(r.p + 9), PQ_MAX_PAYLOAD);
    CHECK_EQ(util_get_u32(r.p + 11), PQ_META_MAX);
    CHECK_EQ(util_get_u32(r.p + 15), PQ_WEIGHTS_MAX);
    CHECK_EQ(util_get_u32(r.p + 19), PQ_ACT_MAX);
    CHECK_EQ(util_get_u16(r.p + 25), PQ_ACCEL_MAX_ROWS);
    CHECK_EQ(util_get_u32(r.p + 29), PQ_ACCEL_WMEM_BYTES);
    CHECK_EQ(r.p[33], backend_kind());
    CHECK_EQ(xfer(CMD_HELLO, pl, 1, &r), PQ_E_LEN);

    /* NAKs: CRC, short, length mismatch, COBS garbage, overflow; then resync */
    n = mkframe(f, 1, CMD_HELLO, 0x1234, 0, 0);
    f[7] ^= 0x40;
    send_frame_raw(f, n);
    CHECK_EQ(take(&r), 1); CHECK_EQ(r.cmd, CMD_NAK); CHECK_EQ(r.seq, 0x1234); CHECK_EQ(r.p[0], NAK_CRC);
    send_frame_raw(f, 6);
    CHECK_EQ(take(&r), 1); CHECK_EQ(r.cmd, CMD_NAK); CHECK_EQ(r.p[0], NAK_SHORT);
    n = mkframe(f, 1, CMD_STATUS, 0x55, (const uint8_t *)"\xff\xff", 2);
    f[4] = 3; util_put_u32(f + 8, (uint32_t)crc32(0L, f, 8));
    send_frame_raw(f, n);
    CHECK_EQ(take(&r), 1); CHECK_EQ(r.cmd, CMD_NAK); CHECK_EQ(r.seq, 0x55); CHECK_EQ(r.p[0], NAK_LENGTH);
    feed((const uint8_t *)"\x05\x01\x02\x00", 4);   /* COBS code past the end */
    CHECK_EQ(take(&r), 1); CHECK_EQ(r.cmd, CMD_NAK); CHECK_EQ(r.seq, 0xFFFF); CHECK_EQ(r.p[0], NAK_COBS);
    memset(big, 0x41, sizeof(big)); big[sizeof(big) - 1] = 0;
    feed(big, sizeof(big));
    CHECK_EQ(take(&r), 1); CHECK_EQ(r.cmd, CMD_NAK); CHECK_EQ(r.p[0], NAK_OVERFLOW);
    feed((const uint8_t *)"\x00\x00\x00", 3);     /* empty frames: silence */
    CHECK_EQ(test_uart_pending(), 0);
    /* garbage without a delimiter glued in front of a frame: NAK, then the retry works */
    feed((const uint8_t *)"\x13\x37", 2);
    n = mkframe(f, 1, CMD_HELLO, 77, 0, 0);
    send_frame_raw(f, n);
    CHECK_EQ(take(&r), 1); CHECK_EQ(r.cmd, CMD_NAK);
    send_frame_raw(f, n);
    CHECK_EQ(take(&r), 1); CHECK_EQ(r.cmd, CMD_HELLO | 0x80); CHECK_EQ(r.seq, 77);
    /* payload longer than MAX_PAYLOAD: refused with a NAK, never executed */
    memset(big, 1, 4200);
    n = mkframe(f, 1, CMD_LOAD_META, 78, big, 4097);
    send_frame_raw(f, n);
    CHECK_EQ(take(&r), 1); CHECK_EQ(r.cmd, CMD_NAK);

    /* a partial frame followed by line idle is dropped: the next frame is answered, no NAK */
    n = mkframe(f, 1, CMD_HELLO, 79, 0, 0);
    feed((const uint8_t *)"\x05\x01\x02", 3);
    proto_rx_idle();
    send_frame_raw(f, n);
    CHECK_EQ(take(&r), 1); CHECK_EQ(r.cmd, CMD_HELLO | 0x80); CHECK_EQ(r.seq, 79);
    /* proto_serve reads the HAL UART until it reports HAL_CLOSED */
    {
        static uint8_t enc[64];
        size_t e;
        n = mkframe(f, 1, CMD_STATUS, 80, (const uint8_t *)"\xff\xff", 2);
        e = cobs_encode(f, n, enc, sizeof(enc));
        enc[e++] = 0;
        test_uart_feed(enc, e);
        proto_serve();
        CHECK_EQ(take(&r), 1); CHECK_EQ(r.cmd, CMD_STATUS | 0x80); CHECK_EQ(r.seq, 80); CHECK_EQ(r.len, 17);
    }

    /* version, unknown command */
    n = mkframe(f, 2, CMD_HELLO, 90, 0, 0); send_frame_raw(f, n);
    CHECK_EQ(take(&r), 1); CHECK_EQ(r.cmd, CMD_HELLO | 0x80); CHECK_EQ(r.p[0], PQ_E_VERSION); CHECK_EQ(detail_of(&r), 1);
    CHECK_EQ(xfer(0x42, 0, 0, &r), PQ_E_CMD); CHECK_EQ(detail_of(&r), 0x42);
    CHECK_EQ(xfer(0x7F, 0, 0, &r), PQ_E_CMD);

    /* state errors before a model */
    CHECK_EQ(xfer(CMD_RUN, 0, 0, &r), PQ_E_STATE);
    CHECK_EQ(load_chunk(CMD_LOAD_LAYER, 0, 0, wts, 4, &r), PQ_E_STATE);
    CHECK_EQ(load_chunk(CMD_LOAD_INPUT, 1, 0, wts, 4, &r), PQ_E_STATE);
    util_put_u32(pl, 0); util_put_u16(pl + 4, 1);
    CHECK_EQ(xfer(CMD_READ_OUTPUT, pl, 6, &r), PQ_E_STATE);
    CHECK_EQ(xfer(CMD_READ_OUTPUT, pl, 5, &r), PQ_E_LEN);
    util_put_u16(pl, 0);
    CHECK_EQ(xfer(CMD_STATUS, pl, 2, &r), PQ_E_LAYER);
    CHECK_EQ(xfer(CMD_STATUS, pl, 0, &r), PQ_E_LEN);
    CHECK_EQ(load_chunk(CMD_LOAD_META, PQ_META_MAX + 1u, 0, meta, 0, &r), PQ_E_SIZE);
    CHECK_EQ(detail_of(&r), PQ_META_MAX);
    util_put_u16(pl, 0xFFFF);
    CHECK_EQ(xfer(CMD_STATUS, pl, 2, &r), PQ_OK);
    CHECK_EQ(r.p[1], STATE_EMPTY); CHECK_EQ(r.p[2], PQ_E_SIZE); CHECK_EQ(util_get_u32(r.p + 3), PQ_META_MAX);

    /* a two-layer dense model, uploaded in chunks */
    tb_seed(99);
    mlen = tb_build(ls, 2, 1, 1, 64, meta, sizeof(meta), wts, sizeof(wts), &wlen);
    CHECK(mlen > 0);
    CHECK_EQ(load_chunk(CMD_LOAD_META, (uint32_t)mlen, 0, meta, 100, &r), PQ_OK);
    CHECK_EQ(util_get_u32(r.p + 1), 100);
    CHECK_EQ(load_chunk(CMD_LOAD_META, (uint32_t)mlen, 150, meta + 150, 10, &r), PQ_E_OFFSET); /* gap */
    CHECK_EQ(load_chunk(CMD_LOAD_META, (uint32_t)mlen, 101, meta + 101, 10, &r), PQ_E_OFFSET); /* 1-byte gap */
    CHECK_EQ(detail_of(&r), 100);
    CHECK_EQ(load_chunk(CMD_LOAD_META, (uint32_t)mlen + 1u, 100, meta + 100, 10, &r), PQ_E_SIZE); /* other total */
    CHECK_EQ(load_chunk(CMD_LOAD_META, (uint32_t)mlen, 50, meta + 50, 30, &r), PQ_OK);  /* already held */
    CHECK_EQ(util_get_u32(r.p + 1), 100);
    CHECK_EQ(load_chunk(CMD_LOAD_META, (uint32_t)mlen, 90, meta + 90, 60, &r), PQ_OK);  /* overlap */
    CHECK_EQ(util_get_u32(r.p + 1), 150);
    CHECK_EQ(load_chunk(CMD_LOAD_META, (uint32_t)mlen, 150, meta + 150, mlen - 149, &r), PQ_E_OFFSET); /* past end */
    CHECK_EQ(load_chunk(CMD_LOAD_META, (uint32_t)mlen, 150, meta + 150, mlen - 150, &r), PQ_OK);
    CHECK_EQ(util_get_u32(r.p + 1), mlen);
    util_put_u16(pl, 0xFFFF);
    CHECK_EQ(xfer(CMD_STATUS, pl, 2, &r), PQ_OK);
    CHECK_EQ(r.p[1], STATE_META); CHECK_EQ(util_get_u32(r.p + 7), mlen); CHECK_EQ(util_get_u16(r.p + 15), 0);

    /* layers: bad index, bad CRC, good */
    CHECK_EQ(load_chunk(CMD_LOAD_LAYER, 2, 0, wts, 4, &r), PQ_E_LAYER); CHECK_EQ(detail_of(&r), 2);
    n = 20u * 32u;  /* layer 0: 20 rows x 32 bytes (INT4, 64 cols) */
    CHECK_EQ(load_chunk(CMD_LOAD_LAYER, 0, 0, wts, n + 1, &r), PQ_E_OFFSET);
    wts[5] ^= 1;
    CHECK_EQ(load_chunk(CMD_LOAD_LAYER, 0, 0, wts, n, &r), PQ_E_CRC);
    CHECK_EQ(detail_of(&r), (uint32_t)crc32(0L, wts, (uInt)n));
    wts[5] ^= 1;
    util_put_u16(pl, 0);
    CHECK_EQ(xfer(CMD_STATUS, pl, 2, &r), PQ_OK); CHECK_EQ(util_get_u32(r.p + 11), 0); /* forgotten */
    /* the CRC runs over the chunks as they arrive: overlapping and repeated chunks must not
       enter it twice, and a bad byte in a later chunk is still caught */
    CHECK_EQ(load_chunk(CMD_LOAD_LAYER, 0, 0, wts, 200, &r), PQ_OK);
    CHECK_EQ(load_chunk(CMD_LOAD_LAYER, 0, 100, wts + 100, 150, &r), PQ_OK);   /* overlap */
    CHECK_EQ(load_chunk(CMD_LOAD_LAYER, 0, 0, wts, 200, &r), PQ_OK);          /* restarts at 0 */
    CHECK_EQ(load_chunk(CMD_LOAD_LAYER, 0, 150, wts + 150, 50, &r), PQ_OK);    /* already held */
    wts[400] ^= 0x10;
    CHECK_EQ(load_chunk(CMD_LOAD_LAYER, 0, 180, wts + 180, n - 180, &r), PQ_E_CRC);
    CHECK_EQ(detail_of(&r), (uint32_t)crc32(0L, wts, (uInt)n));
    wts[400] ^= 0x10;
    CHECK_EQ(load_chunk(CMD_LOAD_LAYER, 0, 0, wts, 300, &r), PQ_OK);
    CHECK_EQ(load_chunk(CMD_LOAD_LAYER, 0, 250, wts + 250, 100, &r), PQ_OK);   /* overlap */
    CHECK_EQ(load_chunk(CMD_LOAD_LAYER, 0, 300, wts + 300, n - 300, &r), PQ_OK);
    CHECK_EQ(util_get_u32(r.p + 1), n);
    CHECK_EQ(xfer(CMD_RUN, 0, 0, &r), PQ_E_STATE); CHECK_EQ(detail_of(&r), STATE_META);
    CHECK_EQ(load_chunk(CMD_LOAD_LAYER, 1, 0, wts + n, wlen - n, &r), PQ_OK);
    util_put_u16(pl, 1);
    CHECK_EQ(xfer(CMD_STATUS, pl, 2, &r), PQ_OK);
    CHECK_EQ(r.p[1], STATE_MODEL); CHECK_EQ(util_get_u32(r.p + 11), wlen - n); CHECK_EQ(util_get_u16(r.p + 15), 2);

    /* input */
    for (i = 0; i < sizeof(x); i++) x[i] = (int8_t)tb_rand();
    CHECK_EQ(load_chunk(CMD_LOAD_INPUT, 0, 0, (uint8_t *)x, 10, &r), PQ_E_SIZE);
    CHECK_EQ(load_chunk(CMD_LOAD_INPUT, 60000, 0, (uint8_t *)x, 10, &r), PQ_E_SIZE);
    CHECK_EQ(load_chunk(CMD_LOAD_INPUT, 2, 0, (uint8_t *)x, 129, &r), PQ_E_OFFSET);
    CHECK_EQ(load_chunk(CMD_LOAD_INPUT, 2, 0, (uint8_t *)x, 100, &r), PQ_OK);
    CHECK_EQ(load_chunk(CMD_LOAD_INPUT, 3, 100, (uint8_t *)x + 100, 28, &r), PQ_E_SIZE);
    CHECK_EQ(xfer(CMD_RUN, 0, 0, &r), PQ_E_STATE);
    CHECK_EQ(load_chunk(CMD_LOAD_INPUT, 2, 100, (uint8_t *)x + 100, 28, &r), PQ_OK);

    /* RUN, then a retransmission of the same request is answered from the cache */
    c0 = backend_cycles();
    CHECK_EQ(xfer(CMD_RUN, 0, 0, &r), PQ_OK);
    CHECK(backend_cycles() > c0);
    CHECK_EQ(r.len, 1 + 6 + 8);
    CHECK_EQ(util_get_u16(r.p + 5), 2);
    CHECK_EQ(util_get_u32(r.p + 1), util_get_u32(r.p + 7) + util_get_u32(r.p + 11));
    {
        static resp_t r2;
        n = mkframe(f, 1, CMD_RUN, g_seq, 0, 0);
        c0 = backend_cycles();
        send_frame_raw(f, n);
        CHECK_EQ(take(&r2), 1);
        CHECK_EQ(backend_cycles(), c0);               /* not executed again */
        CHECK(r2.len == r.len && memcmp(r2.p, r.p, r.len) == 0 && r2.seq == g_seq);
    }
    /* outputs == the scheduler run directly on the same model */
    CHECK_EQ(meta_parse(meta, (uint32_t)mlen, &mm, &det), PQ_OK);
    CHECK_EQ(sched_run(&mm, wts, x, 2, expect, cyc, &det), PQ_OK);
    util_put_u32(pl, 0); util_put_u16(pl + 4, 20);
    CHECK_EQ(xfer(CMD_READ_OUTPUT, pl, 6, &r), PQ_OK);
    CHECK_EQ(r.len, 21);
    CHECK(memcmp(r.p + 1, expect, 20) == 0);
    util_put_u32(pl, 15); util_put_u16(pl + 4, 6);
    CHECK_EQ(xfer(CMD_READ_OUTPUT, pl, 6, &r), PQ_E_OFFSET); CHECK_EQ(detail_of(&r), 20);
    util_put_u32(pl, 0); util_put_u16(pl + 4, 4096);
    CHECK_EQ(xfer(CMD_READ_OUTPUT, pl, 6, &r), PQ_E_LEN);
    util_put_u32(pl, 0xFFFFFFFFu); util_put_u16(pl + 4, 2);
    CHECK_EQ(xfer(CMD_READ_OUTPUT, pl, 6, &r), PQ_E_OFFSET);

    /* a new input invalidates the outputs; a new meta at offset 0 forgets everything */
    CHECK_EQ(load_chunk(CMD_LOAD_INPUT, 1, 0, (uint8_t *)x, 64, &r), PQ_OK);
    util_put_u32(pl, 0); util_put_u16(pl + 4, 1);
    CHECK_EQ(xfer(CMD_READ_OUTPUT, pl, 6, &r), PQ_E_STATE);
    CHECK_EQ(xfer(CMD_RUN, 0, 0, &r), PQ_OK);
    CHECK_EQ(xfer(CMD_READ_OUTPUT, pl, 6, &r), PQ_OK);
    CHECK_EQ((int8_t)r.p[1], expect[0]);
    CHECK_EQ(xfer(CMD_RESET, 0, 0, &r), PQ_OK);
    CHECK_EQ(r.len, 1);
    util_put_u16(pl, 0xFFFF);
    CHECK_EQ(xfer(CMD_STATUS, pl, 2, &r), PQ_OK);
    CHECK_EQ(r.p[1], STATE_EMPTY); CHECK_EQ(r.p[2], 0); CHECK_EQ(util_get_u32(r.p + 7), 0);

    /* a corrupted meta is refused and forgotten */
    meta[64 + 33] = 3; tb_fix_crc(meta, mlen);
    CHECK_EQ(load_chunk(CMD_LOAD_META, (uint32_t)mlen, 0, meta, mlen, &r), PQ_E_META);
    CHECK_EQ(detail_of(&r), (1u << 16) | META_CHK_BITS);
    meta[100] ^= 0xFF;
    CHECK_EQ(load_chunk(CMD_LOAD_META, (uint32_t)mlen, 0, meta, mlen, &r), PQ_E_CRC);
    util_put_u16(pl, 0xFFFF);
    CHECK_EQ(xfer(CMD_STATUS, pl, 2, &r), PQ_OK);
    CHECK_EQ(r.p[1], STATE_EMPTY); CHECK_EQ(util_get_u32(r.p + 7), 0);
}
