/* hal_backend.c - the register/stream/timer half of the host HAL, on top of backend.h.
 * Shared by the host firmware, the unit tests and the fuzzers. */
#include "backend.h"
#include "hal.h"

static uint32_t *rx_dst;
static uint32_t rx_want, rx_got;

static void drain(void)
{
    uint32_t w;
    while (rx_got < rx_want && backend_pop(&w)) rx_dst[rx_got++] = w;
}

int hal_accel_init(void) { return backend_init() == 0 ? HAL_OK : HAL_ERROR; }
uint8_t hal_accel_kind(void) { return backend_kind(); }
uint32_t hal_reg_read(uint32_t off) { return backend_reg_read(off); }
void hal_reg_write(uint32_t off, uint32_t val) { backend_reg_write(off, val); }
void hal_poll(void) { drain(); backend_step(8u); }
uint64_t hal_timer_cycles(void) { return backend_cycles(); }

int hal_stream_rx_start(uint32_t *dst, uint32_t n_words)
{
    rx_dst = dst; rx_want = n_words; rx_got = 0;
    return HAL_OK;
}

int hal_stream_tx(int stream, const uint32_t *src, uint32_t n_words, uint32_t timeout_ms)
{
    uint32_t i = 0, spins = 0, t0 = hal_time_ms();
    while (i < n_words) {
        if (backend_push(stream, src[i])) { i++; continue; }
        drain();
        backend_step(1u);
        if ((++spins & 1023u) == 0u && (uint32_t)(hal_time_ms() - t0) > timeout_ms) return HAL_TIMEOUT;
    }
    drain();
    return HAL_OK;
}

int hal_stream_rx_wait(uint32_t timeout_ms)
{
    uint32_t spins = 0, t0 = hal_time_ms();
    for (;;) {
        drain();
        if (rx_got >= rx_want) return HAL_OK;
        backend_step(1u);
        if ((++spins & 1023u) == 0u && (uint32_t)(hal_time_ms() - t0) > timeout_ms) return HAL_TIMEOUT;
    }
}
