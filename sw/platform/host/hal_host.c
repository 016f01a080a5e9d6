/* hal_host.c - UART and time of the host platform: the UART is the master side of a
 * pseudo-terminal (posix_openpt); the host tool opens the slave (/dev/pts/N). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "hal.h"
#include "hal_host.h"

static int master_fd = -1;
static int exit_on_close;
static int seen_data;
static uint8_t rbuf[8192];
static size_t rpos, rlen;

uint32_t hal_time_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

int host_pty_open(int exit_when_closed, char *path, size_t path_cap)
{
    struct termios t;
    const char *name;
    int sfd;
    exit_on_close = exit_when_closed;
    master_fd = posix_openpt(O_RDWR | O_NOCTTY);
    if (master_fd < 0 || grantpt(master_fd) != 0 || unlockpt(master_fd) != 0) return -1;
    name = ptsname(master_fd);
    if (!name || strlen(name) + 1u > path_cap) return -1;
    strcpy(path, name);
    /* put the line discipline in raw mode once, so bytes pass unchanged even before the
     * host tool configures the port (pyserial sets raw mode again on open) */
    sfd = open(name, O_RDWR | O_NOCTTY);
    if (sfd >= 0) {
        if (tcgetattr(sfd, &t) == 0) {
            cfmakeraw(&t);
            tcsetattr(sfd, TCSANOW, &t);
        }
        close(sfd);
    }
    return 0;
}

int hal_uart_init(void) { return master_fd >= 0 ? HAL_OK : HAL_ERROR; }

int hal_uart_getc(uint32_t timeout_ms)
{
    uint32_t t0 = hal_time_ms();
    for (;;) {
        struct pollfd p;
        int r;
        uint32_t el;
        ssize_t n;
        if (rpos < rlen) return rbuf[rpos++];
        if (host_stop_requested()) return HAL_CLOSED;
        el = hal_time_ms() - t0;
        if (el >= timeout_ms) return HAL_TIMEOUT;
        p.fd = master_fd; p.events = POLLIN; p.revents = 0;
        r = poll(&p, 1, (int)(timeout_ms - el < 50u ? timeout_ms - el : 50u));
        if (r < 0) { if (errno == EINTR) continue; return HAL_CLOSED; }
        if (r == 0) continue;
        if (p.revents & POLLIN) {
            n = read(master_fd, rbuf, sizeof(rbuf));
            if (n > 0) { rpos = 0; rlen = (size_t)n; seen_data = 1; continue; }
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        }
        /* no slave open (host closed the port): EIO / POLLHUP */
        if (exit_on_close && seen_data) return HAL_CLOSED;
        { struct timespec ts = {0, 10 * 1000 * 1000}; nanosleep(&ts, 0); }
    }
}

void hal_uart_write(const uint8_t *buf, size_t len)
{
    while (len) {
        ssize_t n = write(master_fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) { struct pollfd p = {master_fd, POLLOUT, 0}; poll(&p, 1, 100); continue; }
            return; /* host gone: the response is lost, the host will retry */
        }
        buf += n; len -= (size_t)n;
    }
}
