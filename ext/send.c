/* send.c -- batch send (mpoint.h, "batch send"): the argument checks every
 * platform shares, then one call into the platform's send file
 * (posix/send_linux.c, posix/send_darwin.c, win/send.c); and the portable
 * faces of the clock the shaper runs on.
 */
#include "mp_platform.h"

/* A count the return value (long, 32 bits on Windows) can hold. */
#define MP_SEND_MAX_COUNT 0x7fffffffL

long mp_send_batch(mp_sock_t s, int family, const mp_sendbuf_t *bufs, size_t n,
                   const struct sockaddr_storage *to, mp_socklen_t tolen, size_t *bad)
{
    size_t i, max;

    if (bad != NULL)
        *bad = 0;
    if (s == MP_INVALID_SOCKET)
        return mp__fail(MP_WSAENOTSOCK);
    if (family != AF_INET && family != AF_INET6)
        return mp__fail(MP_WSAEAFNOSUPPORT);
    if (n == 0)
        return 0;
    /* A negative tolen (int on Windows) converts to a huge one. */
    if (bufs == NULL || (to == NULL) != (tolen == 0) ||
        (unsigned long long)tolen > sizeof(*to))
        return mp__fail(MP_WSAEFAULT);
    if (to != NULL && to->ss_family != family)
        return mp__fail(MP_WSAEAFNOSUPPORT);
    if (n > (size_t)MP_SEND_MAX_COUNT)
        return mp__fail(MP_WSAEINVAL);
    max = family == AF_INET ? MP_UDP_MAX_IPV4 : MP_UDP_MAX_IPV6;
    for (i = 0; i < n; i++) {
        if (bufs[i].len > max || (bufs[i].base == NULL && bufs[i].len != 0)) {
            if (bad != NULL)
                *bad = i;
            return mp__fail(bufs[i].len > max ? MP_WSAEMSGSIZE : MP_WSAEFAULT);
        }
    }
    return mp__send_batch(s, bufs, n, to, tolen);
}

int mp_wait_writable(mp_sock_t s, int timeout_ms)
{
    if (s == MP_INVALID_SOCKET)
        return mp__fail(MP_WSAENOTSOCK);
    if (timeout_ms < -1)
        return mp__fail(MP_WSAEINVAL);
    return mp__wait_writable(s, timeout_ms);
}

uint64_t mp_monotonic_ns(void)
{
    return mp__monotonic_ns();
}

int mp_sleep_ns(uint64_t ns)
{
    return ns == 0 ? 0 : mp__sleep_ns(ns);
}
