/* batch_darwin.c -- batch receive on macOS, which has no public recvmmsg:
 * recvmsg(2) with MSG_DONTWAIT in a loop until the batch is full or nothing
 * more is queued.  Each datagram's control messages are read before the
 * next receive, so one control buffer on the stack serves them all and the
 * batch needs no scratch.
 */
#define __APPLE_USE_RFC_3542 1  /* RFC 3542's IPV6_PKTINFO, as posix/batch.c */

#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <sys/uio.h>

#include "../batch_platform.h"

int mp__batch_platform_new(mp_batch_t *b)
{
    b->platform = NULL;
    return 0;
}

void mp__batch_platform_free(mp_batch_t *b)
{
    (void)b;
}

/* An error after some datagrams arrived is not reported: the datagrams
 * are, and a lasting error shows again on the next receive. */
int mp__batch_recv(mp_sock_t s, mp_batch_t *b)
{
    union {
        struct cmsghdr align;
        unsigned char buf[MP_BATCH_CMSG_ROOM];
    } control;
    size_t start = b->count, got;

    for (got = start; got < b->max_datagrams; got++) {
        struct iovec iov;
        struct msghdr msg;
        ssize_t n;

        iov.iov_base = b->data + got * b->max_size;
        iov.iov_len = b->max_size;
        memset(&msg, 0, sizeof(msg));
        msg.msg_name = &b->sources[got];
        msg.msg_namelen = sizeof(b->sources[got]);
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        if (b->metadata) {
            msg.msg_control = control.buf;
            msg.msg_controllen = sizeof(control.buf);
        }
        n = recvmsg(s, &msg, MSG_DONTWAIT);
        if (n < 0)
            break;
        mp__batch_keep(b, got, (size_t)n, &msg);
    }
    if (got == start)
        return -1;
    b->count = got;
    return (int)(got - start);
}

/* SO_TIMESTAMP (macOS socket(2), getsockopt(2)): the receive time as a
 * struct timeval in an SCM_TIMESTAMP control message; microseconds only. */
int mp__os_batch_timestamps_on(int fd)
{
    int one = 1;

    return setsockopt(fd, SOL_SOCKET, SO_TIMESTAMP, &one, sizeof(one));
}

int64_t mp__os_batch_timestamp(const struct cmsghdr *c)
{
    struct timeval tv;

    if (c->cmsg_type != SCM_TIMESTAMP || c->cmsg_len < CMSG_LEN(sizeof(tv)))
        return 0;
    memcpy(&tv, CMSG_DATA(c), sizeof(tv));
    return (int64_t)tv.tv_sec * 1000000000 + (int64_t)tv.tv_usec * 1000;
}
