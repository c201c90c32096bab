/* qos_os.h -- what posix/qos.c needs from the per-OS QoS file
 * (qos_linux.c, or qos_darwin.c for macOS).  setup.py compiles one. */
#ifndef MP_POSIX_QOS_OS_H
#define MP_POSIX_QOS_OS_H

#include "../mp_platform.h"

/* The MP_QOS_* bits beyond DSCP and the receive buffer this kernel has. */
unsigned int mp__os_qos_supported(void);
/* Applies k's priority and pacing (qos.c validated them against
 * mp__os_qos_supported).  0, or -1 with errno set. */
int mp__os_qos_apply(int fd, const mp_qos_kernel_t *k);

/* What getsockopt(SO_RCVBUF) reports after setsockopt(SO_RCVBUF, value):
 * Linux doubles it (socket(7): room for its bookkeeping), BSD does not. */
long long mp__os_rcvbuf_reported(int value);

#endif /* MP_POSIX_QOS_OS_H */
