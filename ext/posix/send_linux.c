/* send_linux.c -- batch send on Linux: sendmmsg(2), up to SENDMMSG_MAX
 * datagrams per call, each one iovec over the caller's buffer (no copy).
 * The headers for one chunk are built on the heap once per call and
 * reused for the next chunk.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* sendmmsg, struct mmsghdr */
#endif

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "posix.h"

/* sendmmsg(2) sends at most UIO_MAXIOV (1024) messages per call. */
#define SENDMMSG_MAX 1024u

/* A call that sends fewer than it was given stopped at an error, which
 * sendmmsg(2) does not report ("the caller can retry with a further
 * sendmmsg() call to send the remaining messages"): the batch ends there
 * with the count, and the next send meets the error again. */
long mp__send_batch(mp_sock_t s, const mp_sendbuf_t *bufs, size_t n,
                    const struct sockaddr_storage *to, mp_socklen_t tolen)
{
    size_t chunk = n < SENDMMSG_MAX ? n : SENDMMSG_MAX, done = 0, i, want;
    struct mmsghdr *msgs = calloc(chunk, sizeof(*msgs));
    struct iovec *iov = calloc(chunk, sizeof(*iov));
    int rc = 0, saved;

    if (msgs == NULL || iov == NULL) {
        free(msgs);
        free(iov);
        errno = ENOBUFS;
        return -1;
    }
    for (i = 0; i < chunk; i++) {
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = (void *)to;
        msgs[i].msg_hdr.msg_namelen = (socklen_t)tolen;
    }
    while (done < n) {
        want = n - done < chunk ? n - done : chunk;
        for (i = 0; i < want; i++) {
            iov[i].iov_base = (void *)bufs[done + i].base;
            iov[i].iov_len = bufs[done + i].len;
        }
        rc = sendmmsg(s, msgs, (unsigned int)want, 0);
        if (rc < 0)
            break;
        done += (size_t)rc;
        if ((size_t)rc < want)
            break;
    }
    saved = errno;
    free(msgs);
    free(iov);
    if (done == 0 && rc < 0) {
        errno = saved;
        return -1;
    }
    return (long)done;
}
