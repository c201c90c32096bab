/* qos.c -- mp_qos_apply's validation (mpoint.h), then the platform file:
 * posix/qos.c with qos_linux.c or qos_darwin.c, or win/qos.c. */
#include "mp_platform.h"

unsigned int mp_qos_supported(void)
{
    return mp__qos_supported();
}

int mp_qos_apply(mp_sock_t s, int family, mp_qos_kernel_t *k)
{
    unsigned int asked = 0, have = mp__qos_supported();

    if (k == NULL || (family != AF_INET && family != AF_INET6) ||
        k->dscp < -1 || k->dscp > 63 || k->priority < -1 || k->priority > 7 ||
        k->rcvbuf > (uint64_t)0x7fffffff)
        return mp__fail(MP_WSAEINVAL);
    if (k->dscp >= 0)
        asked |= MP_QOS_DSCP;
    if (k->priority >= 0)
        asked |= MP_QOS_PRIORITY;
    if (k->pacing != 0)
        asked |= MP_QOS_PACING;
    if (k->rcvbuf != 0)
        asked |= MP_QOS_RCVBUF;
    if (asked & ~have)
        return mp__fail(MP_WSAEOPNOTSUPP);
    if (asked == 0)
        return 0;
    return mp__qos_apply(s, family, k);
}

void mp_qos_forget(mp_sock_t s, uint32_t flow)
{
    if (flow != 0)
        mp__qos_forget(s, flow);
}
