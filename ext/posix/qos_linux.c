/* qos_linux.c -- socket priority (socket(7) SO_PRIORITY: the 802.1p class
 * the qdisc and a VLAN egress map see) and kernel pacing
 * (SO_MAX_PACING_RATE, honoured by the fq qdisc and by TCP; a UDP socket
 * under another qdisc keeps only mpoint's own token bucket). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* SO_PRIORITY under -std=c11 */
#endif
#include <sys/socket.h>

#include "qos_os.h"

#ifndef SO_MAX_PACING_RATE
#define SO_MAX_PACING_RATE 47   /* asm-generic/socket.h, Linux 3.13 */
#endif

unsigned int mp__os_qos_supported(void)
{
    return MP_QOS_PRIORITY | MP_QOS_PACING;
}

int mp__os_qos_apply(int fd, const mp_qos_kernel_t *k)
{
    uint64_t rate = k->pacing;

    if (k->priority >= 0 &&
        setsockopt(fd, SOL_SOCKET, SO_PRIORITY, &k->priority, sizeof(k->priority)) < 0)
        return -1;
    /* A 64-bit rate since Linux 4.20; ~0 means "no limit". */
    if (rate != 0 && setsockopt(fd, SOL_SOCKET, SO_MAX_PACING_RATE, &rate, sizeof(rate)) < 0)
        return -1;
    return 0;
}

long long mp__os_rcvbuf_reported(int value)
{
    return 2LL * value;
}
