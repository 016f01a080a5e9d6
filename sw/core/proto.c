/* proto.c - the UART protocol engine (docs/PROTOCOL.md) and the board's model store:
 * COBS framing, CRC-32, duplicate-seq cache, NAK, and every command. Each length, offset,
 * size and index the host sends is checked before it is used. */
#include "hal.h"
#include "pq_accel.h"
#include "pq_fw.h"

/* ---- model store (static) ---- */
static uint8_t  meta_buf[PQ_META_MAX];
static uint8_t  weights[PQ_WEIGHTS_MAX];
static int8_t   input_buf[PQ_ACT_MAX];
static int8_t   output_buf[PQ_ACT_MAX];
static meta_model_t model;
static uint32_t meta_total, meta_rcvd;
static int      meta_ok;
static uint32_t layer_rcvd[PQ_MAX_LAYERS];
static uint32_t layer_crc[PQ_MAX_LAYERS];   /* running CRC-32 of the bytes held (per chunk, so
                                               the last chunk costs no whole-layer pass) */
static uint8_t  layer_ok[PQ_MAX_LAYERS];
static uint32_t input_n, input_total, input_rcvd;
static int      outputs_ok;
static uint32_t run_cycles[PQ_MAX_LAYERS];
static uint8_t  last_error;
static uint32_t last_detail;

/* ---- framing ---- */
static uint8_t  rx_enc[PROTO_ENC_MAX];
static size_t   rx_len;
static int      rx_overflow;
static uint8_t  rx_frame[PROTO_FRAME_MAX];
static uint8_t  tx_frame[PROTO_FRAME_MAX];      /* last response (the duplicate cache) */
static size_t   tx_len;
static uint8_t  tx_enc[PROTO_ENC_MAX + 1u];
static int      cache_valid;
static uint16_t cache_seq;
static uint8_t  cache_cmd;
static uint32_t cache_crc;

static void send_raw(const uint8_t *frame, size_t n)
{
    size_t e = cobs_encode(frame, n, tx_enc, sizeof(tx_enc) - 1u);
    if (e == 0u) return; /* cannot happen: buffers are sized for the largest frame */
    tx_enc[e++] = 0u;
    hal_uart_write(tx_enc, e);
}

static size_t build_frame(uint8_t *f, uint8_t cmd, uint16_t seq, const uint8_t *payload, size_t len)
{
    f[0] = (uint8_t)PQ_PROTO_VERSION;
    f[1] = cmd;
    util_put_u16(f + 2, seq);
    util_put_u16(f + 4, (uint16_t)len);
    if (payload != f + PROTO_HDR && len) util_copy(f + PROTO_HDR, payload, len);
    util_put_u32(f + PROTO_HDR + len, crc32_compute(f, PROTO_HDR + len));
    return PROTO_HDR + len + 4u;
}

static void send_nak(uint16_t seq, uint8_t reason)
{
    uint8_t f[PROTO_OVERHEAD + 1u];
    size_t n = build_frame(f, CMD_NAK, seq, &reason, 1u);
    send_raw(f, n);
}

/* ---- model state ---- */
static void forget_outputs(void) { outputs_ok = 0; }
static void forget_input(void) { input_n = input_total = input_rcvd = 0; forget_outputs(); }
static void forget_model(void)
{
    uint32_t i;
    meta_total = meta_rcvd = 0;
    meta_ok = 0;
    for (i = 0; i < PQ_MAX_LAYERS; i++) { layer_rcvd[i] = 0; layer_ok[i] = 0; layer_crc[i] = 0; }
    forget_input();
}

static uint32_t layers_complete(void)
{
    uint32_t i, n = 0;
    if (!meta_ok) return 0;
    for (i = 0; i < model.n_layers; i++) n += layer_ok[i];
    return n;
}

uint8_t proto_state(void)
{
    if (!meta_ok) return STATE_EMPTY;
    if (layers_complete() != model.n_layers) return STATE_META;
    if (input_n == 0u || input_rcvd != input_total) return STATE_MODEL;
    return outputs_ok ? STATE_DONE : STATE_READY;
}

void proto_init(void)
{
    forget_model();
    rx_len = 0; rx_overflow = 0;
    cache_valid = 0;
    last_error = 0; last_detail = 0;
}

/* Accept a chunk [offset, offset+n) of an object of `total` bytes of which `*rcvd` are held. */
static int chunk_accept(uint8_t *buf, uint32_t total, uint32_t *rcvd, uint32_t offset,
                        const uint8_t *data, uint32_t n, uint32_t *detail)
{
    if (offset > *rcvd) { *detail = *rcvd; return PQ_E_OFFSET; }
    if (n > total || offset > total - n) { *detail = total; return PQ_E_OFFSET; }
    if (offset + n > *rcvd) {
        uint32_t skip = *rcvd - offset;
        util_copy(buf + *rcvd, data + skip, n - skip);
        *rcvd = offset + n;
    }
    return PQ_OK;
}

/* ---- commands: each returns a status and fills out[] (after the status byte) ---- */
static int cmd_hello(size_t len, uint8_t *o, size_t *olen)
{
    if (len != 0u) return PQ_E_LEN;
    o[0] = 'P'; o[1] = 'Q'; o[2] = 'F'; o[3] = 'W';
    o[4] = (uint8_t)PQ_PROTO_VERSION; o[5] = PQ_FW_MAJOR; o[6] = PQ_FW_MINOR; o[7] = PQ_FW_PATCH;
    util_put_u16(o + 8, (uint16_t)PQ_MAX_PAYLOAD);
    util_put_u32(o + 10, PQ_META_MAX);
    util_put_u32(o + 14, PQ_WEIGHTS_MAX);
    util_put_u32(o + 18, PQ_ACT_MAX);
    util_put_u16(o + 22, (uint16_t)PQ_ACCEL_LANES);
    util_put_u16(o + 24, (uint16_t)PQ_ACCEL_MAX_ROWS);
    util_put_u16(o + 26, (uint16_t)PQ_ACCEL_MAX_COLS);
    util_put_u32(o + 28, PQ_ACCEL_WMEM_BYTES);
    o[32] = hal_accel_kind();
    o[33] = o[34] = o[35] = 0;
    *olen = 36;
    return PQ_OK;
}

static int cmd_load_meta(const uint8_t *p, size_t len, uint8_t *o, size_t *olen, uint32_t *detail)
{
    uint32_t total, offset, n;
    int rc;
    if (len < 8u) return PQ_E_LEN;
    total = util_get_u32(p);
    offset = util_get_u32(p + 4);
    n = (uint32_t)len - 8u;
    if (total > PQ_META_MAX) { *detail = PQ_META_MAX; return PQ_E_SIZE; }
    if (total < META_HEADER_SIZE + 4u) { *detail = META_CHK_SHORT; return PQ_E_META; }
    if (offset == 0u) { forget_model(); meta_total = total; }   /* offset 0 starts a new model */
    else if (total != meta_total) { *detail = meta_total; return PQ_E_SIZE; }
    rc = chunk_accept(meta_buf, meta_total, &meta_rcvd, offset, p + 8, n, detail);
    if (rc != PQ_OK) return rc;
    if (meta_rcvd == meta_total && !meta_ok) {
        rc = meta_parse(meta_buf, meta_total, &model, detail);
        if (rc != PQ_OK) { forget_model(); return rc; }
        meta_ok = 1;
    }
    util_put_u32(o, meta_rcvd);
    *olen = 4;
    return PQ_OK;
}

static int cmd_load_layer(const uint8_t *p, size_t len, uint8_t *o, size_t *olen, uint32_t *detail)
{
    uint32_t idx, offset, n, held;
    const meta_layer_t *L;
    int rc;
    if (len < 6u) return PQ_E_LEN;
    if (!meta_ok) return PQ_E_STATE;
    idx = util_get_u16(p);
    offset = util_get_u32(p + 2);
    n = (uint32_t)len - 6u;
    if (idx >= model.n_layers) { *detail = model.n_layers; return PQ_E_LAYER; }
    L = &model.layers[idx];
    if (offset == 0u) { layer_rcvd[idx] = 0; layer_ok[idx] = 0; layer_crc[idx] = 0; forget_outputs(); }
    held = layer_rcvd[idx];
    rc = chunk_accept(weights + L->wofs, L->bin_size, &layer_rcvd[idx], offset, p + 6, n, detail);
    if (rc != PQ_OK) return rc;
    /* the CRC follows the contiguous bytes as they arrive: bounded work per frame, so the
       board keeps up with back-to-back (windowed) frames */
    if (layer_rcvd[idx] > held)
        layer_crc[idx] = crc32_update(layer_crc[idx], weights + L->wofs + held, layer_rcvd[idx] - held);
    if (layer_rcvd[idx] == L->bin_size && !layer_ok[idx]) {
        uint32_t crc = layer_crc[idx];
        if (crc != L->bin_crc) { layer_rcvd[idx] = 0; layer_crc[idx] = 0; *detail = crc; return PQ_E_CRC; }
        layer_ok[idx] = 1;
    }
    util_put_u32(o, layer_rcvd[idx]);
    *olen = 4;
    return PQ_OK;
}

static int cmd_load_input(const uint8_t *p, size_t len, uint8_t *o, size_t *olen, uint32_t *detail)
{
    uint32_t ns, offset, n;
    int rc;
    if (len < 6u) return PQ_E_LEN;
    if (!meta_ok) return PQ_E_STATE;
    ns = util_get_u16(p);
    offset = util_get_u32(p + 2);
    n = (uint32_t)len - 6u;
    if (ns == 0u) { *detail = 0; return PQ_E_SIZE; }
    if ((uint64_t)ns * model.max_size > PQ_ACT_MAX) { *detail = PQ_ACT_MAX / model.max_size; return PQ_E_SIZE; }
    if (offset == 0u) { forget_input(); input_n = ns; input_total = ns * model.in_size; }
    else if (ns != input_n) { *detail = input_n; return PQ_E_SIZE; }
    forget_outputs();
    rc = chunk_accept((uint8_t *)input_buf, input_total, &input_rcvd, offset, p + 6, n, detail);
    if (rc != PQ_OK) return rc;
    util_put_u32(o, input_rcvd);
    *olen = 4;
    return PQ_OK;
}

static int cmd_run(size_t len, uint8_t *o, size_t *olen, uint32_t *detail)
{
    uint32_t i;
    uint64_t total = 0;
    int rc;
    uint8_t st = proto_state();
    if (len != 0u) return PQ_E_LEN;
    if (st < STATE_READY) { *detail = st; return PQ_E_STATE; }
    forget_outputs();
    rc = sched_run(&model, weights, input_buf, input_n, output_buf, run_cycles, detail);
    if (rc != PQ_OK) return rc;
    outputs_ok = 1;
    for (i = 0; i < model.n_layers; i++) {
        total += run_cycles[i];
        util_put_u32(o + 6 + 4 * i, run_cycles[i]);
    }
    util_put_u32(o, total > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)total);
    util_put_u16(o + 4, (uint16_t)model.n_layers);
    *olen = 6u + 4u * model.n_layers;
    return PQ_OK;
}

static int cmd_read_output(const uint8_t *p, size_t len, uint8_t *o, size_t *olen, uint32_t *detail)
{
    uint32_t offset, n, total;
    if (len != 6u) return PQ_E_LEN;
    offset = util_get_u32(p);
    n = util_get_u16(p + 4);
    if (n > PQ_MAX_PAYLOAD - 1u) { *detail = PQ_MAX_PAYLOAD - 1u; return PQ_E_LEN; }
    if (proto_state() != STATE_DONE) { *detail = proto_state(); return PQ_E_STATE; }
    total = input_n * model.out_size;
    if (offset > total || n > total - offset) { *detail = total; return PQ_E_OFFSET; }
    util_copy(o, output_buf + offset, n);
    *olen = n;
    return PQ_OK;
}

static int cmd_status(const uint8_t *p, size_t len, uint8_t *o, size_t *olen, uint32_t *detail)
{
    uint32_t idx, lb = 0;
    if (len != 2u) return PQ_E_LEN;
    idx = util_get_u16(p);
    if (idx != 0xFFFFu) {
        if (!meta_ok || idx >= model.n_layers) { *detail = meta_ok ? model.n_layers : 0u; return PQ_E_LAYER; }
        lb = layer_rcvd[idx];
    }
    o[0] = proto_state();
    o[1] = last_error;
    util_put_u32(o + 2, last_detail);
    util_put_u32(o + 6, meta_rcvd);
    util_put_u32(o + 10, lb);
    util_put_u16(o + 14, (uint16_t)layers_complete());
    *olen = 16;
    return PQ_OK;
}

void proto_handle_frame(const uint8_t *f, size_t n)
{
    uint16_t seq, len;
    uint8_t cmd;
    uint32_t crc, detail = 0;
    size_t olen = 0;
    uint8_t *out = tx_frame + PROTO_HDR;   /* response payload is built in place */
    int st;

    if (n < PROTO_OVERHEAD) { send_nak(n >= 4u ? util_get_u16(f + 2) : 0xFFFFu, NAK_SHORT); return; }
    seq = util_get_u16(f + 2);
    len = util_get_u16(f + 4);
    if ((size_t)len + PROTO_OVERHEAD != n) { send_nak(seq, NAK_LENGTH); return; }
    crc = util_get_u32(f + PROTO_HDR + len);
    if (crc32_compute(f, PROTO_HDR + len) != crc) { send_nak(seq, NAK_CRC); return; }
    cmd = f[1];

    /* a retransmission of the last executed request: resend the cached response */
    if (cache_valid && seq == cache_seq && cmd == cache_cmd && crc == cache_crc) {
        send_raw(tx_frame, tx_len);
        return;
    }

    if (f[0] != PQ_PROTO_VERSION) { st = PQ_E_VERSION; detail = PQ_PROTO_VERSION; }
    else {
        const uint8_t *p = f + PROTO_HDR;
        uint8_t *o = out + 1;
        switch (cmd) {
        case CMD_HELLO:       st = cmd_hello(len, o, &olen); break;
        case CMD_LOAD_META:   st = cmd_load_meta(p, len, o, &olen, &detail); break;
        case CMD_LOAD_LAYER:  st = cmd_load_layer(p, len, o, &olen, &detail); break;
        case CMD_LOAD_INPUT:  st = cmd_load_input(p, len, o, &olen, &detail); break;
        case CMD_RUN:         st = cmd_run(len, o, &olen, &detail); break;
        case CMD_READ_OUTPUT: st = cmd_read_output(p, len, o, &olen, &detail); break;
        case CMD_STATUS:      st = cmd_status(p, len, o, &olen, &detail); break;
        case CMD_RESET:
            if (len != 0u) { st = PQ_E_LEN; break; }
            forget_model(); last_error = 0; last_detail = 0; st = PQ_OK; break;
        default:              st = PQ_E_CMD; detail = cmd; break;
        }
    }
    out[0] = (uint8_t)st;
    if (st != PQ_OK) {
        util_put_u32(out + 1, detail);
        olen = 4;
        last_error = (uint8_t)st;
        last_detail = detail;
    }
    tx_len = build_frame(tx_frame, (uint8_t)(cmd | 0x80u), seq, out, olen + 1u);
    cache_valid = 1; cache_seq = seq; cache_cmd = cmd; cache_crc = crc;
    send_raw(tx_frame, tx_len);
}

static void frame_end(void)
{
    long n;
    if (rx_overflow) {
        rx_overflow = 0; rx_len = 0;
        send_nak(0xFFFFu, NAK_OVERFLOW);
        return;
    }
    if (rx_len == 0u) return;  /* empty frame (back-to-back delimiters): ignore */
    n = cobs_decode(rx_enc, rx_len, rx_frame, sizeof(rx_frame));
    rx_len = 0;
    if (n < 0) { send_nak(0xFFFFu, NAK_COBS); return; }
    proto_handle_frame(rx_frame, (size_t)n);
}

void proto_rx_byte(uint8_t b)
{
    if (b == 0u) { frame_end(); return; }
    if (rx_len < sizeof(rx_enc)) rx_enc[rx_len++] = b;
    else rx_overflow = 1;
}

void proto_rx_idle(void)
{
    rx_len = 0;
    rx_overflow = 0;
}

void proto_serve(void)
{
    for (;;) {
        int c = hal_uart_getc(PQ_RX_IDLE_MS);
        if (c == HAL_CLOSED) return;
        if (c == HAL_TIMEOUT) { if (rx_len || rx_overflow) proto_rx_idle(); continue; }
        proto_rx_byte((uint8_t)c);
    }
}
