/* batch_linux.c -- batch receive on Linux: recvmmsg(2) fills the batch in
 * one system call.  Its mmsghdr, iovec and control arrays are built once,
 * with the batch, pointing at the batch's own slots (datagram i's data,
 * sources[i], control room i); only what the kernel writes back is reset
 * before each call.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* recvmmsg, struct mmsghdr */
#endif

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/net_tstamp.h>

#include "../batch_platform.h"

/* recvmmsg(2) fills at most UIO_MAXIOV (1024) messages per call. */
#define RECVMMSG_MAX 1024u

typedef struct scratch {
    struct mmsghdr *msgs;
    struct iovec *iov;
    unsigned char *control;     /* MP_BATCH_CMSG_ROOM per datagram; NULL without metadata */
} scratch_t;

void mp__batch_platform_free(mp_batch_t *b)
{
    scratch_t *sc = b->platform;

    if (sc == NULL)
        return;
    free(sc->msgs);
    free(sc->iov);
    free(sc->control);
    free(sc);
    b->platform = NULL;
}

int mp__batch_platform_new(mp_batch_t *b)
{
    size_t i, n = b->max_datagrams;
    scratch_t *sc = calloc(1, sizeof(*sc));

    b->platform = sc;
    if (sc == NULL)
        return -1;
    sc->msgs = calloc(n, sizeof(*sc->msgs));
    sc->iov = calloc(n, sizeof(*sc->iov));
    sc->control = b->metadata ? calloc(n, MP_BATCH_CMSG_ROOM) : NULL;
    if (sc->msgs == NULL || sc->iov == NULL || (b->metadata && sc->control == NULL)) {
        mp__batch_platform_free(b);
        return -1;
    }
    for (i = 0; i < n; i++) {
        struct msghdr *h = &sc->msgs[i].msg_hdr;
        sc->iov[i].iov_base = b->data + i * b->max_size;
        sc->iov[i].iov_len = b->max_size;
        h->msg_iov = &sc->iov[i];
        h->msg_iovlen = 1;
        h->msg_name = &b->sources[i];
        h->msg_control = sc->control ? sc->control + i * MP_BATCH_CMSG_ROOM : NULL;
    }
    return 0;
}

/* recvmmsg(2) with MSG_DONTWAIT: what is queued, up to max_datagrams.  A
 * call that fills its whole chunk (RECVMMSG_MAX) may have left more queued,
 * so the next chunk is asked for; any other call ends the receive.  An
 * error after some datagrams of one call the kernel keeps for the next
 * receive (recvmmsg(2), BUGS); a failing later chunk is dropped in favour
 * of the datagrams already kept. */
int mp__batch_recv(mp_sock_t s, mp_batch_t *b)
{
    scratch_t *sc = b->platform;
    size_t i, start = b->count, got = start, want;
    int n;

    do {
        want = b->max_datagrams - got < RECVMMSG_MAX ? b->max_datagrams - got : RECVMMSG_MAX;
        /* The kernel overwrites these value-result fields (recvmsg(2)). */
        for (i = got; i < got + want; i++) {
            struct msghdr *h = &sc->msgs[i].msg_hdr;
            h->msg_namelen = sizeof(b->sources[i]);
            h->msg_controllen = h->msg_control ? MP_BATCH_CMSG_ROOM : 0;
            h->msg_flags = 0;
            sc->msgs[i].msg_len = 0;
        }
        n = recvmmsg(s, sc->msgs + got, (unsigned int)want, MSG_DONTWAIT, NULL);
        if (n < 0)
            break;
        for (i = got; i < got + (size_t)n; i++)
            mp__batch_keep(b, i, sc->msgs[i].msg_len, &sc->msgs[i].msg_hdr);
        got += (size_t)n;
    } while ((size_t)n == want && got < b->max_datagrams);
    if (got == start && n < 0)
        return -1;
    b->count = got;
    return (int)(got - start);
}

/* SO_TIMESTAMPING with software receive stamps (timestamping.rst, 1.3):
 * each datagram's kernel receive time in an SCM_TIMESTAMPING control
 * message, ts[0].  Not SO_TIMESTAMPNS: for a datagram that arrived before
 * any socket asked for stamps, SO_TIMESTAMPNS reports the time of the
 * receive call ("race occurred between timestamp enabling and packet
 * receiving", net/socket.c), where SO_TIMESTAMPING sends no stamp at all --
 * true or absent, never made up. */
#define MP_TIMESTAMPING_RX (SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE)

int mp__os_batch_timestamps_on(int fd)
{
    int flags = MP_TIMESTAMPING_RX;

    return setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof(flags));
}

/* SO_TIMESTAMPING names SO_TIMESTAMPING_OLD (struct timespec, the C
 * library's) or, where time_t grew to 64 bits on a 32-bit ABI,
 * SO_TIMESTAMPING_NEW (two 64-bit fields); either may arrive. */
int64_t mp__os_batch_timestamp(const struct cmsghdr *c)
{
    if (c->cmsg_type == SO_TIMESTAMPING_OLD &&
        c->cmsg_len >= CMSG_LEN(3 * sizeof(struct timespec))) {
        struct timespec ts;
        memcpy(&ts, CMSG_DATA(c), sizeof(ts));
        return (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
    }
#ifdef SO_TIMESTAMPING_NEW
    if (c->cmsg_type == SO_TIMESTAMPING_NEW && c->cmsg_len >= CMSG_LEN(6 * sizeof(int64_t))) {
        int64_t ts[2];
        memcpy(ts, CMSG_DATA(c), sizeof(ts));
        return ts[0] * 1000000000 + ts[1];
    }
#endif
    return 0;
}
