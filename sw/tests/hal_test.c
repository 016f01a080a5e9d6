/* hal_test.c - UART and time for the test builds: the UART is two in-memory buffers. The
 * register/stream half comes from platform/host/hal_backend.c (C reference backend). */
#include <string.h>
#include <time.h>
#include "hal.h"
#include "hal_test.h"

#define CAP (1u << 20)
static uint8_t in_buf[CAP], out_buf[CAP];
static size_t in_pos, in_len, out_len;

void test_uart_reset(void) { in_pos = in_len = out_len = 0; }

void test_uart_feed(const uint8_t *p, size_t n)
{
    if (in_pos == in_len) in_pos = in_len = 0;
    if (n > CAP - in_len) n = CAP - in_len;
    memcpy(in_buf + in_len, p, n);
    in_len += n;
}

size_t test_uart_take(uint8_t *dst, size_t cap)
{
    size_t n = out_len < cap ? out_len : cap;
    memcpy(dst, out_buf, n);
    memmove(out_buf, out_buf + n, out_len - n);
    out_len -= n;
    return n;
}

size_t test_uart_pending(void) { return out_len; }

int hal_uart_init(void) { return HAL_OK; }

int hal_uart_getc(uint32_t timeout_ms)
{
    (void)timeout_ms;
    if (in_pos < in_len) return in_buf[in_pos++];
    return HAL_CLOSED;
}

void hal_uart_write(const uint8_t *buf, size_t len)
{
    if (len > CAP - out_len) len = CAP - out_len; /* overflow: tests check sizes */
    memcpy(out_buf + out_len, buf, len);
    out_len += len;
}

uint32_t hal_time_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}
