/* hal_stub.c - minimal bare-metal HAL used by the freestanding cross build (`make fw-cross`).
 * Polled MMIO only (Zynq-7000 addresses): UART0 (Cadence UART at 0xE0000000), pq_accel's
 * s_axi_control at PQ_ACCEL_BASE, the three streams through a Xilinx AXI4-Stream FIFO
 * (axi_fifo_mm_s) per direction at PQ_FIFO_*_BASE, and the Cortex-A9 global timer. It proves the
 * core needs nothing hosted; the complete board port with XAxiDma is sw/platform/zynq/. */
#include "hal.h"

#ifndef PQ_ACCEL_BASE
#define PQ_ACCEL_BASE    0x43C00000u
#endif
#ifndef PQ_FIFO_WGT_BASE
#define PQ_FIFO_WGT_BASE 0x43C10000u
#endif
#ifndef PQ_FIFO_ACT_BASE
#define PQ_FIFO_ACT_BASE 0x43C20000u
#endif
#ifndef PQ_FIFO_RES_BASE
#define PQ_FIFO_RES_BASE 0x43C30000u
#endif
#define UART0_BASE   0xE0000000u
#define UART_SR      0x2Cu
#define UART_FIFO    0x30u
#define UART_SR_RXEMPTY 0x02u
#define UART_SR_TXFULL  0x10u
#define GTIMER_BASE  0xF8F00200u
#define CPU_HZ       666666687u
/* axi_fifo_mm_s registers */
#define FIFO_TDFV 0x0Cu  /* transmit vacancy (words) */
#define FIFO_TDFD 0x10u  /* transmit data */
#define FIFO_TLR  0x14u  /* transmit length (bytes): starts the packet */
#define FIFO_RDFO 0x1Cu  /* receive occupancy (words) */
#define FIFO_RDFD 0x20u  /* receive data */
#define FIFO_RLR  0x24u  /* receive length */

#define REG(a) (*(volatile uint32_t *)(uintptr_t)(a))

static uint32_t *rx_dst;
static uint32_t rx_want, rx_got;

uint64_t hal_timer_cycles(void)
{
    uint32_t hi, lo;
    do { hi = REG(GTIMER_BASE + 4u); lo = REG(GTIMER_BASE); } while (hi != REG(GTIMER_BASE + 4u));
    return ((uint64_t)hi << 32) | lo;
}

uint32_t hal_time_ms(void) { return (uint32_t)(hal_timer_cycles() / (CPU_HZ / 2u / 1000u)); }

int hal_uart_init(void) { REG(GTIMER_BASE + 8u) = 1u; return HAL_OK; }

int hal_uart_getc(uint32_t timeout_ms)
{
    uint32_t t0 = hal_time_ms();
    while (REG(UART0_BASE + UART_SR) & UART_SR_RXEMPTY)
        if ((uint32_t)(hal_time_ms() - t0) >= timeout_ms) return HAL_TIMEOUT;
    return (int)(REG(UART0_BASE + UART_FIFO) & 0xFFu);
}

void hal_uart_write(const uint8_t *buf, size_t len)
{
    while (len--) {
        while (REG(UART0_BASE + UART_SR) & UART_SR_TXFULL) {}
        REG(UART0_BASE + UART_FIFO) = *buf++;
    }
}

int hal_accel_init(void) { return HAL_OK; }
uint8_t hal_accel_kind(void) { return 3u; }
uint32_t hal_reg_read(uint32_t off) { return REG(PQ_ACCEL_BASE + off); }
void hal_reg_write(uint32_t off, uint32_t val) { REG(PQ_ACCEL_BASE + off) = val; }

static void drain(void)
{
    while (rx_got < rx_want && REG(PQ_FIFO_RES_BASE + FIFO_RDFO) != 0u) {
        if (REG(PQ_FIFO_RES_BASE + FIFO_RDFO) && rx_got == 0u) (void)REG(PQ_FIFO_RES_BASE + FIFO_RLR);
        rx_dst[rx_got++] = REG(PQ_FIFO_RES_BASE + FIFO_RDFD);
    }
}

void hal_poll(void) { drain(); }

int hal_stream_rx_start(uint32_t *dst, uint32_t n_words)
{
    rx_dst = dst; rx_want = n_words; rx_got = 0;
    return HAL_OK;
}

int hal_stream_tx(int stream, const uint32_t *src, uint32_t n_words, uint32_t timeout_ms)
{
    uint32_t base = stream == HAL_STREAM_WGT ? PQ_FIFO_WGT_BASE : PQ_FIFO_ACT_BASE, i = 0, t0 = hal_time_ms();
    while (i < n_words) {
        uint32_t room = REG(base + FIFO_TDFV), chunk = 0;
        while (room-- && i < n_words) { REG(base + FIFO_TDFD) = src[i++]; chunk++; }
        if (chunk) REG(base + FIFO_TLR) = chunk * 4u;
        drain();
        if ((uint32_t)(hal_time_ms() - t0) > timeout_ms) return HAL_TIMEOUT;
    }
    return HAL_OK;
}

int hal_stream_rx_wait(uint32_t timeout_ms)
{
    uint32_t t0 = hal_time_ms();
    for (;;) {
        drain();
        if (rx_got >= rx_want) return HAL_OK;
        if ((uint32_t)(hal_time_ms() - t0) > timeout_ms) return HAL_TIMEOUT;
    }
}
