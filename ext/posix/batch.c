/* batch.c -- batch receive on POSIX, the part every OS shares: asking for
 * metadata, waiting with poll(2), and recording one received datagram with
 * its control messages (cmsg(3)).  The receive itself is per OS
 * (batch_linux.c: recvmmsg; batch_darwin.c: a recvmsg loop).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* glibc: struct in6_pktinfo (RFC 3542) */
#endif
#define __APPLE_USE_RFC_3542 1  /* macOS: RFC 3542's IPV6_RECVPKTINFO, not RFC 2292's */

#include <poll.h>
#include <string.h>

#include "../batch_platform.h"

/* IP_PKTINFO (Linux ip(7), macOS ip(4)) and IPV6_RECVPKTINFO (RFC 3542,
 * 6.1) deliver each datagram's header destination address -- the group --
 * and arriving interface; timestamps are per OS. */
int mp__batch_enable_metadata(mp_sock_t s, int family)
{
    int one = 1;
    int rc = family == AF_INET
        ? setsockopt(s, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one))
        : setsockopt(s, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));

    return rc < 0 ? -1 : mp__os_batch_timestamps_on(s);
}

/* poll(2) on one descriptor: 1 readable (or in error, which the next
 * receive reports), 0 timed out, -1 with errno (EINTR included: the caller
 * decides whether to retry, PEP 475). */
int mp__batch_wait_readable(mp_sock_t s, int timeout_ms)
{
    struct pollfd p;

    p.fd = s;
    p.events = POLLIN;
    p.revents = 0;
    return poll(&p, 1, timeout_ms);
}

/* One control message's metadata into datagram i.  The header's
 * destination is ipi_addr (ip(7): "the destination address in the packet
 * header"), not ipi_spec_dst (the local address a reply would use). */
static void keep_control(mp_batch_t *b, size_t i, const struct cmsghdr *c)
{
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
        c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
        struct in_pktinfo pi;
        struct sockaddr_in *g = (struct sockaddr_in *)&b->groups[i];
        memcpy(&pi, CMSG_DATA(c), sizeof(pi));
        g->sin_family = AF_INET;
        g->sin_addr = pi.ipi_addr;
        MP_SET_SA_LEN(&b->groups[i], sizeof(*g));
        b->ifindex[i] = (uint32_t)pi.ipi_ifindex;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
               c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
        struct in6_pktinfo pi6;
        struct sockaddr_in6 *g = (struct sockaddr_in6 *)&b->groups[i];
        memcpy(&pi6, CMSG_DATA(c), sizeof(pi6));
        g->sin6_family = AF_INET6;
        g->sin6_addr = pi6.ipi6_addr;
        MP_SET_SA_LEN(&b->groups[i], sizeof(*g));
        b->ifindex[i] = (uint32_t)pi6.ipi6_ifindex;
    } else if (c->cmsg_level == SOL_SOCKET) {
        int64_t ns = mp__os_batch_timestamp(c);
        if (ns != 0)
            b->timestamps[i] = ns;
    }
}

void mp__batch_keep(mp_batch_t *b, size_t i, size_t len, struct msghdr *msg)
{
    struct cmsghdr *c;
    size_t room = sizeof(b->sources[i]);
    size_t namelen = msg->msg_namelen < room ? msg->msg_namelen : room;

    b->sizes[i] = (uint32_t)(len < b->max_size ? len : b->max_size);
    b->truncated[i] = (msg->msg_flags & MSG_TRUNC) != 0;
    /* The kernel wrote namelen bytes of the sender; a longer address from an
     * earlier receive must not show through. */
    memset((unsigned char *)&b->sources[i] + namelen, 0, room - namelen);
    memset(&b->groups[i], 0, sizeof(b->groups[i]));
    b->ifindex[i] = 0;
    b->timestamps[i] = 0;
    for (c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c))
        keep_control(b, i, c);
}
