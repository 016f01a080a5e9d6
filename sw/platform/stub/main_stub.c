/* main_stub.c - bare-metal entry of the freestanding cross build: stack, .bss, then the
 * protocol loop. Also the four memory functions GCC may emit calls to (no C library linked). */
#include "hal.h"
#include "pq_accel.h"
#include "pq_fw.h"

void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int   memcmp(const void *a, const void *b, size_t n);
int   main(void);
void  _start(void);
void  pq_cstart(void);

void *memcpy(void *d, const void *s, size_t n)
{
    uint8_t *dp = (uint8_t *)d; const uint8_t *sp = (const uint8_t *)s;
    while (n--) *dp++ = *sp++;
    return d;
}

void *memmove(void *d, const void *s, size_t n)
{
    uint8_t *dp = (uint8_t *)d; const uint8_t *sp = (const uint8_t *)s;
    if (dp < sp) while (n--) *dp++ = *sp++;
    else { dp += n; sp += n; while (n--) *--dp = *--sp; }
    return d;
}

void *memset(void *d, int c, size_t n)
{
    uint8_t *dp = (uint8_t *)d;
    while (n--) *dp++ = (uint8_t)c;
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *x = (const uint8_t *)a, *y = (const uint8_t *)b;
    for (; n; n--, x++, y++) if (*x != *y) return *x < *y ? -1 : 1;
    return 0;
}

extern uint32_t __bss_start__, __bss_end__, __stack_top__;

__attribute__((naked, section(".text.start"))) void _start(void)
{
    __asm__ volatile("ldr sp, =__stack_top__\n\tbl pq_cstart\n1:\tb 1b\n");
}

void pq_cstart(void)
{
    uint32_t *p;
    for (p = &__bss_start__; p < &__bss_end__; p++) *p = 0u;
    (void)main();
}

int main(void)
{
    hal_uart_init();
    (void)accel_init();
    proto_init();
    for (;;) proto_serve();
}
