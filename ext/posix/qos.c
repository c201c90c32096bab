/* qos.c -- QoS marks on POSIX: the traffic class and the receive buffer,
 * the same calls on Linux and BSD; what only one kernel has (socket
 * priority, pacing) is the per-OS file's (qos_linux.c, qos_darwin.c). */

#include "qos_os.h"

unsigned int mp__qos_supported(void)
{
    return MP_QOS_DSCP | MP_QOS_RCVBUF | mp__os_qos_supported();
}

/* ip(7) IP_TOS, ipv6(7) IPV6_TCLASS: the DS field is the upper six bits of
 * the byte (RFC 2474); the two ECN bits (RFC 3168) are left 0. */
static int set_dscp(int fd, int family, int dscp)
{
    int tos = dscp << 2;

    if (family == AF_INET)
        return setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
    return setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof(tos));
}

int mp__qos_apply(mp_sock_t s, int family, mp_qos_kernel_t *k)
{
    int fd = (int)s;
    int size, now = 0;
    socklen_t len = sizeof(now);

    if (k->dscp >= 0 && set_dscp(fd, family, k->dscp) < 0)
        return -1;
    /* The buffer only grows: a burst's room never shrinks what the system
     * or the caller gave (the kernel reports what it made of the value). */
    if (k->rcvbuf != 0) {
        if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &now, &len) < 0)
            return -1;
        size = (int)k->rcvbuf;
        if (mp__os_rcvbuf_reported(size) > (long long)now &&
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) < 0)
            return -1;
    }
    return mp__os_qos_apply(fd, k);
}

void mp__qos_forget(mp_sock_t s, uint32_t flow)
{
    (void)s;
    (void)flow;
}
