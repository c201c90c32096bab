/* reference_darwin.c -- the C reference loops (reference.h) on macOS:
 * recvmsg in a loop (no recvmmsg) and kqueue.  Not yet run in CI. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/event.h>

#include "posix/posix.h"
#include "reference.h"

int mp__os_ref_watch_open(void)
{
    return kqueue();
}

int mp__os_ref_watch_add(int wfd, int fd)
{
    struct kevent ch;

    EV_SET(&ch, fd, EVFILT_READ, EV_ADD, 0, 0, NULL);
    return kevent(wfd, &ch, 1, NULL, 0, NULL);
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

long long mp_ref_drain(const mp_sock_t *socks, int nsocks, int vlen, int size, int pktinfo,
                       long long *received)
{
    unsigned char *data = malloc((size_t)size), control[128];
    struct sockaddr_storage name;
    long long start, total = 0;
    int k, one = 1;

    (void)vlen;
    if (data == NULL) {
        errno = ENOBUFS;
        return -1;
    }
    for (k = 0; k < nsocks && pktinfo; k++)
        setsockopt(socks[k], IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
    start = now_ns();
    for (k = 0; k < nsocks; k++) {
        for (;;) {
            struct iovec iov = {data, (size_t)size};
            struct msghdr m = {&name, sizeof(name), &iov, 1, pktinfo ? control : NULL,
                               pktinfo ? (socklen_t)sizeof(control) : 0, 0};
            if (recvmsg(socks[k], &m, MSG_DONTWAIT) < 0)
                break;
            total++;
        }
    }
    start = now_ns() - start;
    free(data);
    *received = total;
    return start;
}

long long mp_ref_wakeups(mp_sock_t tx, mp_sock_t rx, const mp_sock_t *idle, int nidle,
                         int rounds)
{
    struct kevent ch, out[64];
    char buf[64];
    long long start;
    int kq = kqueue(), i, saved;

    if (kq < 0)
        return -1;
    for (i = 0; i <= nidle; i++) {
        EV_SET(&ch, i < nidle ? idle[i] : rx, EVFILT_READ, EV_ADD, 0, 0, NULL);
        if (kevent(kq, &ch, 1, NULL, 0, NULL) < 0)
            goto fail;
    }
    start = now_ns();
    for (i = 0; i < rounds; i++) {
        if (send(tx, "x", 1, 0) < 0 || kevent(kq, NULL, 0, out, 64, NULL) < 1 ||
            recv(rx, buf, sizeof(buf), 0) < 0)
            goto fail;
    }
    start = now_ns() - start;
    close(kq);
    return start;
fail:
    saved = errno;
    close(kq);
    errno = saved;
    return -1;
}

long long mp_ref_send_batches(mp_sock_t s, const mp_join_t *dest, int size, int vlen,
                              int duration_ms, long long *sent)
{
    struct msghdr msg;
    struct iovec iov;
    unsigned char *data;
    long long start, end, total = 0, now;
    int i;

    if (size < 1 || size > 65507 || vlen < 1 || vlen > 1024 || duration_ms < 0) {
        errno = EINVAL;
        return -1;
    }
    data = malloc((size_t)size);
    if (data == NULL) {
        errno = ENOBUFS;
        return -1;
    }
    memset(data, 's', (size_t)size);
    memset(&msg, 0, sizeof(msg));
    iov.iov_base = data;
    iov.iov_len = (size_t)size;
    msg.msg_name = (void *)&dest->group;
    msg.msg_namelen = (socklen_t)dest->group_len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    start = now_ns();
    end = start + (long long)duration_ms * 1000000LL;
    do {
        for (i = 0; i < vlen; i++) {
            if (sendmsg(s, &msg, 0) >= 0) {
                total++;
            } else if (errno != ENOBUFS && errno != EAGAIN) {
                int saved = errno;
                free(data);
                errno = saved;
                return -1;
            }
        }
        now = now_ns();
    } while (now < end);
    free(data);
    *sent = total;
    return now - start;
}
