/* hal_host.h - host-platform extras (not part of the portable HAL). */
#ifndef PQ_HAL_HOST_H
#define PQ_HAL_HOST_H
#include <stddef.h>
int host_pty_open(int exit_when_closed, char *path, size_t path_cap);
int host_stop_requested(void);
#endif
