/* hal_test.h - in-memory UART of the test HAL (unit tests, fuzzers, the ctypes library). */
#ifndef PQ_HAL_TEST_H
#define PQ_HAL_TEST_H
#include <stddef.h>
#include <stdint.h>
void   test_uart_reset(void);
void   test_uart_feed(const uint8_t *p, size_t n);   /* bytes hal_uart_getc will return */
size_t test_uart_take(uint8_t *dst, size_t cap);     /* bytes written by the firmware (then cleared) */
size_t test_uart_pending(void);
#endif
