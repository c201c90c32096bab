/* reference_joins.c -- the C join, leave, close and sender loops of
 * reference.h on POSIX: setsockopt in a plain loop, as a careful C program
 * would.  The per-OS parts (the watch set, timestamps) come from posix.h. */
#define __APPLE_USE_RFC_3542 1  /* macOS: RFC 3542's IPV6_RECVPKTINFO, as posix/batch.c */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "posix/posix.h"
#include "batch_platform.h"
#include "reference.h"

static long long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int group_op(int fd, int family, const mp_join_t *r, int join)
{
    struct group_req gr;
    memset(&gr, 0, sizeof(gr));
    memcpy(&gr.gr_group, &r->group, (size_t)r->group_len);
    return setsockopt(fd, family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6,
                      join ? MCAST_JOIN_GROUP : MCAST_LEAVE_GROUP, &gr, sizeof(gr));
}

/* What a C receiver of several groups per socket needs: the port shared
 * (mp__share_port: SO_REUSEPORT too where the BSD rule applies),
 * cross-talk off, each datagram's destination group (IP_PKTINFO), receive
 * timestamps if asked for, and the sockets in one watch set (epoll, kqueue). */
static int open_sockets(int family, unsigned short port, size_t count, int *fds, int wfd,
                        int timestamps)
{
    size_t i;
    for (i = 0; i < count; i++) {
        int one = 1;
        fds[i] = mp__os_udp_socket(family);
        if (fds[i] < 0 || mp__share_port(fds[i]) < 0 ||
            mp__os_crosstalk_off(fds[i], family) < 0 || mp__bind_port(fds[i], family, port) < 0 ||
            (family == AF_INET
                 ? setsockopt(fds[i], IPPROTO_IP, IP_PKTINFO, &one, sizeof(one))
                 : setsockopt(fds[i], IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one))) < 0 ||
            (timestamps && mp__os_batch_timestamps_on(fds[i]) < 0) ||
            mp__os_ref_watch_add(wfd, fds[i]) < 0)
            return -1;
    }
    return 0;
}

static int join_all(int family, const mp_join_t *reqs, size_t n, size_t per, const int *fds)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (group_op(fds[i / per], family, &reqs[i], 1) < 0)
            return -1;
    return 0;
}

int mp_ref_joins(int family, unsigned short port, const mp_join_t *reqs, size_t n,
                 size_t per_socket, int newest_first, int timestamps, long long out[3])
{
    size_t per = per_socket == 0 || per_socket > n ? (n ? n : 1) : per_socket;
    size_t nsock = n ? (n + per - 1) / per : 0, i, opened = 0;
    int *fds = calloc(nsock ? nsock : 1, sizeof(*fds));
    long long t;
    int rc = -1, saved, wfd = -1;

    if (fds == NULL) {
        errno = ENOBUFS;
        return -1;
    }
    for (i = 0; i < nsock; i++)
        fds[i] = -1;
    if ((wfd = mp__os_ref_watch_open()) < 0)
        goto out;
    t = mono_ns();                  /* joining n groups includes making their sockets */
    opened = nsock;
    if (open_sockets(family, port, nsock, fds, wfd, timestamps) < 0 ||
        join_all(family, reqs, n, per, fds) < 0)
        goto out;
    out[0] = mono_ns() - t;
    t = mono_ns();
    for (i = 0; i < n; i++) {
        size_t k = newest_first ? n - 1 - i : i;
        if (group_op(fds[k / per], family, &reqs[k], 0) < 0)
            goto out;
    }
    out[1] = mono_ns() - t;
    if (join_all(family, reqs, n, per, fds) < 0)
        goto out;
    t = mono_ns();
    for (i = 0; i < nsock; i++)
        close(fds[newest_first ? nsock - 1 - i : i]);
    out[2] = mono_ns() - t;
    opened = 0;
    rc = 0;
out:
    saved = errno;
    for (i = 0; i < opened; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (wfd >= 0)
        close(wfd);
    free(fds);
    errno = saved;
    return rc;
}

/* A receiver's bind as join_leaf makes it (posix/join.c): the group's own
 * address, which the kernel delivers by; a zoned IPv6 group (ff01::/16,
 * ff02::/16 and their variants) the wildcard address. */
static int bind_group(int fd, int family, const mp_join_t *r, unsigned short port)
{
    struct sockaddr_storage ss;

    if (family == AF_INET6 && mp__needs_zone((const struct sockaddr_in6 *)&r->group))
        return mp__bind_port(fd, family, port);
    ss = r->group;
    if (family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
    return bind(fd, (struct sockaddr *)&ss, r->group_len);
}

/* A socket as mpoint.socket() makes it: the port shared (mp__share_port),
 * IPv6-only, cross-talk off. */
static int leaf_socket(int family)
{
    int one = 1, fd = mp__os_udp_socket(family), saved;

    if (fd < 0)
        return -1;
    if (mp__share_port(fd) < 0 ||
        (family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
        mp__os_crosstalk_off(fd, family) < 0) {
        saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int mp_ref_leaf_joins(int family, unsigned short port, const mp_join_t *reqs, size_t n,
                      int made_in_loop, long long *out)
{
    int *fds = calloc(n ? n : 1, sizeof(*fds));
    size_t i, opened = 0;
    long long t = 0;
    int rc = -1, saved;

    if (fds == NULL) {
        errno = ENOBUFS;
        return -1;
    }
    if (!made_in_loop)
        for (opened = 0; opened < n; opened++)
            if ((fds[opened] = leaf_socket(family)) < 0)
                goto out;
    t = mono_ns();
    for (i = 0; i < n; i++) {
        if (made_in_loop) {
            if ((fds[i] = leaf_socket(family)) < 0)
                goto out;
            opened++;
        }
        if (mp__batch_enable_metadata(fds[i], family) < 0 ||
            bind_group(fds[i], family, &reqs[i], port) < 0 ||
            group_op(fds[i], family, &reqs[i], 1) < 0)
            goto out;
    }
    *out = mono_ns() - t;
    rc = 0;
out:
    saved = errno;
    for (i = opened; i > 0; i--)
        if (fds[i - 1] >= 0)
            close(fds[i - 1]);
    free(fds);
    errno = saved;
    return rc;
}

long long mp_ref_send_round_robin(mp_sock_t s, const mp_join_t *groups, size_t n, int size,
                                  int duration_ms)
{
    char buf[2048];
    long long end = mono_ns() + (long long)duration_ms * 1000000LL, sent = 0;
    size_t i = 0;

    if (n == 0 || size < 0 || size > (int)sizeof(buf)) {
        errno = EINVAL;
        return -1;
    }
    memset(buf, 'j', sizeof(buf));
    while ((sent & 63) != 0 || mono_ns() < end) {
        const mp_join_t *g = &groups[i];
        if (sendto(s, buf, (size_t)size, 0, (const struct sockaddr *)&g->group, g->group_len) < 0 &&
            errno != ENOBUFS && errno != EAGAIN)
            return -1;
        sent++;
        i = i + 1 == n ? 0 : i + 1;
    }
    return sent;
}
