/* reference_linux.c -- the C reference loops (reference.h) on Linux. */
#define _GNU_SOURCE     /* recvmmsg, struct in6_pktinfo */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>

#include "posix/posix.h"
#include "batch_platform.h"
#include "reference.h"

int mp__os_ref_watch_open(void)
{
    return epoll_create1(EPOLL_CLOEXEC);
}

int mp__os_ref_watch_add(int wfd, int fd)
{
    struct epoll_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    return epoll_ctl(wfd, EPOLL_CTL_ADD, fd, &ev);
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static volatile long long sink;   /* keeps the metadata reads from being optimised away */

static void read_control(struct msghdr *m)
{
    struct cmsghdr *c;

    /* A message the kernel truncated (MSG_CTRUNC) carries a shorter
     * cmsg_len: each read checks the length first, as a careful user does. */
    for (c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
            c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo)))
            sink += ((struct in_pktinfo *)CMSG_DATA(c))->ipi_ifindex;
        else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
                 c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo)))
            sink += ((struct in6_pktinfo *)CMSG_DATA(c))->ipi6_ifindex;
        else if (c->cmsg_level == SOL_SOCKET)
            sink += mp__os_batch_timestamp(c);
    }
}

long long mp_ref_drain(const mp_sock_t *socks, int nsocks, int vlen, int size, int pktinfo,
                       long long *received)
{
    enum { CONTROL = 256 };        /* pktinfo + timestamps, with room to spare */
    struct mmsghdr *msgs = calloc((size_t)vlen, sizeof(*msgs));
    struct iovec *iov = calloc((size_t)vlen, sizeof(*iov));
    struct sockaddr_storage *names = calloc((size_t)vlen, sizeof(*names));
    unsigned char *data = malloc((size_t)vlen * (size_t)size);
    unsigned char *control = malloc((size_t)vlen * CONTROL);
    long long start, total = 0;
    int i, k, one = 1, failed = 0;

    if (!msgs || !iov || !names || !data || !control) {
        failed = ENOBUFS;
        goto out;
    }
    for (k = 0; k < nsocks && pktinfo; k++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        getsockname(socks[k], (struct sockaddr *)&ss, &len);
        if (ss.ss_family == AF_INET)
            setsockopt(socks[k], IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
        else
            setsockopt(socks[k], IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
        if (pktinfo > 1)
            mp__os_batch_timestamps_on(socks[k]);   /* as a metadata batch's socket */
    }
    start = now_ns();
    for (k = 0; k < nsocks; k++) {
        for (;;) {
            int n;
            for (i = 0; i < vlen; i++) {
                iov[i].iov_base = data + (size_t)i * (size_t)size;
                iov[i].iov_len = (size_t)size;
                msgs[i].msg_hdr.msg_iov = &iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
                msgs[i].msg_hdr.msg_name = &names[i];
                msgs[i].msg_hdr.msg_namelen = sizeof(names[i]);
                msgs[i].msg_hdr.msg_control = pktinfo ? control + (size_t)i * CONTROL : NULL;
                msgs[i].msg_hdr.msg_controllen = pktinfo ? CONTROL : 0;
            }
            n = recvmmsg(socks[k], msgs, (unsigned int)vlen, MSG_DONTWAIT, NULL);
            if (n < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                    failed = errno;
                break;
            }
            for (i = 0; i < n && pktinfo; i++)   /* read the metadata, as a user would */
                read_control(&msgs[i].msg_hdr);
            total += n;
        }
        if (failed)
            break;
    }
    start = now_ns() - start;
out:
    free(msgs);
    free(iov);
    free(names);
    free(data);
    free(control);
    if (failed) {
        errno = failed;
        return -1;
    }
    *received = total;
    return start;
}

long long mp_ref_wakeups(mp_sock_t tx, mp_sock_t rx, const mp_sock_t *idle, int nidle,
                         int rounds)
{
    struct epoll_event ev, out[64];
    char buf[64];
    long long start;
    int ep = epoll_create1(EPOLL_CLOEXEC), i, saved;

    if (ep < 0)
        return -1;
    ev.events = EPOLLIN;
    for (i = 0; i < nidle; i++) {
        ev.data.u32 = (unsigned int)i + 1;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, idle[i], &ev) < 0)
            goto fail;
    }
    ev.data.u32 = 0;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, rx, &ev) < 0)
        goto fail;
    start = now_ns();
    for (i = 0; i < rounds; i++) {
        if (send(tx, "x", 1, 0) < 0 || epoll_wait(ep, out, 64, -1) < 1 ||
            recv(rx, buf, sizeof(buf), 0) < 0)
            goto fail;
    }
    start = now_ns() - start;
    close(ep);
    return start;
fail:
    saved = errno;
    close(ep);
    errno = saved;
    return -1;
}

long long mp_ref_send_batches(mp_sock_t s, const mp_join_t *dest, int size, int vlen,
                              int duration_ms, long long *sent)
{
    struct mmsghdr *msgs;
    struct iovec iov;
    unsigned char *data;
    long long start, end, total = 0, now;
    int i, n;

    if (size < 1 || size > 65507 || vlen < 1 || vlen > 1024 || duration_ms < 0) {
        errno = EINVAL;
        return -1;
    }
    msgs = calloc((size_t)vlen, sizeof(*msgs));
    data = malloc((size_t)size);
    if (msgs == NULL || data == NULL) {
        free(msgs);
        free(data);
        errno = ENOBUFS;
        return -1;
    }
    memset(data, 's', (size_t)size);
    iov.iov_base = data;             /* one payload, as send_batch([p] * vlen) has */
    iov.iov_len = (size_t)size;
    for (i = 0; i < vlen; i++) {
        msgs[i].msg_hdr.msg_name = (void *)&dest->group;
        msgs[i].msg_hdr.msg_namelen = (socklen_t)dest->group_len;
        msgs[i].msg_hdr.msg_iov = &iov;
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    start = now_ns();
    end = start + (long long)duration_ms * 1000000LL;
    do {
        n = sendmmsg(s, msgs, (unsigned int)vlen, 0);
        if (n < 0 && errno != ENOBUFS && errno != EAGAIN) {
            int saved = errno;
            free(msgs);
            free(data);
            errno = saved;
            return -1;
        }
        if (n > 0)
            total += n;
        now = now_ns();
    } while (now < end);
    free(msgs);
    free(data);
    *sent = total;
    return now - start;
}
