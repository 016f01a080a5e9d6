/*
 * pq_config.h - every compile-time limit of the firmware, in one place.
 * All buffers are static and sized from these values (no heap). Any value can be
 * overridden with -D on the compiler command line. HELLO reports the model limits.
 */
#ifndef PQ_CONFIG_H
#define PQ_CONFIG_H

/* firmware version (HELLO) */
#define PQ_FW_MAJOR 1
#define PQ_FW_MINOR 0
#define PQ_FW_PATCH 0

/* protocol */
#define PQ_PROTO_VERSION 1u
#define PQ_MAX_PAYLOAD   4096u          /* frame payload bytes (docs/PROTOCOL.md) */

/* model limits (reported by HELLO) */
#ifndef PQ_META_MAX
#define PQ_META_MAX      (64u * 1024u)  /* bytes of model.meta.bin */
#endif
#ifndef PQ_WEIGHTS_MAX
#define PQ_WEIGHTS_MAX   (2u * 1024u * 1024u) /* sum of all layer .bin sizes */
#endif
#ifndef PQ_ACT_MAX
#define PQ_ACT_MAX       (256u * 1024u) /* bytes of one activation buffer: the input
                                           (n_samples x in_size) and every intermediate
                                           feature map (n_samples x layer output) */
#endif
#ifndef PQ_MAX_LAYERS
#define PQ_MAX_LAYERS    64u
#endif

/* scheduler staging buffers (one accelerator call at a time) */
#ifndef PQ_XBUF_BYTES
#define PQ_XBUF_BYTES    (64u * 1024u)  /* X tile (im2col rows or dense samples) */
#endif
#ifndef PQ_RESBUF_BYTES
#define PQ_RESBUF_BYTES  (64u * 1024u)  /* Y tile */
#endif

/* accelerator capacities (must match the HDL parameters / hls config.h; docs/HARDWARE.md) */
#ifndef PQ_ACCEL_LANES
#define PQ_ACCEL_LANES      8u
#endif
#ifndef PQ_ACCEL_MAX_ROWS
#define PQ_ACCEL_MAX_ROWS   256u
#endif
#ifndef PQ_ACCEL_MAX_COLS
#define PQ_ACCEL_MAX_COLS   1024u
#endif
#ifndef PQ_ACCEL_WMEM_BYTES
#define PQ_ACCEL_WMEM_BYTES 32768u
#endif
/* weight stream staging: constants + packed rows of one row tile */
#define PQ_WSTAGE_BYTES  (8u * PQ_ACCEL_MAX_ROWS + PQ_ACCEL_WMEM_BYTES)

/* timeouts */
#ifndef PQ_ACCEL_TIMEOUT_MS
#define PQ_ACCEL_TIMEOUT_MS 60000u      /* one accelerator call (generous: simulated RTL) */
#endif
#ifndef PQ_RX_IDLE_MS
#define PQ_RX_IDLE_MS       500u        /* a partial frame idle this long is dropped */
#endif

#endif /* PQ_CONFIG_H */
