/*
 * hal.h - the hardware abstraction layer the portable firmware core uses.
 *
 * Every platform (sw/platform/host, sw/platform/zynq, sw/platform/stub) implements
 * exactly these functions. The core never touches anything else that is
 * platform-specific: no libc I/O, no heap, no OS.
 *
 * Streams are DMA-like: the driver arms the result receiver (hal_stream_rx_start),
 * pushes whole word arrays to the weight or activation stream (hal_stream_tx, which
 * must keep draining results into the armed buffer while it waits - the kernel may
 * emit results while it still reads activations) and finally waits for the receiver
 * (hal_stream_rx_wait). Words are 32-bit, byte j of a sequence in bits
 * [8*(j%4), 8*(j%4)+8) of word j/4 (docs/HARDWARE.md section 3).
 */
#ifndef PQ_HAL_H
#define PQ_HAL_H

#include <stddef.h>
#include <stdint.h>

#define HAL_OK       0
#define HAL_TIMEOUT  (-1) /* nothing happened within the timeout */
#define HAL_CLOSED   (-2) /* the link/device is gone for good: the firmware should stop */
#define HAL_ERROR    (-3) /* DMA/bus error */

/* ---- UART (8N1 byte stream to the host) ---- */
int  hal_uart_init(void);
/* One received byte (0..255), HAL_TIMEOUT if none arrived within timeout_ms, or HAL_CLOSED. */
int  hal_uart_getc(uint32_t timeout_ms);
/* Blocking write of len bytes. */
void hal_uart_write(const uint8_t *buf, size_t len);

/* ---- accelerator registers (byte offset inside pq_accel's s_axi_control) ---- */
int      hal_accel_init(void);           /* HAL_OK when the accelerator is reachable */
uint32_t hal_reg_read(uint32_t off);
void     hal_reg_write(uint32_t off, uint32_t val);
/* HELLO accel_kind: 0 = C reference, 1 = RTL (simulated), 2 = HLS (simulated), 3 = hardware */
uint8_t  hal_accel_kind(void);

/* ---- streams (DMA-like) ---- */
#define HAL_STREAM_WGT 0
#define HAL_STREAM_ACT 1
/* Arm the res receiver for exactly n_words words into dst (4-byte aligned). */
int  hal_stream_rx_start(uint32_t *dst, uint32_t n_words);
/* Send n_words words to wgt or act; returns HAL_OK, HAL_TIMEOUT or HAL_ERROR. */
int  hal_stream_tx(int stream, const uint32_t *src, uint32_t n_words, uint32_t timeout_ms);
/* Wait until all armed words arrived: HAL_OK, HAL_TIMEOUT or HAL_ERROR. */
int  hal_stream_rx_wait(uint32_t timeout_ms);
/* Called by the driver inside busy-wait loops (register polling); a simulated
 * accelerator advances its clock here, real hardware does nothing. */
void hal_poll(void);

/* ---- time ---- */
/* Free-running cycle counter used for per-layer cycle counts. Host platform: accelerator
 * clock cycles of the backend (simulated for Verilated RTL, estimated by the C reference's
 * cycle model). Zynq: Cortex-A9 global timer ticks (CPU clock / 2). */
uint64_t hal_timer_cycles(void);
/* Monotonic milliseconds (wraps), for timeouts only. */
uint32_t hal_time_ms(void);

#endif /* PQ_HAL_H */
