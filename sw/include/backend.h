/*
 * backend.h - the accelerator backend seam of the HOST platform (sw/platform/host).
 *
 * The host HAL (sw/platform/host/hal_host.c) implements hal_reg_*, hal_stream_* and
 * hal_poll on top of these few primitives; the driver (sw/core/accel.c) does the rest.
 * Exactly one backend is linked into a host build:
 *   - sw/platform/host/backend_cref.c   C reference model of pq_accel (default, fast)
 *   - sw/platform/verilated/...         the Verilated RTL (owned by the deploy/host engineer),
 *                                        selected with `make -C sw host BACKEND=verilated`
 * A C++ backend must declare these functions extern "C".
 */
#ifndef PQ_BACKEND_H
#define PQ_BACKEND_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Create and reset the accelerator (ap_rst_n low for a few cycles). 0 = ok. */
int      backend_init(void);
/* Release everything (end of simulation, flush traces). */
void     backend_close(void);
/* HELLO accel_kind: 0 = C reference, 1 = RTL, 2 = HLS. */
uint8_t  backend_kind(void);
/* One AXI4-Lite read/write of s_axi_control at byte offset off (0x00..0x3C).
 * May advance the clock as many cycles as the bus transaction takes. */
uint32_t backend_reg_read(uint32_t off);
void     backend_reg_write(uint32_t off, uint32_t val);
/* Offer one word to the wgt (stream 0) or act (stream 1) AXI-Stream input.
 * Returns 1 if the word was taken (into the backend's input FIFO or the port), 0 if it
 * cannot be taken now: the caller then calls backend_step and retries. */
int      backend_push(int stream, uint32_t word);
/* Take one word from the res AXI-Stream output (the backend asserts TREADY while it
 * has room to hold results). Returns 1 and *word when one is available, 0 otherwise. */
int      backend_pop(uint32_t *word);
/* Advance the accelerator clock by `cycles` rising edges (moving FIFO words over the
 * TVALID/TREADY handshakes as the ports allow). */
void     backend_step(uint32_t cycles);
/* Accelerator clock cycles since backend_init (simulated, or the C reference's model). */
uint64_t backend_cycles(void);

#ifdef __cplusplus
}
#endif

#endif /* PQ_BACKEND_H */
