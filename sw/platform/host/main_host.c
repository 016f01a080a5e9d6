/* main_host.c - the virtual board: firmware core + host HAL + the linked accelerator backend.
 * Prints "PTY /dev/pts/N" (one line, flushed) and serves the protocol until SIGINT/SIGTERM
 * (or, with --exit-on-close, until the host closes the port after sending data). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "hal.h"
#include "hal_host.h"
#include "pq_accel.h"
#include "pq_fw.h"

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }
int host_stop_requested(void) { return stop != 0; }

int main(int argc, char **argv)
{
    char path[256];
    int i, exit_on_close = 0, quiet = 0;
    struct sigaction sa;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--exit-on-close")) exit_on_close = 1;
        else if (!strcmp(argv[i], "--quiet")) quiet = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: %s [--exit-on-close] [--quiet]\n"
                   "Virtual pyquant board: prints 'PTY <path>' and serves docs/PROTOCOL.md on it.\n", argv[0]);
            return 0;
        } else {
            fprintf(stderr, "pqfw-host: unknown option '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, 0);
    sigaction(SIGTERM, &sa, 0);
    signal(SIGPIPE, SIG_IGN);

    if (accel_init() != ACCEL_OK) { fprintf(stderr, "pqfw-host: accelerator backend failed to start\n"); return 1; }
    if (host_pty_open(exit_on_close, path, sizeof(path)) != 0) {
        fprintf(stderr, "pqfw-host: cannot create a pseudo-terminal\n");
        return 1;
    }
    proto_init();
    printf("PTY %s\n", path);
    fflush(stdout);
    if (!quiet)
        fprintf(stderr, "pqfw-host: serving on %s (accel_kind %u, meta_max %u, weights_max %u, act_max %u)\n",
                path, (unsigned)hal_accel_kind(), (unsigned)PQ_META_MAX, (unsigned)PQ_WEIGHTS_MAX,
                (unsigned)PQ_ACT_MAX);
    proto_serve();
    backend_close();
    if (!quiet) fprintf(stderr, "pqfw-host: %s\n", stop ? "stopped by signal" : "host closed the port");
    return 0;
}
