/* qos_darwin.c -- XNU has no socket priority an application may set for
 * the link and no pacing option: marking (posix/qos.c) and mpoint's own
 * token bucket are what a flowspec gets on macOS. */
#include "qos_os.h"

unsigned int mp__os_qos_supported(void)
{
    return 0;
}

int mp__os_qos_apply(int fd, const mp_qos_kernel_t *k)
{
    (void)fd;
    (void)k;
    return 0;
}

long long mp__os_rcvbuf_reported(int value)
{
    return value;
}
