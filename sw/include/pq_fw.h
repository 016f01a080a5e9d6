/*
 * pq_fw.h - the portable firmware core: utilities, CRC-32, COBS, metadata parser,
 * layer scheduler and protocol engine. Freestanding C99: only <stdint.h>/<stddef.h>.
 */
#ifndef PQ_FW_H
#define PQ_FW_H

#include <stddef.h>
#include <stdint.h>
#include "pq_config.h"

/* ---------------------------------------------------------------- status codes (PROTOCOL.md) */
#define PQ_OK        0
#define PQ_E_VERSION 1
#define PQ_E_CMD     2
#define PQ_E_LEN     3
#define PQ_E_OFFSET  4
#define PQ_E_SIZE    5
#define PQ_E_META    6
#define PQ_E_CRC     7
#define PQ_E_STATE   8
#define PQ_E_LAYER   9
#define PQ_E_ACCEL   10

/* ---------------------------------------------------------------- util (no libc) */
void     util_copy(void *dst, const void *src, size_t n);
void     util_fill(void *dst, uint8_t v, size_t n);
int      util_equal(const void *a, const void *b, size_t n);
uint16_t util_get_u16(const uint8_t *p);
uint32_t util_get_u32(const uint8_t *p);
void     util_put_u16(uint8_t *p, uint16_t v);
void     util_put_u32(uint8_t *p, uint32_t v);

/* ---------------------------------------------------------------- CRC-32 (zlib/IEEE) */
uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n); /* start with crc = 0 */
uint32_t crc32_compute(const uint8_t *p, size_t n);

/* ---------------------------------------------------------------- COBS */
/* Worst-case encoded size of n bytes (no delimiter). */
#define COBS_MAX_ENCODED(n) ((n) + (n) / 254u + 1u)
/* Encode n bytes into dst (capacity cap). Returns the encoded length, or 0 if it does not fit. */
size_t cobs_encode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap);
/* Decode n COBS bytes (no delimiter, no zero bytes) into dst. Returns the decoded length or
 * -1 on malformed input (zero byte, code running past the end, output overflow). */
long   cobs_decode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap);

/* ---------------------------------------------------------------- metadata (FORMAT.md section 5) */
#define META_HEADER_SIZE 64u
#define META_REC_SIZE    128u
#define META_OP_DENSE    1u
#define META_OP_CONV     2u
#define META_POOL_NONE   0u
#define META_POOL_MAX    1u
#define META_POOL_AVG    2u

typedef struct {
    char     name[32];
    uint8_t  op, bits, flags, pool;
    uint32_t rows, cols, bin_size, bin_crc, params_offset;
    uint32_t in_h, in_w, in_c, kh, kw, stride_h, stride_w, pad_t, pad_l, pad_b, pad_r;
    uint32_t out_h, out_w, pool_k, pool_s;
    /* derived by meta_parse */
    uint32_t row_bytes;   /* packed bytes per row */
    uint32_t wofs;        /* offset of this layer's .bin in the weights buffer */
    uint32_t ph, pw;      /* output map after pooling (== out_h/out_w without pooling) */
    uint32_t in_size;     /* int8 inputs per sample */
    uint32_t raw_size;    /* out_h*out_w*rows: outputs per sample before pooling */
    uint32_t out_size;    /* ph*pw*rows: outputs per sample after pooling */
} meta_layer_t;

typedef struct {
    uint32_t n_layers, in_h, in_w, in_c, flags;
    uint32_t file_size, params_offset, params_size, out_size, total_weight_bytes;
    uint32_t in_size;     /* in_h*in_w*in_c */
    uint32_t max_size;    /* largest per-sample buffer any layer needs (input, raw, pooled) */
    const uint8_t *params;/* start of the meta file (params offsets are from file start) */
    meta_layer_t layers[PQ_MAX_LAYERS];
} meta_model_t;

/* meta_parse checks (detail of E_META = (layer+1) << 16 | check; layer part 0 = header). */
enum {
    META_CHK_SHORT = 1, META_CHK_MAGIC, META_CHK_VERSION, META_CHK_HEADER_SIZE, META_CHK_REC_SIZE,
    META_CHK_N_LAYERS, META_CHK_FILE_SIZE, META_CHK_RECORDS, META_CHK_PARAMS_REGION,
    META_CHK_INPUT_DIMS, META_CHK_NOT_EXECUTABLE, META_CHK_TOTAL_WEIGHTS, META_CHK_OUT_SIZE,
    META_CHK_RESERVED,
    META_CHK_OP = 20, META_CHK_BITS, META_CHK_DIMS, META_CHK_BIN_SIZE, META_CHK_PARAMS_OFFSET,
    META_CHK_CONSTANTS, META_CHK_DENSE_SHAPE, META_CHK_CONV_SHAPE, META_CHK_POOL, META_CHK_CHAIN,
    META_CHK_CAPACITY
};

/* Parse and validate model.meta.bin held in buf[0..len). Returns PQ_OK, PQ_E_META (detail:
 * which check), PQ_E_CRC (detail: computed CRC) or PQ_E_SIZE (detail: the limit exceeded).
 * On success m->params points into buf, which must stay alive. */
int meta_parse(const uint8_t *buf, uint32_t len, meta_model_t *m, uint32_t *detail);

/* ---------------------------------------------------------------- scheduler */
/* Run every layer on n_samples inputs (int8, n_samples*in_size bytes) into out
 * (n_samples*out_size bytes). cycles[l] = hal_timer_cycles() spent in layer l.
 * Returns PQ_OK, PQ_E_SIZE (detail: layer) or PQ_E_ACCEL (detail: layer << 8 | accel error). */
int sched_run(const meta_model_t *m, const uint8_t *weights, const int8_t *input,
              uint32_t n_samples, int8_t *out, uint32_t *cycles, uint32_t *detail);
/* Operations outside the accelerator (exposed for tests). */
void sched_im2col_rows(const meta_layer_t *L, const int8_t *src, uint32_t p0, uint32_t np, int8_t *dst);
void sched_pool(const meta_layer_t *L, const int8_t *raw, int8_t *dst);

/* ---------------------------------------------------------------- protocol engine */
#define PROTO_HDR      6u
#define PROTO_OVERHEAD 10u
#define PROTO_FRAME_MAX (PROTO_OVERHEAD + PQ_MAX_PAYLOAD)
#define PROTO_ENC_MAX  COBS_MAX_ENCODED(PROTO_FRAME_MAX)

#define CMD_HELLO       0x01u
#define CMD_LOAD_META   0x02u
#define CMD_LOAD_LAYER  0x03u
#define CMD_LOAD_INPUT  0x04u
#define CMD_RUN         0x05u
#define CMD_READ_OUTPUT 0x06u
#define CMD_STATUS      0x07u
#define CMD_RESET       0x08u
#define CMD_NAK         0x7Fu

/* NAK reasons (payload u8) */
#define NAK_COBS     1  /* COBS decoding failed */
#define NAK_SHORT    2  /* fewer than 10 bytes */
#define NAK_LENGTH   3  /* len field does not match the frame */
#define NAK_CRC      4  /* CRC-32 mismatch */
#define NAK_OVERFLOW 5  /* frame longer than the receive buffer */

/* STATUS states */
#define STATE_EMPTY 0  /* no (complete) metadata */
#define STATE_META  1  /* metadata parsed, some layers missing */
#define STATE_MODEL 2  /* all layers loaded and CRC-checked, no complete input */
#define STATE_READY 3  /* model + complete input: RUN allowed */
#define STATE_DONE  4  /* outputs of the current input valid: READ_OUTPUT allowed */

void proto_init(void);                 /* forget everything (power-on state) */
void proto_rx_byte(uint8_t b);         /* feed one received byte (answers via hal_uart_write) */
void proto_rx_idle(void);              /* call when the line was idle PQ_RX_IDLE_MS: drops a partial frame */
/* Serve the UART: read bytes until the link closes. Returns when hal_uart_getc says HAL_CLOSED. */
void proto_serve(void);
/* Process one decoded raw frame (exposed for tests/fuzzing); the response is written out. */
void proto_handle_frame(const uint8_t *frame, size_t n);
uint8_t proto_state(void);

#endif /* PQ_FW_H */
